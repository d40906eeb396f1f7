"""supervision.privacy: which role sees which personal field in clear, and how a personal field is masked.

Personal data of the platform: a grid worker's name and phone, the account that reported a clue (or uploaded a
photo, or made a move in a task's history). THE table (`CLEAR_TO`) says, per field, the roles that see it in clear; those roles see it only
for objects inside their own area (a town leader and a dispatcher: their town or community), and a person always
sees their own data. Everyone else (department officers, API clients, grid workers looking at a colleague, areas
other than the object's) gets it masked:

- a phone keeps its first 3 and last 4 characters: 13812345678 → 138****5678;
- a Chinese name keeps its surname (a compound surname such as 欧阳 when the name is longer than two characters):
  张三 → 张*, 张三丰 → 张**, 欧阳娜娜 → 欧阳**;
- a person's account (`user:zhangsan`) keeps its kind and its first character: user:z******* (a key's, the
  system's are not a person's and stay as they are);
- an email keeps the first character of its local part and its domain: z*******@example.com;
- a hotline caller's contact (the block after `CALLER_MARKER` in a hotline clue's description:
  `姓名：…；电话：…；邮箱：…；附件：…`) keeps its labels; the name, phone and email are masked as above, anything
  else in it (the attachment address, text without a label) entirely. The caller's contact is clear to the
  managers and to the officers of the clue's handling department (the 12345 practice: the 承办单位 calls back),
  masked for everyone else, the clue's area leads included.

Every mask keeps the length, hides each masked character behind `*` and is idempotent (masking a masked value
changes nothing). The masking is applied where an answer is serialised (`shown` for the API's task and clue models
and their CSV exports, the tile and stream code through `mask_*`), never by hand in a route.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from grids.codes import within
from supervision.permissions import Role
from supervision.scope import Scope

MASK = "*"


class PersonalField(StrEnum):
    """A kind of personal data the API may answer with."""

    WORKER_NAME = "worker.name"
    WORKER_PHONE = "worker.phone"
    # The account that reported a clue, or uploaded a photo of a clue or a task (the audit name, user:<login>).
    REPORTER = "clue.reporter"
    # A 12345 hotline caller's name, phone and email (and attachment), kept in the clue's description.
    CALLER = "clue.caller"


_MANAGERS = frozenset({Role.ADMIN, Role.COMMAND_CENTRE})
_AREA_LEADS = frozenset({Role.TOWN_LEADER, Role.DISPATCHER})

# THE table: who sees each personal field in clear (the area leads only for objects of their own area; a person
# always sees their own). Department officers, API clients, the hotline and grid workers (a colleague's) do not.
CLEAR_TO: Mapping[PersonalField, frozenset[Role]] = {
    PersonalField.WORKER_NAME: _MANAGERS | _AREA_LEADS,
    PersonalField.WORKER_PHONE: _MANAGERS | _AREA_LEADS,
    PersonalField.REPORTER: _MANAGERS | _AREA_LEADS,
    # The department officers only for clues routed to their own department (they call the caller back).
    PersonalField.CALLER: _MANAGERS | {Role.DEPARTMENT_OFFICER},
}

# Where a hotline clue's description holds its caller's contact (written by supervision.open311).
CALLER_MARKER = "\n\n【来电人信息（不公开）】"
CALLER_SEPARATOR = "；"
CALLER_LABEL_SEPARATOR = "："

# Compound surnames kept whole (the common ones; a rarer one keeps its first character, which still hides the rest).
COMPOUND_SURNAMES: frozenset[str] = frozenset(
    {
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "令狐",
        "端木",
    }
    | {
        "独孤",
        "南宫",
        "西门",
        "轩辕",
        "呼延",
        "司空",
        "闻人",
        "赫连",
        "澹台",
        "公羊",
        "申屠",
        "太史",
        "钟离",
        "百里",
        "东郭",
    }
)


# ------------------------------------------------------------------------------------------------ masking


def mask_phone(phone: str) -> str:
    """A phone number with all but its first 3 and last 4 characters masked (138****5678); short ones keep less."""
    n = len(phone)
    if n >= 8:
        return phone[:3] + MASK * (n - 7) + phone[-4:]
    if n >= 5:
        return MASK * (n - 2) + phone[-2:]
    return MASK * n


def mask_name(name: str) -> str:
    """A person's name with its surname kept and the rest masked (张三 → 张*, 欧阳娜娜 → 欧阳**)."""
    if len(name) <= 1:
        return MASK * len(name)
    keep = 2 if len(name) > 2 and name[:2] in COMPOUND_SURNAMES else 1
    return name[:keep] + MASK * (len(name) - keep)


# Audit names that stand for a person (a signed-in account); keys (key:…), the system and the simulation do not.
PERSON_ACCOUNT_KINDS = frozenset({"user"})


def mask_account(account: str) -> str:
    """A person's audit name (user:zhangsan) with its kind kept and the name masked like a person's (user:z*******);
    a system's (key:hotline, system, sim:worker) unchanged."""
    kind, sep, name = account.partition(":")
    if not sep or kind not in PERSON_ACCOUNT_KINDS:
        return account
    return f"{kind}:{mask_name(name)}"


