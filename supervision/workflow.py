"""supervision.workflow: the life of a supervision task (and of a clue) as a state machine, with its deadlines.

A task is pushed to a grid, assigned to a worker, inspected on site; a problem earns a notice and a
re-inspection; what the grid cannot solve escalates to the community and then to the licensing department,
whose feedback closes the loop. Any open task can be cancelled (a deregistration, a duplicate).

This module is pure: it says which moves exist, what a move requires, and which deadline the new state runs
against. Storing tasks, checking versions and writing the audit trail belong to the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from supervision.errors import TransitionError


class Status(StrEnum):
    """The states of a task, named as the issue names them."""

    PUSHED = "pushed"
    ASSIGNED = "assigned"
    INSPECTED_OK = "inspected_ok"
    INSPECTED_PROBLEM = "inspected_problem"
    NOTICE_ISSUED = "notice_issued"
    REINSPECTED = "reinspected"
    ESCALATED_COMMUNITY = "escalated_community"
    ESCALATED_DEPARTMENT = "escalated_department"
    DEPARTMENT_FEEDBACK = "department_feedback"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Duty(StrEnum):
    """The "4+2" duties: four checks and two reminders, one task each where the duty applies."""

    ADDRESS_CHECK = "address_check"
    OPENING_CHECK = "opening_check"
    LICENCE_CHECK = "licence_check"
    UNLICENSED_PATROL = "unlicensed_patrol"
    ANNUAL_REPORT = "annual_report"
    LICENCE_DISPLAY = "licence_display"


# What the pages call each state and duty (served by GET /v1/vocabulary; a clue shares its task's states).
STATUS_LABELS_ZH: dict[Status, str] = {
    Status.PUSHED: "待分派",
    Status.ASSIGNED: "已分派",
    Status.INSPECTED_OK: "检查无问题",
    Status.INSPECTED_PROBLEM: "发现问题",
    Status.NOTICE_ISSUED: "已下达整改通知",
    Status.REINSPECTED: "已复查",
    Status.ESCALATED_COMMUNITY: "已上报村（社区）",
    Status.ESCALATED_DEPARTMENT: "已移交部门",
    Status.DEPARTMENT_FEEDBACK: "部门已反馈",
    Status.CLOSED: "已办结",
    Status.CANCELLED: "已撤销",
}
DUTY_LABELS_ZH: dict[Duty, str] = {
    Duty.ADDRESS_CHECK: "地址核查",
    Duty.OPENING_CHECK: "开业核查",
    Duty.LICENCE_CHECK: "许可核查",
    Duty.UNLICENSED_PATROL: "无照经营巡查",
    Duty.ANNUAL_REPORT: "年报提醒",
    Duty.LICENCE_DISPLAY: "亮照提醒",
}


TERMINAL = frozenset({Status.CLOSED, Status.CANCELLED})
# States whose move out of them is an on-site inspection: the move must carry the worker's position.
INSPECTION_TARGETS = frozenset({Status.INSPECTED_OK, Status.INSPECTED_PROBLEM, Status.REINSPECTED})
# Distance beyond which an inspection's position is flagged for review (proof of presence).
PRESENCE_LIMIT_M = 200.0

_MOVES: dict[Status, tuple[Status, ...]] = {
    Status.PUSHED: (Status.ASSIGNED,),
    # assigned → assigned: reassignment to another worker of the grid (the community's or the centre's decision).
    Status.ASSIGNED: (Status.INSPECTED_OK, Status.INSPECTED_PROBLEM, Status.ESCALATED_COMMUNITY, Status.ASSIGNED),
    Status.INSPECTED_OK: (Status.CLOSED,),
    Status.INSPECTED_PROBLEM: (Status.NOTICE_ISSUED, Status.ESCALATED_COMMUNITY),
    Status.NOTICE_ISSUED: (Status.REINSPECTED, Status.ESCALATED_COMMUNITY),
    Status.REINSPECTED: (Status.CLOSED, Status.ESCALATED_COMMUNITY),
    Status.ESCALATED_COMMUNITY: (Status.ESCALATED_DEPARTMENT, Status.CLOSED),
    Status.ESCALATED_DEPARTMENT: (Status.DEPARTMENT_FEEDBACK,),
    Status.DEPARTMENT_FEEDBACK: (Status.CLOSED,),
    Status.CLOSED: (),
    Status.CANCELLED: (),
}


@dataclass(frozen=True)
class Deadline:
    """Which clock a state runs against: working days allowed, counted from entering the state."""

    step: str
    working_days: int


# The clock of each open state. First inspection: 10 working days from the push; re-inspection: 10 from the
# notice; the department: 15 from the escalation. The community step shares the department's 15 days here
# (the issue names no separate clock for it) — it is the same loop of "someone with powers acts".
DEADLINES: dict[Status, Deadline] = {
    Status.PUSHED: Deadline("first_inspection", 10),
    Status.ASSIGNED: Deadline("first_inspection", 10),
    Status.INSPECTED_PROBLEM: Deadline("notice", 10),
    Status.NOTICE_ISSUED: Deadline("reinspection", 10),
    Status.ESCALATED_COMMUNITY: Deadline("community_action", 15),
    Status.ESCALATED_DEPARTMENT: Deadline("department_action", 15),
}
# States whose deadline keeps running from an earlier state instead of restarting.
# Assignment keeps the push's clock, and a reassignment the first assignment's.
_CLOCK_CONTINUES: dict[Status, frozenset[Status]] = {Status.ASSIGNED: frozenset({Status.PUSHED, Status.ASSIGNED})}


def allowed_moves(current: Status) -> list[Status]:
    """The states a task in `current` may move to (cancellation included for open states)."""
    moves = list(_MOVES[current])
    if current not in TERMINAL:
        moves.append(Status.CANCELLED)
    return moves


def check_move(current: Status, target: str, *, has_position: bool) -> Status:
    """The target as a Status if the move is allowed and complete; TransitionError otherwise."""
    try:
        wanted = Status(target)
    except ValueError:
        raise TransitionError(current, target, f"unknown state '{target}'", allowed_moves(current)) from None
    if wanted not in allowed_moves(current):
        raise TransitionError(
            current, target, f"a task that is {current.value} cannot become {wanted.value}", allowed_moves(current)
        )
    if wanted in INSPECTION_TARGETS and not has_position:
        raise TransitionError(
            current, target, "an inspection needs the worker's lon/lat (proof of presence)", allowed_moves(current)
        )
    return wanted


def deadline_for(status: Status) -> Deadline | None:
    """The clock the task runs against in this state (None when nobody owes anything: done or waiting)."""
    return DEADLINES.get(status)


def restarts_clock(previous: Status, new: Status) -> bool:
    """Whether entering `new` from `previous` starts a fresh deadline (assignment and reassignment keep the clock)."""
    return previous not in _CLOCK_CONTINUES.get(new, frozenset()) and deadline_for(new) is not None


def is_open(status: Status) -> bool:
    """True until the task is closed or cancelled."""
    return status not in TERMINAL
