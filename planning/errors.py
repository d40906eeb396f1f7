"""planning.errors: why a plan is refused — each error carries a machine-readable `reason` and a Chinese detail.

Groups (never raised themselves): PlanningError. The API maps them in api/errors.py: an impossible plan is 422,
a stale or already applied draft 409, an unknown one 404.
"""

from __future__ import annotations


class PlanningError(Exception):
    """Base of every planning refusal; `reason` names the cause for programs, the message explains it in Chinese."""

    default_reason = "planning_error"

    def __init__(self, detail: str, *, reason: str | None = None) -> None:
        self.reason = reason or self.default_reason
        super().__init__(detail)


class Infeasible(PlanningError):
    """What was asked cannot be met (a lock that makes balance impossible, K outside what the workload allows)."""

    default_reason = "infeasible"


class NothingToPlan(PlanningError):
    """The area holds nothing a plan could balance (no addresses, no workers)."""

    default_reason = "nothing_to_plan"


class PlanNotFound(PlanningError):
    """No such draft, version, area or plan."""

    default_reason = "not_found"


class StaleDraft(PlanningError):
    """The data changed since the draft was drawn (or another version became active): draw it again."""

    default_reason = "stale_draft"


class VersionState(PlanningError):
    """The version is not in a state that allows this (apply a draft only; roll back only an applied version)."""

    default_reason = "version_state"


class StalePlan(StaleDraft):
    """The staffing plan computed now is not the one the caller saw (the data or the staff changed): look again."""

    default_reason = "stale_plan"


# ------------------------------------------------------------------------------------------ inspection planning


class InvalidPlan(PlanningError):
    """A plan, a list or a route problem that cannot be taken as given (a ratio outside 0–1 or below the A floor, an
    unknown item or department, a malformed CSV line, a polygon that is not one): 422."""

    default_reason = "invalid_plan"


class PlanState(PlanningError):
    """The plan is not in a state that allows this (a second draw, a draw of a cancelled plan, a draw before the
    announced public value is due): 409."""

    default_reason = "plan_state"


class RouteInfeasible(PlanningError):
    """Some stops cannot be served within the day, the windows or the teams: 422, with every such stop and its reason.

    `unassigned` lists them: dicts with at least `id` and `reason` (a code) and `detail` (Chinese).
    """

    default_reason = "route_infeasible"

    def __init__(self, detail: str, *, unassigned: list[dict[str, object]], reason: str | None = None) -> None:
        self.unassigned = unassigned
        super().__init__(detail, reason=reason)
