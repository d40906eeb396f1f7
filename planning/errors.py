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
