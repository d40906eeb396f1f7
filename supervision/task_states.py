"""supervision.task_states: the task states as SQL filters them — the open ones, and those a grid worker holds."""

from __future__ import annotations

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
