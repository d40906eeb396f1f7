"""The draw (pure): reproducible from published bytes alone, independent of input order, uniform, exact in its n."""

from __future__ import annotations

import hashlib
import hmac
import random
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from planning.draw import (
    CATERING_HOURS,
    COMPANY_HOURS,
    INDIVIDUAL_HOURS,
    candidates_csv,
    candidates_sha256,
    commitment_of,
    new_server_seed,
    order_key,
    public_value_problem,
    sample_size,
    seed_of,
    select,
    smallest,
    visit_hours,
)

SERVER_SEED = bytes(range(32))
USCCS = [f"91441900{i:09d}X" for i in range(40)]


def _independent_selection(seed_hex: str, stratum_id: str, usccs: list[str], n: int) -> list[str]:
    """The documented algorithm written again from the docs, without planning.draw."""
    seed = bytes.fromhex(seed_hex)
    keys = {u: hmac.new(seed, (stratum_id + "|" + u).encode("utf-8"), "sha256").hexdigest() for u in usccs}
    return sorted(usccs, key=lambda u: keys[u])[:n]


def test_the_commitment_and_seed_are_plain_sha256_of_the_documented_bytes() -> None:
    assert commitment_of(SERVER_SEED) == hashlib.sha256(SERVER_SEED).hexdigest()
    assert seed_of(SERVER_SEED, "835") == hashlib.sha256(SERVER_SEED + b"835").digest()
    # The public value is taken byte for byte: a trailing space is a different draw.
    assert seed_of(SERVER_SEED, "835 ") != seed_of(SERVER_SEED, "835")
    assert seed_of(SERVER_SEED, "福彩3D 835") == hashlib.sha256(SERVER_SEED + "福彩3D 835".encode()).digest()


def test_every_server_seed_is_32_fresh_bytes() -> None:
    seeds = {new_server_seed() for _ in range(50)}
    assert len(seeds) == 50
    assert all(len(s) == 32 for s in seeds)


def test_the_same_inputs_give_the_same_selection_and_shuffling_changes_nothing() -> None:
    seed = seed_of(SERVER_SEED, "2026335:835")
    first = select(seed, "ms-01/1a2b3c4d", USCCS, 7)
    shuffled = USCCS[:]
    random.Random(3).shuffle(shuffled)
    assert select(seed, "ms-01/1a2b3c4d", shuffled, 7) == first
    assert select(seed, "ms-01/1a2b3c4d", list(reversed(USCCS)), 7) == first
    assert first == _independent_selection(seed.hex(), "ms-01/1a2b3c4d", USCCS, 7)


def test_another_public_value_or_stratum_draws_others() -> None:
    a = select(seed_of(SERVER_SEED, "835"), "ms-01/1a2b3c4d", USCCS, 10)
    b = select(seed_of(SERVER_SEED, "836"), "ms-01/1a2b3c4d", USCCS, 10)
    c = select(seed_of(SERVER_SEED, "835"), "ms-01/ffffffff", USCCS, 10)
    assert a != b and a != c


def test_a_stratum_draws_no_one_twice_and_never_more_than_it_holds() -> None:
    seed = seed_of(SERVER_SEED, "1")
    assert select(seed, "s", USCCS + USCCS[:5], 100) == select(seed, "s", USCCS, 100)
    assert len(select(seed, "s", USCCS, 100)) == len(USCCS)
    assert select(seed, "s", USCCS, 0) == []


def test_n_is_exact_decimal_ceiling() -> None:
    assert sample_size(Decimal("0.07"), 100) == 7  # binary 0.07 * 100 is 7.000000000000001 → 8
    assert sample_size(Decimal("0.03"), 1) == 1  # no one exempt: a stratum of one may be drawn
    assert sample_size(Decimal("0.03"), 34) == 2
    assert sample_size(Decimal("1"), 12) == 12
    assert sample_size(Decimal("0.05"), 0) == 0


@given(
    ratio=st.decimals(min_value=Decimal("0.00001"), max_value=Decimal(1), places=5),
    size=st.integers(min_value=1, max_value=2_000_000),
)
def test_sample_size_is_the_least_n_covering_the_ratio(ratio: Decimal, size: int) -> None:
    n = sample_size(ratio, size)
    assert 0 < n <= size
    assert Decimal(n) >= ratio * size > Decimal(n - 1)


@settings(max_examples=60)
@given(
    usccs=st.lists(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=18, max_size=18), max_size=40),
    n=st.integers(min_value=0, max_value=50),
    public_value=st.text(min_size=1, max_size=20),
    stratum_id=st.text(alphabet="abcdef0123456789-/_", min_size=1, max_size=30),
)
def test_select_is_the_documented_order(usccs: list[str], n: int, public_value: str, stratum_id: str) -> None:
    seed = seed_of(SERVER_SEED, public_value)
    chosen = select(seed, stratum_id, usccs, n)
    distinct = sorted(set(usccs))
    assert chosen == _independent_selection(seed.hex(), stratum_id, distinct, n)
    assert len(chosen) == min(n, len(distinct))
    assert set(chosen) <= set(distinct)
    assert [order_key(seed, stratum_id, u) for u in chosen] == sorted(order_key(seed, stratum_id, u) for u in chosen)


