"""supervision.task_states: the task states as SQL filters them — the open ones, and those a grid worker holds —
and a task's departments as its `department_codes` column stores them (comma-separated).
"""

from __future__ import annotations

from collections.abc import Iterable

from supervision.workflow import Status, is_open

OPEN_STATUSES = tuple(s.value for s in Status if is_open(s))
# States in which the grid's worker must act. In the others the community or a department holds the task: a
# change of worker changes only the worker of record, never who must act now.
WORKER_HELD = frozenset(
    s.value
    for s in (
        Status.PUSHED,
        Status.ASSIGNED,
        Status.INSPECTED_OK,
        Status.INSPECTED_PROBLEM,
        Status.NOTICE_ISSUED,
        Status.REINSPECTED,
    )
)


def split_departments(stored: str | None) -> list[str]:
    """The department codes of a stored comma-separated list (None or empty: none)."""
    return [c for c in (stored or "").split(",") if c]


def merge_departments(stored: str | None, codes: Iterable[str]) -> str:
    """A stored list with `codes` added after the departments already in it, each department once."""
    return ",".join(dict.fromkeys([*split_departments(stored), *codes]))
