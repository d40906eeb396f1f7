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


def _mapped_rss_kb(directory: Path) -> int:
    """This process's resident kB of the mappings of files under `directory`."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        first = line.split()[0] if line else ""
        if "-" in first and not first.endswith(":"):
            inside = str(directory) in line
        elif inside and first == "Rss:":
            total += int(line.split()[1])
    return total


def test_the_store_probe_keeps_every_page_it_read_mapped_while_its_memory_is_measured(tmp_path: Path) -> None:
    # The sizing model takes the shared pages per address from the probes' RSS and PSS: a probe that dropped its
    # mappings after touching them reported a few MB of a 658 MB store.
    import numpy as np

    for name in ("a", "b"):
        np.save(tmp_path / f"{name}.npy", np.arange(1 << 20, dtype=np.int64))  # 8 MiB each
    mapped = bench_scale.touch_pages(tmp_path)
    assert sum(int(a.nbytes) for a in mapped) == 2 * 8 * 2**20
    assert _mapped_rss_kb(tmp_path) >= 2 * 8 * 1024 * 0.95
