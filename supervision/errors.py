"""supervision.errors: what can go wrong in the supervision workflow, as domain exceptions (never HTTP)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from supervision.workflow import Status


class SupervisionError(Exception):
    """Base of the supervision package's errors."""


class NotFound(SupervisionError):
    """The task, clue, review item or entity does not exist."""


class OutOfScope(SupervisionError):
    """The caller may not see or change this: it lies outside their grids, community, town or department."""


class NotPermitted(SupervisionError):
    """The caller's role may not make this move (a grid worker cannot answer for a department)."""


class StaleVersion(SupervisionError):
    """The task changed since the caller read it (optimistic locking): reread and retry."""

    def __init__(self, task_id: int, expected: int, current: int, allowed: Sequence[str]) -> None:
        self.task_id = task_id
        self.expected = expected
        self.current = current
        self.allowed = list(allowed)
        super().__init__(f"task {task_id} is at version {current}, not {expected}: it was changed meanwhile")


class InvalidMove(SupervisionError):
    """A transition the state machine refuses; carries the moves allowed from the current state."""

    def __init__(self, message: str, current: str, allowed: Sequence[str]) -> None:
        self.current = current
        self.allowed = list(allowed)
        super().__init__(message)


class InvalidInput(SupervisionError):
    """A value the workflow cannot use (bad credit code, unknown industry, a time in the future, a bad photo)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class EventConflict(SupervisionError):
    """An event id already used for a different event: replays must carry the same content."""


class AlreadyResolved(SupervisionError):
    """The review item was resolved already."""


class StatsError(InvalidInput):
    """A statistics request that cannot be answered: unknown level or unit, or a window that runs backwards."""


class TransitionError(SupervisionError):
    """A move that the state machine does not allow, or that lacks what it needs."""

    def __init__(self, current: Status, target: str, reason: str, allowed: Sequence[Status]) -> None:
        self.current = current
        self.target = target
        self.allowed = list(allowed)
        super().__init__(reason)


class CalendarError(SupervisionError, ValueError):
    """A working-day calendar problem (bad schedule table, naive datetime, reversed interval)."""


class CalendarRangeError(CalendarError):
    """A date falls outside the years the calendar was built for."""


class RoutingError(SupervisionError, ValueError):
    """An unknown department or industry, or a routing data file that does not hold together."""
