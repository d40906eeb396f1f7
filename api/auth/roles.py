"""api.auth.roles: who is asking (Principal), and the validation of a role and its scope when a credential is made.

What a role may do and where is supervision.permissions and supervision.scope; this module only checks names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from api.auth.errors import InvalidRole, InvalidScope
from grids.codes import COMMUNITY_PATTERN, TOWN_PATTERN, is_town, town_of
from supervision.permissions import Capability, Role, permits, scope_for
from supervision.scope import Scope

ROLES: tuple[str, ...] = tuple(role.value for role in Role)

# The scope each scoped role must carry, and its format.
_SCOPE_FORMATS: dict[Role, tuple[re.Pattern[str], str]] = {
    Role.TOWN_LEADER: (TOWN_PATTERN, "a 12-digit town code ending in 000 (e.g. 441900003000)"),
    Role.DISPATCHER: (COMMUNITY_PATTERN, "a 12-digit community code (e.g. 441900003001)"),
    Role.GRID_WORKER: (re.compile(r"^[1-9]\d{0,17}$"), "a worker id (a positive whole number)"),
    Role.DEPARTMENT_OFFICER: (re.compile(r"^[A-Za-z0-9_-]{1,32}$"), "a department code (letters, digits, _ or -)"),
}
# City-wide roles, and the hotline (no area at all): a scope would be meaningless, so it is refused rather than ignored.
_UNSCOPED: frozenset[Role] = frozenset({Role.ADMIN, Role.COMMAND_CENTRE, Role.HOTLINE})


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
    if role is Role.DISPATCHER and is_town(scope):
        raise InvalidScope(f"scope {scope!r} is a town code; a dispatcher's scope is a community code")
    return scope


@dataclass(frozen=True)
class Principal:
    """Who is asking: a signed-in user or an API key, with its role, scope and (when territorial) its town."""

    kind: Literal["user", "api_key"]
    name: str
    role: str
    scope: str | None = None
    # The one town a territorial principal is confined to; resolved when the credential is checked.
    town_code: str | None = None
    # The account's or the key's row id: what owns a principal's jobs and files (names are not unique for keys).
    id: int | None = None
    # An API key's or an api_client account's permissions (supervision.permissions.KeyPermission values); None
    # for every other account (its role alone decides).
    permissions: frozenset[str] | None = None
    # The registration event kinds an intake key is limited to; None: every kind its permissions allow.
    event_kinds: frozenset[str] | None = None

    def may(self, capability: Capability) -> bool:
        """Whether this principal may use `capability`: its role's table, and for a key its permissions too."""
        return permits(self.role, capability, self.permissions)

    @property
    def owner(self) -> str:
        """A stable, unique owner reference for jobs and files: user#<id> or key#<id> (the name when no id)."""
        kind = "user" if self.kind == "user" else "key"
        return f"{kind}#{self.id}" if self.id is not None else f"{kind}:{self.name}"

    @property
    def audit_name(self) -> str:
        """How the audit trails, histories and job lists name this principal: user:<name> or key:<name>."""
        return f"{'user' if self.kind == 'user' else 'key'}:{self.name}"

    @property
    def area(self) -> Scope:
        """Where this principal may look and act (supervision.scope), from the credential alone."""
        return scope_for(self.role, self.scope, self.town_code)


def principal_town(role: str, scope: str | None) -> str | None:
    """The town a role's scope confines it to when it can be told from the scope alone (None otherwise)."""
    if role in (Role.TOWN_LEADER, Role.DISPATCHER) and scope:
        return town_of(scope)
    return None
