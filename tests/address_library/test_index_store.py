"""A server or a Dask worker opens the address index from disk in milliseconds and answers exactly as a fresh build."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from address_library.index import encode_key
from address_library.index_store import (
    IndexStoreError,
    OutsideShard,
    ShardColumn,
    ShardRows,
    StringColumn,
    build_store,
    find_store,
    open_geocoder,
    pack_strings,
    read_manifest,
)
from address_library.repository import AliasEntry, index_rows, library_version
from address_library.service import GeocodeAnswer, Geocoder
from grids.repository import place_names
from synthetic.geocode_cases import CaseMaker

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def built(engine: Engine) -> Geocoder:
    with engine.connect() as conn:
        return Geocoder.load(conn)


@pytest.fixture(scope="module")
def store(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    with engine.connect() as conn:
        return build_store(conn, tmp_path_factory.mktemp("index"))


@pytest.fixture(scope="module")
def opened(store: Path) -> Geocoder:
    return open_geocoder(store)


@pytest.fixture(scope="module")
def queries(engine: Engine) -> list[str]:
    """Many test-city queries: exact, retyped with noise, slips, absent, community-only, crossings, invalid."""
    with engine.connect() as conn:
        rows = index_rows(conn)
        towns, communities = place_names(conn)
        crossings = conn.execute(
            text(
                "SELECT t.name || a.name || '与' || b.name || '交叉口' FROM road a JOIN road b "
                "ON a.town_code = b.town_code AND a.id < b.id AND ST_Intersects(a.geom, b.geom) "
                "JOIN town t ON t.code = a.town_code ORDER BY a.id, b.id LIMIT 20"
            )
        ).scalars()
        crossing_texts = list(crossings)
    maker = CaseMaker(rows, towns, communities, seed=18)
    exact = rows.sort_values("id")["full_text"].iloc[::40].tolist()
    cases = [c.text for c in [*maker.retyped(300), *maker.slips(200), *maker.absent(200)]]
    community_only = [towns[c[:9]] + name for c, name in list(communities.items())[:20] if c[:9] in towns]
    invalid = ["", "   ", "\x00\x01", "东" * 400, "x"]
    return [*exact, *cases, *community_only, *crossing_texts, *invalid]


def same(a: list[GeocodeAnswer | None], b: list[GeocodeAnswer]) -> list[tuple[int, object, object]]:
    return [(i, x, y) for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]


def test_a_geocoder_opened_from_the_store_answers_exactly_as_a_fresh_build(
    built: Geocoder, opened: Geocoder, queries: list[str]
) -> None:
    assert same(opened.geocode_many(queries), built.geocode_many(queries)) == []
    statuses = {a.status for a in built.geocode_many(queries)}
    assert {"matched", "not_found", "invalid"} <= statuses
    assert opened.towns_held is None
    assert opened.fingerprint == built.fingerprint


def test_reverse_and_autocomplete_from_the_store_are_those_of_a_fresh_build(
    built: Geocoder, opened: Geocoder, queries: list[str]
) -> None:
    for lon, lat in [(113.75, 23.02), (113.9, 22.95), (113.6, 22.8), (114.1, 22.7)]:
        assert opened.reverse(lon, lat) == built.reverse(lon, lat)
    for query in queries[:60]:
        for cut in (2, 4, 7):
            assert opened.autocomplete(query[:cut]) == built.autocomplete(query[:cut])


def test_aliases_given_to_an_opened_geocoder_answer_as_in_a_fresh_build(
    engine: Engine, built: Geocoder, store: Path
) -> None:
    with engine.connect() as conn:
        target = conn.execute(text("SELECT id FROM address WHERE level = 'door' ORDER BY id LIMIT 1")).scalar_one()
    alias = AliasEntry(990_001, "一个没人知道的叫法大院子", int(target), "city", None)
    fresh = open_geocoder(store)
    fresh.set_aliases([alias])
    built.set_aliases([alias])
    try:
        answer = fresh.geocode("一个没人知道的叫法大院子")
        assert answer.address_id == target
        assert answer == built.geocode("一个没人知道的叫法大院子")
    finally:
        built.set_aliases([])


def test_another_process_with_another_hash_seed_gets_the_same_answers(
    store: Path, opened: Geocoder, queries: list[str]
) -> None:
    sample = queries[::7]
    script = (
        "import json, sys; from pathlib import Path; from address_library.index_store import open_geocoder; "
        "g = open_geocoder(Path(sys.argv[1])); qs = json.load(sys.stdin); "
        "print(json.dumps([a.as_dict() for a in g.geocode_many(qs)], ensure_ascii=False))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(store)],
        input=json.dumps(sample),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        cwd=Path(__file__).resolve().parents[2],
    )
    theirs = json.loads(out.stdout)
    ours = json.loads(json.dumps([a.as_dict() for a in opened.geocode_many(sample)], ensure_ascii=False))
    assert theirs == ours


def test_a_shard_answers_as_the_whole_store_or_not_at_all(store: Path, opened: Geocoder, queries: list[str]) -> None:
    manifest = read_manifest(store)
    towns = sorted(manifest["towns"])
    held = set(towns[: max(1, len(towns) // 3)])
    shard = open_geocoder(store, towns=held)
    assert shard.towns_held == frozenset(held)
    whole = opened.geocode_many(queries)
    answers = shard.try_geocode_many(queries)
    answered = [(a, w) for a, w in zip(answers, whole, strict=True) if a is not None]
    assert all(a == w for a, w in answered)
    assert any(a.address_id is not None for a, _ in answered)
    unanswered = [q for q, a in zip(queries, answers, strict=True) if a is None]
    assert unanswered, "some queries involve another town's rows"
    # A query the shard leaves is one whose matching reads a row of another town (a candidate, a namesake road).
    for query in unanswered:
        with pytest.raises(OutsideShard) as raised:
            shard.geocode_many([query])
        assert str(opened.index.towns[raised.value.position]) not in held


def test_a_shard_of_every_town_never_leaves_a_query(store: Path, opened: Geocoder, queries: list[str]) -> None:
    shard = open_geocoder(store, towns=read_manifest(store)["towns"])
    assert shard.try_geocode_many(queries) == opened.geocode_many(queries)


def test_building_again_reuses_the_store_and_a_damaged_one_is_refused_then_rebuilt(
    engine: Engine, tmp_path: Path
) -> None:
    with engine.connect() as conn:
        first = build_store(conn, tmp_path)
        fingerprint = library_version(conn)
        written = (first / "ids.npy").stat().st_mtime_ns
        assert build_store(conn, tmp_path) == first
        assert (first / "ids.npy").stat().st_mtime_ns == written
        assert find_store(tmp_path, fingerprint) == first
        with pytest.raises(IndexStoreError, match="library version"):
            open_geocoder(first, fingerprint=(fingerprint[0] + 1, *fingerprint[1:]))
        with (first / "text_blob.npy").open("r+b") as handle:
            handle.truncate(100)
        with pytest.raises(IndexStoreError, match="truncated"):
            open_geocoder(first)
        assert find_store(tmp_path, fingerprint) is None
        rebuilt = build_store(conn, tmp_path)
        assert open_geocoder(rebuilt).geocode_many(["x"])[0].status == "not_found"
        manifest = json.loads((rebuilt / "manifest.json").read_text())
        manifest["format"] = 999
        (rebuilt / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(IndexStoreError, match="format"):
            open_geocoder(rebuilt)


def test_only_the_two_newest_stores_of_a_scope_are_kept(engine: Engine, store: Path, tmp_path: Path) -> None:
    for age, name in ((3000, "v1-00000000000000aa-city"), (2000, "v1-00000000000000bb-city")):
        old = tmp_path / name
        shutil.copytree(store, old)
        manifest = json.loads((old / "manifest.json").read_text())
        manifest["built_at"] -= age
        (old / "manifest.json").write_text(json.dumps(manifest))
    with engine.connect() as conn:
        current = build_store(conn, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([current.name, "v1-00000000000000bb-city"])


def test_a_town_store_answers_only_with_its_own_towns_addresses(
    engine: Engine, tmp_path: Path, store: Path, queries: list[str]
) -> None:
    towns = sorted(read_manifest(store)["towns"])[:2]
    with engine.connect() as conn:
        directory = build_store(conn, tmp_path, towns=towns)
        with pytest.raises(IndexStoreError, match="no such town"):
            build_store(conn, tmp_path, towns=["999999999"])
    manifest = read_manifest(directory)
    assert manifest["scope"] == towns and set(manifest["towns"]) <= set(towns)
    local = open_geocoder(directory)
    answers = local.geocode_many(queries)
    assert {a.town_code for a in answers if a.address_id is not None} <= set(towns)
    assert any(a.address_id is not None for a in answers)


def test_two_processes_share_the_pages_of_one_store(store: Path) -> None:
    script = (
        "import sys, time; from pathlib import Path; from address_library.index_store import open_geocoder; "
        "g = open_geocoder(Path(sys.argv[1])); "
        "[g.index.full_texts[i] for i in range(len(g.index.ids))]; sum(g.index.lons); "
        "print('ready', flush=True); time.sleep(60)"
    )
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(store)], stdout=subprocess.PIPE, text=True, cwd=root)
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            shared = _mapped_store_memory(proc.pid, store)
            # Every page of the store's files this process maps is also mapped by the other: it counts half.
            assert shared["Rss"] > 0
            assert shared["Pss"] <= 0.6 * shared["Rss"], shared
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _mapped_store_memory(pid: int, store: Path) -> dict[str, int]:
    totals = {"Rss": 0, "Pss": 0}
    inside = False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        first = line.split()[0] if line else ""
        if "-" in first and not first.endswith(":"):
            inside = str(store) in line
        elif inside and first.rstrip(":") in totals:
            totals[first.rstrip(":")] += int(line.split()[1])
    return totals


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(), max_size=20))
def test_any_strings_come_back_from_the_string_table(texts: list[str]) -> None:
    column = StringColumn(*pack_strings(texts))
    assert column.tolist() == texts
    assert [column[i] for i in range(len(texts))] == texts


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(st.text(), st.text(), st.lists(st.text(max_size=3), max_size=4).map(tuple)),
    st.tuples(st.text(), st.text(), st.lists(st.text(max_size=3), max_size=4).map(tuple)),
)
def test_distinct_keys_encode_distinctly(
    a: tuple[str, str, tuple[str, ...]], b: tuple[str, str, tuple[str, ...]]
) -> None:
    assert (encode_key(a) == encode_key(b)) == (a == b)


@st.composite
def _shard_and_reads(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]], list[int], slice]:
    n = draw(st.integers(1, 60))
    bounds = st.integers(0, n)
    ranges = [tuple(sorted(pair)) for pair in draw(st.lists(st.tuples(bounds, bounds), max_size=4))]
    reads = draw(st.lists(st.integers(-n - 2, n + 2), max_size=12))
    ends = st.none() | st.integers(-n - 2, n + 2)
    window = slice(draw(ends), draw(ends), draw(st.none() | st.integers(1, 4) | st.integers(-4, -1)))
    return n, ranges, reads, window  # type: ignore[return-value]


@settings(max_examples=400, deadline=None)
@given(_shard_and_reads())
def test_a_shard_column_reads_exactly_its_towns_rows_and_refuses_every_other(
    case: tuple[int, list[tuple[int, int]], list[int], slice],
) -> None:
    n, ranges, reads, window = case
    values = np.arange(n) * 10
    column = ShardColumn(values, ShardRows(n, ranges))
    held = {p for start, end in ranges for p in range(start, end)}
    # One row at a time, as a Python int, a numpy integer or a 0-d array: the value when held, a refusal otherwise.
    for position in reads:
        for key in (position, np.int64(position), np.array(position)):
            if position in held:
                assert column[key] == values[position]
            else:
                with pytest.raises(OutsideShard) as refused:
                    column[key]
                assert refused.value.position == position
    # Many rows at once (an array, a list, a slice): all of them when every one is held, else a refusal naming one
    # that is not.
    for key, rows in ((np.array(reads, dtype=np.int64), reads), (reads, reads), (window, list(range(n))[window])):
        if set(rows) <= held:
            assert list(column[key]) == [values[p] for p in rows]
        else:
            with pytest.raises(OutsideShard) as refused:
                column[key]
            assert refused.value.position not in held


def test_long_and_unusual_strings_survive_the_string_table() -> None:
    texts = ["", "\x00", "a\x00b", "\ud800", "东" * 100_000, "😀"]
    assert StringColumn(*pack_strings(texts)).tolist() == texts


def test_a_grid_redrawn_in_place_makes_a_new_store_whose_answers_use_the_new_grid(
    engine: Engine, tmp_path: Path
) -> None:
    """The store holds the grid placement: a grid change with no address row changed must not be answered from the
    store of before (a restart of the server, or the next `gridgov geocode`, would give the old grid)."""
    from address_library.index_store import open_current

    with engine.connect() as conn:
        address_id, full_text, grid_code = conn.execute(
            text(
                "SELECT a.id, a.full_text, a.grid_code FROM address a JOIN grid g ON g.code = a.grid_code "
                "JOIN grid_version v ON v.id = g.version_id AND v.status = 'active' "
                "WHERE a.level = 'door' ORDER BY a.id LIMIT 1"
            )
        ).one()
        before = library_version(conn)
        old = open_current(conn, tmp_path)
    assert old.geocode(full_text).grid_code == grid_code
    move = "UPDATE grid SET geom = ST_Translate(geom, :dx, 0) WHERE code = :code"
    try:
        with engine.begin() as conn:
            conn.execute(text(move), {"dx": 0.5, "code": grid_code})
        with engine.connect() as conn:
            after = library_version(conn)
            assert after != before
            assert find_store(tmp_path, after) is None
            new = open_current(conn, tmp_path)
        assert new.geocode(full_text).grid_code != grid_code
        assert old.geocode(full_text).grid_code == grid_code  # the old store is untouched
    finally:
        with engine.begin() as conn:
            conn.execute(text(move), {"dx": -0.5, "code": grid_code})
