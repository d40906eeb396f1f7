"""supervision.permissions: the one table of what each role may do, and the scope a role's credential gives.

Every route of the API names the capability it needs (`api.deps.allowed`); no router declares a role set. What a
role may do is here; where it may do it is its `Scope` (supervision.scope), derived by `scope_for` from the
credential alone. The task moves a role may make are part of the same table (`MOVE_TARGETS`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import StrEnum

from supervision.scope import NOWHERE, Scope
from supervision.workflow import Status, allowed_moves


class Role(StrEnum):
    """What a user may do; the scope (if any) says where."""

    ADMIN = "admin"
    COMMAND_CENTRE = "command_centre"
    TOWN_LEADER = "town_leader"
    DISPATCHER = "dispatcher"
    GRID_WORKER = "grid_worker"
    DEPARTMENT_OFFICER = "department_officer"
    API_CLIENT = "api_client"
    # The 12345 hotline's system: submits Open311 service requests and reads back its own, nothing else.
    HOTLINE = "hotline"


class Capability(StrEnum):
    """A named thing a caller may do; a route needs exactly one."""

    TERRITORY_READ = "territory.read"
    # The details behind the map (one grid's figures, the businesses on the map, an address with its history): staff
    # only; an API client's product is the geocoding answer (grid code and standard address), not the register.
    TERRITORY_DETAIL = "territory.detail"
    ADDRESS_READ = "address.read"
    ADDRESS_MAINTAIN = "address.maintain"
    GEOCODE = "geocode"
    DEPARTMENT_READ = "department.read"
    VOCABULARY_READ = "vocabulary.read"
    REGISTRATION_SEND = "registration.send"
    REGISTRATION_READ = "registration.read"
    REVIEW_READ = "review.read"
    REVIEW_RESOLVE = "review.resolve"
    # Add the address of a review item one resolves to the standard library, at a point of one's own area; the
    # rest of the library's maintenance (any address, retire, move) stays address.maintain's.
    REVIEW_ADD_ADDRESS = "review.add_address"
    # The geocoder's learned aliases (issue 17, finding 3): list and trace them (within one's area); withdraw one (a
    # dispatcher: those of their community or that they taught); promote one to the whole city (command centre).
    ALIAS_READ = "alias.read"
    ALIAS_WITHDRAW = "alias.withdraw"
    ALIAS_PROMOTE = "alias.promote"
    TASK_READ = "task.read"
    TASK_TRANSITION = "task.transition"
    WORKER_MANAGE = "worker.manage"
    CLUE_READ = "clue.read"
    CLUE_REPORT = "clue.report"
    STATS_READ = "stats.read"
    HEATMAP_READ = "heatmap.read"
    # Open311 GeoReport v2 (/open311/v2): submit a service request (a clue from the hotline), read one's own.
    SERVICE_REQUEST_SUBMIT = "service_request.submit"
    SERVICE_REQUEST_READ = "service_request.read"
    # Planning: read workload figures and the staffing plan; apply a staffing plan (move workers between grids);
    # draw a draft grid version; make a draft the active version or roll back (the official map: city-wide roles).
    WORKLOAD_READ = "workload.read"
    STAFFING_APPLY = "staffing.apply"
    GRID_REDESIGN = "grids.redesign"
    GRID_APPLY = "grids.apply"
    # Inspection planning (双随机、一公开): read plans, directories and their visits; create and draw a plan; keep a
    # department's item list and inspector directory (CSV import); record the results of visits; read an entity's
    # credit class and its reasons (internal, never public); recompute classes; solve a route problem (VROOM format).
    INSPECTION_READ = "inspection.read"
    INSPECTION_PLAN = "inspection.plan"
    INSPECTION_DIRECTORY = "inspection.directory"
    INSPECTION_RESULT = "inspection.result"
    CREDIT_READ = "credit.read"
    CREDIT_RECOMPUTE = "credit.recompute"
    ROUTE_SOLVE = "route.solve"
    # Map reads for GIS clients: vector tiles and OGC API Features (each layer still needs its own capability).
    GIS_READ = "gis.read"


class KeyPermission(StrEnum):
    """What an API key may be used for, chosen when it is made (`gridgov apikey create --permission P`).

    A key's capabilities are those of its role that one of its permissions also grants (least privilege): a default
    key geocodes and nothing else, so a map search box's `key=` cannot change supervision.
    """

    GEOCODE = "geocode"
    GIS = "gis"
    HOTLINE = "hotline"
    INTAKE = "intake"


DEFAULT_KEY_PERMISSIONS: frozenset[KeyPermission] = frozenset({KeyPermission.GEOCODE})


_EVERYONE = frozenset(
    {
        Capability.TERRITORY_READ,
        Capability.TERRITORY_DETAIL,
        Capability.ADDRESS_READ,
        Capability.GEOCODE,
        Capability.DEPARTMENT_READ,
        Capability.VOCABULARY_READ,
        Capability.REGISTRATION_READ,
        Capability.GIS_READ,
    }
)
_SUPERVISES = frozenset({Capability.TASK_READ, Capability.CLUE_READ, Capability.STATS_READ})

# THE table: the capabilities of each role. Registrations come from the registration systems (API clients) and the
# command centre; the address library is kept by the command centre (a dispatcher adds the address of a review item
# they resolve, within their community); grid workers do the field work.
CAPABILITIES: Mapping[Role, frozenset[Capability]] = {
    Role.ADMIN: frozenset(Capability),
    Role.COMMAND_CENTRE: frozenset(Capability),
    Role.TOWN_LEADER: _EVERYONE
    | _SUPERVISES
    | {
        Capability.HEATMAP_READ,
        Capability.WORKLOAD_READ,
        Capability.STAFFING_APPLY,
        Capability.GRID_REDESIGN,
        Capability.INSPECTION_READ,
        Capability.CREDIT_READ,
        Capability.ALIAS_READ,
    },
    Role.DISPATCHER: _EVERYONE
    | _SUPERVISES
    | {
        Capability.TASK_TRANSITION,
        Capability.WORKER_MANAGE,
        Capability.CLUE_REPORT,
        Capability.REVIEW_READ,
        Capability.REVIEW_RESOLVE,
        Capability.REVIEW_ADD_ADDRESS,
        Capability.HEATMAP_READ,
        Capability.WORKLOAD_READ,
        Capability.ALIAS_READ,
        Capability.ALIAS_WITHDRAW,
    },
    Role.GRID_WORKER: _EVERYONE | _SUPERVISES | {Capability.TASK_TRANSITION, Capability.CLUE_REPORT},
    # A department's officers plan and draw their department's inspections, keep its lists and record its results.
    Role.DEPARTMENT_OFFICER: _EVERYONE
    | _SUPERVISES
    | {
        Capability.TASK_TRANSITION,
        Capability.INSPECTION_READ,
        Capability.INSPECTION_PLAN,
        Capability.INSPECTION_DIRECTORY,
        Capability.INSPECTION_RESULT,
        Capability.CREDIT_READ,
        Capability.ROUTE_SOLVE,
    },
    # API clients read the map's outlines, never the details behind it (grid figures, businesses, address records).
    Role.API_CLIENT: (_EVERYONE - {Capability.TERRITORY_DETAIL, Capability.ADDRESS_READ})
    | {Capability.REGISTRATION_SEND, Capability.ROUTE_SOLVE},
    Role.HOTLINE: frozenset({Capability.SERVICE_REQUEST_SUBMIT, Capability.SERVICE_REQUEST_READ}),
}

# Which role may move a task from which status to which (None: any move the state machine allows): the one who
# holds the task at its current status acts. Grid workers do the field work, only while the task is at the worker's
# stage, and may raise a case to the community; a department answers and closes only what the department holds
# (escalated to it), never what the community holds; the community (dispatchers), the command centre and admins
# may make any move (they decide, and stand in for an absent holder). A role without task.transition makes none.
# The state machine (supervision.workflow) still decides which moves exist at all.
_WORKER_STAGE: tuple[Status, ...] = (
    Status.PUSHED,
    Status.ASSIGNED,
    Status.INSPECTED_OK,
    Status.INSPECTED_PROBLEM,
    Status.NOTICE_ISSUED,
    Status.REINSPECTED,
)
_WORKER_TARGETS = frozenset(
    {
        Status.ASSIGNED,
        Status.INSPECTED_OK,
        Status.INSPECTED_PROBLEM,
        Status.NOTICE_ISSUED,
        Status.REINSPECTED,
        Status.ESCALATED_COMMUNITY,
        Status.CLOSED,
    }
)


def _rules(froms: Collection[Status], targets: Collection[Status]) -> Mapping[Status, frozenset[Status]]:
    """From each status of `froms`, the moves of the state machine whose target is in `targets`; never assigned →
    assigned (handing a worker's task to another worker is a decision of the roles free to make any move)."""
    return {
        s: frozenset(t for t in allowed_moves(s) if t in targets and (s, t) != (Status.ASSIGNED, Status.ASSIGNED))
        for s in froms
    }


MOVE_RULES: Mapping[str, Mapping[Status, frozenset[Status]] | None] = {
    "system": None,
    Role.ADMIN: None,
    Role.COMMAND_CENTRE: None,
    Role.DISPATCHER: None,
    Role.GRID_WORKER: _rules(_WORKER_STAGE, _WORKER_TARGETS),
    Role.DEPARTMENT_OFFICER: {
        Status.ESCALATED_DEPARTMENT: frozenset({Status.DEPARTMENT_FEEDBACK}),
        Status.DEPARTMENT_FEEDBACK: frozenset({Status.CLOSED}),
    },
}

# The states each role may move a task to from some status (None: any), for the pages (what buttons to offer).
MOVE_TARGETS: Mapping[str, frozenset[Status] | None] = {
    role: None if rules is None else frozenset(t for targets in rules.values() for t in targets)
    for role, rules in MOVE_RULES.items()
}


# What each key permission grants (intersected with the key's role): geocoding (a search box, Nominatim clients);
# map reads for GIS tools (tiles, OGC API Features, route solving); the hotline's Open311 requests; registrations
# from the registration systems (a key reads back the events it sent, and only those).
KEY_PERMISSIONS: Mapping[KeyPermission, frozenset[Capability]] = {
    KeyPermission.GEOCODE: frozenset({Capability.GEOCODE, Capability.VOCABULARY_READ, Capability.DEPARTMENT_READ}),
    KeyPermission.GIS: frozenset(
        {Capability.GIS_READ, Capability.TERRITORY_READ, Capability.VOCABULARY_READ, Capability.ROUTE_SOLVE}
    ),
    KeyPermission.HOTLINE: frozenset({Capability.SERVICE_REQUEST_SUBMIT, Capability.SERVICE_REQUEST_READ}),
    KeyPermission.INTAKE: frozenset(
        {Capability.REGISTRATION_SEND, Capability.REGISTRATION_READ, Capability.VOCABULARY_READ}
    ),
}


def permits(role: str, capability: Capability, permissions: Collection[str] | None = None) -> bool:
    """Whether `role` has `capability` (an unknown role has none); with `permissions` (an API key's), one of them
    must grant it too (an unknown permission grants nothing).
    """
    try:
        if capability not in CAPABILITIES[Role(role)]:
            return False
    except ValueError:
        return False
    if permissions is None:
        return True
    return any(capability in KEY_PERMISSIONS[KeyPermission(p)] for p in permissions if p in _KEY_PERMISSION_NAMES)


_KEY_PERMISSION_NAMES = frozenset(p.value for p in KeyPermission)


def may_move_to(role: str, current: Status, target: Status) -> bool:
    """Whether `role` may move a task from `current` to `target` (MOVE_RULES; the state machine decides the rest)."""
    if role not in MOVE_RULES:
        return False
    rules = MOVE_RULES[role]
    return rules is None or target in rules.get(current, frozenset())


def may_reassign(role: str) -> bool:
    """Whether `role` may hand a task a worker holds to another worker: the roles free to make any move."""
    return role in MOVE_RULES and MOVE_RULES[role] is None


def scope_for(role: str, scope: str | None, town_code: str | None = None) -> Scope:
    """The Scope a credential gives: its role, its scope string, and the town resolved when it was checked.

    A grid worker: their grids; a dispatcher: their community; a town leader: their town; a department officer:
    their department; the command centre, admins and API clients: the whole city (what API clients may do there is
    the capability table's to say). A territorial role without its scope string gets nothing, and so does the
    hotline: it reads back only the requests it submitted (supervision.open311), never an area.
    """
    if role in (Role.ADMIN, Role.COMMAND_CENTRE, Role.API_CLIENT):
        return Scope("city")
    if not scope:
        return NOWHERE
    if role == Role.TOWN_LEADER:
        return Scope("town", scope)
    if role == Role.DISPATCHER:
        return Scope("community", scope)
    if role == Role.GRID_WORKER:
        return Scope("worker", scope, town_code)
    if role == Role.DEPARTMENT_OFFICER:
        return Scope("department", scope)
    return NOWHERE
