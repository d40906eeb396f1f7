"""A task walks from the push to closed by the allowed moves only; a wrong move says what would have been right."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervision.errors import TransitionError
from supervision.permissions import MOVE_RULES, MOVE_TARGETS, Capability, Role, may_move_to, may_reassign, permits
from supervision.task_states import WORKER_HELD
from supervision.workflow import (
    TERMINAL,
    Status,
    allowed_moves,
    check_move,
    deadline_for,
    is_open,
    restarts_clock,
)

HAPPY_PATH = [Status.ASSIGNED, Status.INSPECTED_OK, Status.CLOSED]
PROBLEM_PATH = [Status.ASSIGNED, Status.INSPECTED_PROBLEM, Status.NOTICE_ISSUED, Status.REINSPECTED, Status.CLOSED]
ESCALATION_PATH = [
    Status.ASSIGNED,
    Status.INSPECTED_PROBLEM,
    Status.NOTICE_ISSUED,
    Status.ESCALATED_COMMUNITY,
    Status.ESCALATED_DEPARTMENT,
    Status.DEPARTMENT_FEEDBACK,
    Status.CLOSED,
]


@pytest.mark.parametrize("path", [HAPPY_PATH, PROBLEM_PATH, ESCALATION_PATH])
def test_every_documented_path_reaches_closed(path: list[Status]) -> None:
    current = Status.PUSHED
    for target in path:
        current = check_move(current, target.value, has_position=True)
    assert current is Status.CLOSED and not is_open(current)


def test_a_wrong_move_is_refused_with_the_moves_allowed_from_here() -> None:
    with pytest.raises(TransitionError) as refused:
        check_move(Status.PUSHED, "closed", has_position=True)
    assert refused.value.allowed == [Status.ASSIGNED, Status.CANCELLED]
    with pytest.raises(TransitionError, match="unknown state"):
        check_move(Status.ASSIGNED, "done", has_position=True)


def test_an_inspection_needs_the_workers_position() -> None:
    with pytest.raises(TransitionError, match="lon/lat"):
        check_move(Status.ASSIGNED, "inspected_ok", has_position=False)
    assert check_move(Status.ASSIGNED, "escalated_community", has_position=False) is Status.ESCALATED_COMMUNITY


def test_any_open_task_can_be_cancelled_and_finished_ones_cannot_move() -> None:
    for status in Status:
        if status in TERMINAL:
            assert allowed_moves(status) == []
        else:
            assert check_move(status, "cancelled", has_position=False) is Status.CANCELLED


def test_deadlines_follow_the_issue_first_inspection_reinspection_department() -> None:
    assert deadline_for(Status.PUSHED).working_days == 10  # type: ignore[union-attr]
    assert deadline_for(Status.NOTICE_ISSUED).working_days == 10  # type: ignore[union-attr]
    assert deadline_for(Status.ESCALATED_DEPARTMENT).working_days == 15  # type: ignore[union-attr]
    assert deadline_for(Status.CLOSED) is None
    # Assignment does not buy the grid more time: the first-inspection clock runs from the push.
    assert not restarts_clock(Status.PUSHED, Status.ASSIGNED)
    assert restarts_clock(Status.INSPECTED_PROBLEM, Status.NOTICE_ISSUED)


@given(st.lists(st.integers(min_value=0, max_value=20), max_size=30))
def test_walking_the_allowed_moves_never_leaves_the_machine(choices: list[int]) -> None:
    current = Status.PUSHED
    for choice in choices:
        moves = allowed_moves(current)
        if not moves:
            assert current in TERMINAL
            break
        current = check_move(current, moves[choice % len(moves)].value, has_position=True)
    assert current in set(Status)


# ------------------------------------------------------------------------------------ who may move (the holder's rule)


@given(
    role=st.sampled_from([*Role, "system", "nobody"]), current=st.sampled_from(Status), target=st.sampled_from(Status)
)
def test_every_move_a_role_may_make_is_one_the_state_machine_has_from_that_status(
    role: str, current: Status, target: Status
) -> None:
    # A role with its own rules (not free to make any move) is given only moves of the state machine.
    if may_move_to(role, current, target) and MOVE_RULES[role] is not None:
        assert target in allowed_moves(current)
        targets = MOVE_TARGETS[role]
        assert targets is not None and target in targets
    if role not in MOVE_RULES:
        assert not may_move_to(role, current, target)


def test_a_department_answers_and_closes_only_what_it_holds() -> None:
    officer = Role.DEPARTMENT_OFFICER
    assert not may_move_to(officer, Status.ESCALATED_COMMUNITY, Status.CLOSED)
    assert not may_move_to(officer, Status.INSPECTED_OK, Status.CLOSED)
    assert may_move_to(officer, Status.ESCALATED_DEPARTMENT, Status.DEPARTMENT_FEEDBACK)
    assert may_move_to(officer, Status.DEPARTMENT_FEEDBACK, Status.CLOSED)
    assert {s for s in Status if any(may_move_to(officer, s, t) for t in Status)} == {
        Status.ESCALATED_DEPARTMENT,
        Status.DEPARTMENT_FEEDBACK,
    }


def test_a_grid_worker_acts_only_at_the_workers_stage_and_never_reassigns() -> None:
    worker = Role.GRID_WORKER
    stage = {s for s in Status if s.value in WORKER_HELD}
    assert {s for s in Status if any(may_move_to(worker, s, t) for t in Status)} == stage
    assert not may_move_to(worker, Status.ESCALATED_COMMUNITY, Status.CLOSED)
    assert not may_move_to(worker, Status.ASSIGNED, Status.ASSIGNED)
    assert may_move_to(worker, Status.PUSHED, Status.ASSIGNED) and may_move_to(
        worker, Status.REINSPECTED, Status.CLOSED
    )
    assert not may_reassign(worker) and may_reassign(Role.DISPATCHER)


def test_roles_without_task_transition_make_no_move() -> None:
    for role in Role:
        if not permits(role, Capability.TASK_TRANSITION):
            # The capability check refuses them first; the table gives them nothing either.
            assert role not in MOVE_RULES
