"""supervision.errors: what can go wrong in the supervision workflow, as domain exceptions (never HTTP)."""

from __future__ import annotations

from collections.abc import Sequence


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