@settings(max_examples=200)
@given(
    keys=st.lists(
        st.tuples(
            st.sampled_from([b"\x00" * 8, b"\x7f" * 8, b"\xff" * 8, bytes(range(8))]),
            st.binary(min_size=24, max_size=24),
        ),
        min_size=1,
        max_size=60,
    ),
    n=st.integers(min_value=0, max_value=70),
)
def test_only_the_first_n_are_ordered_yet_they_are_the_first_n_of_the_full_sort(
    keys: list[tuple[bytes, bytes]], n: int
) -> None:
    """Digests crowded on a few first-8-byte values (ties at the partition's bound on purpose): the shortcut still
    takes exactly the first n of the full sort by digest, then credit code, in that order."""
    digests = [head + tail for head, tail in keys]
    codes = [f"91441900{i:09d}X".encode() for i in range(len(digests))]
    full = sorted(range(len(digests)), key=lambda i: (digests[i], codes[i]))
    assert smallest(digests, codes, n) == full[:n]


def test_over_many_public_values_every_candidate_is_drawn_equally_often() -> None:
    candidates = USCCS[:20]
    counts: Counter[str] = Counter()
    draws = 4_000
    for i in range(draws):
        counts.update(select(seed_of(SERVER_SEED, f"{i:05d}"), "ms-01/0badc0de", candidates, 3))
    observed = [counts[u] for u in candidates]
    assert sum(observed) == draws * 3
    result = chisquare(observed)
    assert result.pvalue > 0.001, observed


def test_the_candidate_list_has_the_documented_bytes() -> None:
    rows = [("b/2", "91441900000000002X"), ("a/1", "91441900000000003X"), ("a/1", "91441900000000001X")]
    data = candidates_csv(rows)
    assert data == (b"stratum_id,uscc\na/1,91441900000000001X\na/1,91441900000000003X\nb/2,91441900000000002X\n")
    assert candidates_csv(reversed(rows)) == data
    assert candidates_sha256(rows) == hashlib.sha256(data).hexdigest()
    assert candidates_csv([]) == b"stratum_id,uscc\n"


def test_public_values_that_cannot_be_typed_back_are_refused() -> None:
    assert public_value_problem("835") is None
    assert public_value_problem("中国福利彩票3D 第2026335期：8 3 5") is None
    assert public_value_problem("") is not None
    assert public_value_problem("8" * 201) is not None
    assert public_value_problem("835\n") is not None
    assert public_value_problem("8\x0035") is not None
    assert public_value_problem("83\u200b5") is not None  # an invisible zero-width space


@pytest.mark.parametrize(
    "value", [" ", " 835", "835 ", "\u00a0835", "8\u00a035", "8\u30003\u30005", "835\u3000", "8\u20025"]
)
def test_public_values_with_whitespace_an_auditor_cannot_see_are_refused(value: str) -> None:
    # Each looks like "835" (or nothing) on a notice board, yet would give another seed.
    assert public_value_problem(value) is not None


def test_plain_spaces_between_visible_characters_are_kept_as_typed() -> None:
    assert public_value_problem("8 3 5") is None
    assert public_value_problem("福彩3D 第2026335期 8 3 5") is None


def test_business_hours_follow_the_kind_and_catering() -> None:
    hours = visit_hours("company", "软件和信息技术服务业", [30, 45])
    assert (hours.window_start, hours.window_end, hours.service_minutes) == (*COMPANY_HOURS, 75)
    hours = visit_hours("individual", "零售业", [20])
    assert (hours.window_start, hours.window_end, hours.service_minutes) == (*INDIVIDUAL_HOURS, 20)
    hours = visit_hours("individual", "餐饮业", [30, 30])
    assert (hours.window_start, hours.window_end) == CATERING_HOURS


def test_the_worked_example_in_the_auditors_docs_is_what_the_code_computes() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "INSPECTIONS.md").read_text(encoding="utf-8")
    server_seed = bytes(range(32))
    a, b = "market_supervision-01/3f9a0c1e", "market_supervision-01/b7d24e55"
    first = [
        "91441900MA00000111",
        "91441900MA00000124",
        "91441900MA00000137",
        "91441900MA0000014A",
        "91441900MA0000015D",
    ]
    second = ["91441900MA00000212", "91441900MA00000225", "91441900MA00000238"]
    rows = [(a, u) for u in first] + [(b, u) for u in second]
    listing = candidates_csv(rows).decode("utf-8")
    assert f"```\n{listing}```" in docs
    assert f"server_seed = {server_seed.hex()}" in docs
    assert f"candidates_sha256 = {candidates_sha256(rows)}" in docs
    assert f"commitment = {commitment_of(server_seed)}" in docs
    seed = seed_of(server_seed, "835")
    assert f"seed = {seed.hex()}" in docs
    for stratum_id, usccs, ratio in ((a, first, Decimal("0.30")), (b, second, Decimal("0.05"))):
        for uscc in usccs:
            assert f"| {uscc} | `{order_key(seed, stratum_id, uscc)}` |" in docs
        chosen = sorted(select(seed, stratum_id, usccs, sample_size(ratio, len(usccs))))
        assert "Selected: " + ", ".join(f"`{u}`" for u in chosen) + "." in docs


def test_the_auditors_docs_state_what_a_published_ratio_reveals_and_what_limits_it() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "INSPECTIONS.md").read_text(encoding="utf-8")
    limit = " ".join(docs.split("## 6.")[1].split("## 7.")[0].split())
    assert "identifies the class of every candidate" in limit and "hint" not in limit
    assert "withdraws its candidate list" in limit and "carry no class" in limit
    assert "public_value_announced" in docs.split("## 1.")[1].split("## 2.")[0]
    assert "U+00A0" in docs.split("## 3.")[1].split("## 4.")[0]
