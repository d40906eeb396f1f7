"""api.auth.roles: the roles, who is asking (Principal), and the one territorial scope check every router uses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from api.auth.errors import InvalidRole, InvalidScope


class Role(StrEnum):
    """What a user may do; the scope (if any) says where."""

    ADMIN = "admin"
    COMMAND_CENTRE = "command_centre"
    TOWN_LEADER = "town_leader"
    DISPATCHER = "dispatcher"
    GRID_WORKER = "grid_worker"
    DEPARTMENT_OFFICER = "department_officer"
    API_CLIENT = "api_client"


ROLES: tuple[str, ...] = tuple(role.value for role in Role)
ROLE_LABELS_ZH = {
    Role.ADMIN: "系统管理员",
    Role.COMMAND_CENTRE: "市指挥中心",
    Role.TOWN_LEADER: "镇街领导",
    Role.DISPATCHER: "村（社区）调度员",
    Role.GRID_WORKER: "网格员",
    Role.DEPARTMENT_OFFICER: "部门人员",
    Role.API_CLIENT: "接口调用方",
}

# The scope each scoped role must carry, and its format.
_SCOPE_FORMATS: dict[Role, tuple[re.Pattern[str], str]] = {
    Role.TOWN_LEADER: (re.compile(r"^\d{9}000$"), "a 12-digit town code ending in 000 (e.g. 441900003000)"),
    Role.DISPATCHER: (re.compile(r"^\d{12}$"), "a 12-digit community code (e.g. 441900003001)"),
    Role.GRID_WORKER: (re.compile(r"^[1-9]\d{0,17}$"), "a worker id (a positive whole number)"),
    Role.DEPARTMENT_OFFICER: (re.compile(r"^[A-Za-z0-9_-]{1,32}$"), "a department code (letters, digits, _ or -)"),
}
# City-wide roles: a scope would be meaningless, so it is refused rather than ignored.
_UNSCOPED: frozenset[Role] = frozenset({Role.ADMIN, Role.COMMAND_CENTRE})


def parse_role(name: str) -> Role:
    """The role of this name, or InvalidRole listing the valid ones."""
    try:
        return Role(name)
    except ValueError:
        raise InvalidRole(f"unknown role {name!r}; choose one of {', '.join(ROLES)}") from None


def validate_scope(role: Role, scope: str | None) -> str | None:
    """The scope normalised for this role, or InvalidScope (required, refused or malformed)."""
    scope = scope.strip() if scope is not None else None
    if role in _UNSCOPED:
        if scope:
            raise InvalidScope(f"role {role.value} is city-wide and takes no --scope")
        return None
    expected = _SCOPE_FORMATS.get(role)
    if expected is None:  # api_client: an optional free label, not a territory
        return scope or None
    pattern, description = expected
    if not scope:
        raise InvalidScope(f"role {role.value} needs --scope: {description}")
    if not pattern.fullmatch(scope):
        raise InvalidScope(f"scope {scope!r} is not valid for role {role.value}: expected {description}")
    if role is Role.DISPATCHER and scope.endswith("000"):
        raise InvalidScope(f"scope {scope!r} is a town code; a dispatcher's scope is a community code")
    return scope


def town_of(code: str) -> str:
    """The town code of a town, community (12 digits) or grid (15 digits) code."""
    return code[:9] + "000"


@dataclass(frozen=True)
class Principal:
    """Who is asking: a signed-in user or an API key, with its role, scope and (when territorial) its town."""

    kind: Literal["user", "api_key"]
    name: str
    role: str
    scope: str | None = None
    # The one town a territorial principal is confined to; resolved when the credential is checked.
    town_code: str | None = None


class OutOfScope(Exception):
    """The principal may not see this part of the territory."""


# Roles that see the whole city; every other role is confined to `Principal.town_code`.
_CITY_WIDE: frozenset[str] = frozenset({Role.ADMIN, Role.COMMAND_CENTRE, Role.API_CLIENT, Role.DEPARTMENT_OFFICER})


def principal_town(role: str, scope: str | None) -> str | None:
    """The town a role's scope confines it to when it can be told from the scope alone (None otherwise)."""
    if role == Role.TOWN_LEADER and scope:
        return scope
    if role == Role.DISPATCHER and scope:
        return town_of(scope)
    return None


def allowed_town_codes(principal: Principal) -> frozenset[str] | None:
    """THE scope check: the towns this principal may see, None meaning the whole city.

    A territorial role whose town could not be resolved (a grid worker id with no worker row) sees nothing.
    """
    if principal.role in _CITY_WIDE:
        return None
    return frozenset({principal.town_code}) if principal.town_code else frozenset()


def may_see(principal: Principal, code: str) -> bool:
    """Whether a town, community or grid code lies within the principal's towns."""
    towns = allowed_town_codes(principal)
    return towns is None or town_of(code) in towns


def require_town(principal: Principal, code: str) -> None:
    """Raise OutOfScope unless the town, community or grid `code` lies within the principal's towns."""
    if not may_see(principal, code):
        raise OutOfScope(f"{code} is outside the area of {principal.name}")