def mask_email(email: str) -> str:
    """An email with its local part masked but for its first character (z*******@example.com)."""
    local, at, domain = email.rpartition("@")
    if not at:
        return MASK * len(email)
    return local[:1] + MASK * (len(local) - 1) + at + domain


_CALLER_MASKS = {"姓名": mask_name, "电话": mask_phone, "邮箱": mask_email}


def mask_caller(description: str) -> str:
    """A clue description with its hotline caller's block masked (labels kept); a description without one as is."""
    public, marker, block = description.partition(CALLER_MARKER)
    if not marker:
        return description
    parts = []
    for part in block.split(CALLER_SEPARATOR):
        label, sep, value = part.partition(CALLER_LABEL_SEPARATOR)
        masker = _CALLER_MASKS.get(label)
        if sep and label in ("姓名", "电话", "邮箱", "附件"):
            parts.append(label + sep + (masker(value) if masker else MASK * len(value)))
        else:  # no known label (a value that held the separator): nothing of it is shown
            parts.append(MASK * len(part))
    return public + marker + CALLER_SEPARATOR.join(parts)


_MASKS = {
    PersonalField.WORKER_NAME: mask_name,
    PersonalField.WORKER_PHONE: mask_phone,
    PersonalField.REPORTER: mask_account,
    PersonalField.CALLER: mask_caller,
}


def mask(kind: PersonalField, value: str | None) -> str | None:
    """`value` masked as its kind is (None stays None)."""
    return None if value is None else _MASKS[kind](value)


# ------------------------------------------------------------------------------------------------ who sees what


@dataclass(frozen=True)
class Viewer:
    """Who is reading: their role, their area, and who they are (the audit name; a grid worker's worker id)."""

    role: str
    area: Scope
    account: str | None = None

    @property
    def worker_id(self) -> int | None:
        """The worker a grid worker's credential stands for (None for any other role)."""
        return self.area.worker_id


def sees_clear(viewer: Viewer, kind: PersonalField, *, place: str | None, own: bool = False) -> bool:
    """Whether `viewer` sees `kind` in clear for an object at `place` (a grid, community or town code).

    `own`: the data is the viewer's own (their worker row, their report). Area leads see clear only inside their
    own town or community; an object of no known place is clear to the city-wide managers alone.
    """
    if own:
        return True
    try:
        role = Role(viewer.role)
    except ValueError:
        return False
    if role not in CLEAR_TO[kind]:
        return False
    if role in _MANAGERS:
        return True
    if kind is PersonalField.CALLER:  # `place` is the clue's handling department
        return viewer.area.kind == "department" and place is not None and viewer.area.code == place
    code = viewer.area.code
    return place is not None and code is not None and viewer.area.kind in ("town", "community") and within(place, code)


def shown_value(
    viewer: Viewer, kind: PersonalField, value: str | None, *, place: str | None, own: bool = False
) -> str | None:
    """`value` as `viewer` may see it: in clear, or masked."""
    if value is None or sees_clear(viewer, kind, place=place, own=own):
        return value
    return mask(kind, value)


# ------------------------------------------------------------------------------------------------ the API's models

T = TypeVar("T")


def shown(value: T, viewer: Viewer, *, read_in_scope: bool = False) -> T:
    """A task, clue, photo, history entry or page of them (or a list) with its personal fields as `viewer` may see.

    Objects are recognised by their fields (a task's `worker_name`, a clue's `reported_by` and `description`, a
    photo's `uploaded_by`, a history entry's `actor`), so one function serves the JSON answers and the CSV exports alike. `read_in_scope`:
    the objects carry no place of their own but were read through the viewer's own scope (a task's photos, a
    history), so an area lead's own area holds them.
    """
    place = viewer.area.code if read_in_scope and viewer.area.kind in ("town", "community") else None
    result: Any = _shown(value, viewer, place)
    return result


def _shown(value: Any, viewer: Viewer, outer_place: str | None) -> Any:
    if isinstance(value, list):
        return [_shown(v, viewer, outer_place) for v in value]
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return value
    obj: Any = value  # a dataclass instance: its fields are read by name below
    fields = {f.name for f in dataclasses.fields(obj)}
    place = getattr(obj, "grid_code", None) or getattr(obj, "town_code", None) or outer_place
    changes: dict[str, Any] = {}
    if "items" in fields:  # a page
        changes["items"] = _shown(obj.items, viewer, None)
    if "worker_name" in fields:
        own = viewer.worker_id is not None and getattr(obj, "worker_id", None) == viewer.worker_id
        changes["worker_name"] = shown_value(viewer, PersonalField.WORKER_NAME, obj.worker_name, place=place, own=own)
    for name in ("reported_by", "uploaded_by", "actor"):
        if name in fields:
            by = getattr(obj, name)
            own = by is not None and by == viewer.account
            changes[name] = shown_value(viewer, PersonalField.REPORTER, by, place=place, own=own)
    if "photos" in fields:
        changes["photos"] = _shown(obj.photos, viewer, place)
    if "description" in fields and "department_code" in fields:  # a clue: its hotline caller's contact
        department = obj.department_code
        changes["description"] = shown_value(viewer, PersonalField.CALLER, obj.description, place=department)
    return dataclasses.replace(obj, **changes) if changes else obj
