"""Story: the scale-out model in docs/SCALE.md is computed, not typed: the Amdahl fit gives back the serial fraction
that made the times, a bigger region never needs fewer machines, and a path that lost rows fails the benchmark."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from address_library.batch import BatchReport
from benchmarks import bench_scale
from benchmarks.bench_scale import Region, amdahl_serial_fraction, memory_machines, regeocode_s
from benchmarks.common import BenchmarkFailed


@given(st.floats(min_value=0.0, max_value=1.0), st.floats(min_value=1.0, max_value=1e5))
def test_the_fit_through_one_and_two_workers_gives_back_the_serial_fraction(s: float, t1: float) -> None:
    t2 = t1 * (s + (1 - s) / 2)
    assert amdahl_serial_fraction(t1, t2) == pytest.approx(s, abs=1e-9)


@given(st.floats(min_value=1e6, max_value=1e9), st.integers(min_value=1, max_value=400))
def test_more_addresses_never_need_fewer_machines_for_memory(addresses: float, cities: int) -> None:
    small = memory_machines(Region("small", addresses, addresses / 2, cities), 200.0, 100.0)
    big = memory_machines(Region("big", addresses * 2, addresses, cities), 200.0, 100.0)
    if small is None:
        assert big is None
    elif big is not None:
        assert big >= small


def test_with_fewer_cores_than_cities_the_cities_take_turns() -> None:
    region = Region("r", 40e6, 18e6, 21)
    one_city_s = 18e6 / 21 / 10_000
    # One machine of 8 cores and 21 cities: 3 turns of one city per core.
    assert regeocode_s(region, 1, 10_000, 0.1) == pytest.approx(3 * one_city_s)
    # Enough cores for every city: each city on its share, Amdahl within the city.
    many = regeocode_s(region, 21, 10_000, 0.1)
    assert many == pytest.approx(one_city_s * (0.1 + 0.9 / 8))
    assert many < regeocode_s(region, 3, 10_000, 0.1)


def test_a_path_that_lost_rows_fails_the_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_text("address,status\n")
    with pytest.raises(BenchmarkFailed, match="999 rows written, 1,000 read"):
        bench_scale._checked(BatchReport(rows=999, by_status={"matched": 999}, seconds=1.0), out, 1_000, "a path")
    with pytest.raises(BenchmarkFailed, match="invalid"):
        bench_scale._checked(BatchReport(rows=2, by_status={"matched": 1, "invalid": 1}, seconds=1.0), out, 2, "p")
    assert len(bench_scale._checked(BatchReport(rows=2, by_status={"matched": 2}, seconds=1.0), out, 2, "p")) == 64
