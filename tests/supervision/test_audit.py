"""The task holder: one type builds and reads the stored holder strings, and they survive the round trip; who acts;
a task's stored departments.
"""

from __future__ import annotations

import pytest

from supervision.audit import SYSTEM, Actor, Holder, stored
from supervision.scope import Scope
from supervision.task_states import merge_departments, split_departments


@pytest.mark.parametrize(
    ("holder", "text"),
    [
        (Holder.worker(42), "worker:42"),
        (Holder.grid("441900003001001"), "grid:441900003001001"),
        (Holder.community("441900003001"), "community:441900003001"),
        (Holder.departments(["tobacco", "health"]), "department:tobacco,health"),
    ],
)
def test_a_holder_is_stored_as_kind_and_code_and_read_back_the_same(holder: Holder, text: str) -> None:
    assert str(holder) == stored(holder) == text
    assert Holder.parse(text) == holder


def test_a_task_without_a_worker_waits_in_its_grids_queue() -> None:
    assert Holder.worker_or_queue(None, "441900003001001") == Holder.grid("441900003001001")
    assert Holder.worker_or_queue(7, "441900003001001") == Holder.worker(7)
    assert Holder.worker(7).worker_id == 7 and Holder.grid("441900003001001").worker_id is None
    assert Holder.parse("department:tobacco,health").department_codes == ["tobacco", "health"]


def test_a_closed_task_has_no_holder_and_a_foreign_string_is_refused() -> None:
    assert Holder.read(None) is None and stored(None) is None
    for junk in ("nobody", "team:3", ""):
        with pytest.raises(ValueError, match="not a task holder"):
            Holder.parse(junk)


def test_an_actor_is_a_worker_only_through_a_worker_scope() -> None:
    assert Actor("user:worker7", "grid_worker", Scope("worker", "7", "441900003")).worker_id == 7
    assert (
        SYSTEM.worker_id is None
        and Actor("user:tobacco", "department_officer", Scope("department", "tobacco")).worker_id is None
    )


def test_a_tasks_departments_are_stored_comma_separated_each_once() -> None:
    assert split_departments(None) == split_departments("") == []
    assert split_departments("tobacco,health") == ["tobacco", "health"]
    assert merge_departments(None, ["health"]) == "health"
    assert merge_departments("tobacco,health", ["health", "market_supervision"]) == "tobacco,health,market_supervision"
