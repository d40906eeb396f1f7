"""A confidence of 0.9 means nine answers in ten are right at their level: the calibration table keeps that promise."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from address_library.calibration import UNSEEN, Calibration, Evidence, reliability, shipped


def test_a_cell_gives_its_share_of_right_answers_shrunk_towards_its_path() -> None:
    exact = Evidence("components", "confirmed", "confirmed")
    conflict = Evidence("components", "confirmed", "conflict")
    table = Calibration.fit(
        [(exact, True)] * 990 + [(exact, False)] * 10 + [(conflict, False)] * 9 + [(conflict, True)]
    )
    assert abs(table.probability(exact) - 0.99) < 0.01
    # Ten rows of a cell weigh against twenty of its path's: far below the path, not yet at 10 %.
    assert 0.1 < table.probability(conflict) < 0.9
    assert table.probability(Evidence("road_door")) == UNSEEN


def test_the_table_survives_a_round_trip_through_its_file(tmp_path: Path) -> None:
    table = Calibration.fit([(Evidence("slip", slips=1), True), (Evidence("slip", slips=3), False)], "test")
    path = tmp_path / "calibration.json"
    table.save(path)
    again = Calibration.from_json(path.read_text(encoding="utf-8"))
    assert again.counts == table.counts and again.source == "test"
    assert again.probability(Evidence("slip", slips=2)) == table.probability(Evidence("slip", slips=2))


@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=200))
def test_the_expected_calibration_error_is_a_share_between_zero_and_one(pairs: list[tuple[float, bool]]) -> None:
    table, ece = reliability(pairs)
    assert 0.0 <= ece <= 1.0
    assert sum(n for _, n, _, _ in table) == len(pairs)


def test_a_perfectly_calibrated_set_has_no_calibration_error() -> None:
    pairs = [(0.95, i % 20 != 0) for i in range(400)] + [(0.25, i % 4 == 0) for i in range(400)]
    assert reliability(pairs)[1] < 1e-9


def test_the_shipped_table_trusts_exact_text_and_doubts_a_community_that_disagrees() -> None:
    table = shipped()
    assert table.probability(Evidence("text")) >= 0.99
    assert table.probability(Evidence("components", "confirmed", "confirmed")) >= 0.99
    assert table.probability(Evidence("components", "confirmed", "conflict")) < 0.9
    assert "FIT half" in table.source
