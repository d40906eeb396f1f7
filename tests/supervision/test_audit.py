"""The task holder: one type builds and reads the stored holder strings, and they survive the round trip."""

from __future__ import annotations

import pytest

from supervision.audit import Holder, stored


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
