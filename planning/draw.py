"""planning.draw: the commit–reveal double-random draw (双随机) that anyone can recompute, byte for byte.

The algorithm, documented for auditors in docs/INSPECTIONS.md:

- ``server_seed`` is 32 random bytes (``secrets``), published as hex only after the draw;
- commitment = SHA-256(server_seed), hex, published with the candidate list BEFORE the public value exists;
- seed = SHA-256(server_seed ‖ UTF-8 bytes of the public value, used byte for byte as given: never stripped);
- in each stratum (one item × one credit class, under an opaque public id), the candidates are ordered by the hex
  HMAC-SHA256 (key: the 32 seed bytes, message: the UTF-8 text ``stratum_id|uscc``) ascending, and the first
  n = ⌈ratio × size⌉ are selected (exact decimal arithmetic).

No ``random`` and no NumPy generator: their streams may change between versions, a hash never does.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

SERVER_SEED_BYTES = 32
PUBLIC_VALUE_MAX_CHARS = 200
CSV_HEADER = b"stratum_id,uscc\n"
DIGEST_BYTES = 32  # SHA-256


def new_server_seed() -> bytes:
    """32 bytes from the operating system's secure generator: the secret the commitment binds."""
    return secrets.token_bytes(SERVER_SEED_BYTES)


def commitment_of(server_seed: bytes) -> str:
    """SHA-256 of the server seed bytes, hex: published before the draw, checked by anyone after it."""
    return hashlib.sha256(server_seed).hexdigest()


def seed_of(server_seed: bytes, public_value: str) -> bytes:
    """SHA-256(server_seed ‖ UTF-8 public value): neither side alone decides the draw."""
    return hashlib.sha256(server_seed + public_value.encode("utf-8")).digest()


def order_key(seed: bytes, stratum_id: str, uscc: str) -> str:
    """The hex HMAC-SHA256 of `stratum_id|uscc` under the seed: the candidate's place in its stratum's order."""
    return hmac.new(seed, f"{stratum_id}|{uscc}".encode(), hashlib.sha256).hexdigest()


def sample_size(ratio: Decimal, size: int) -> int:
    """n = ⌈ratio × size⌉ in exact decimal arithmetic (0.07 × 100 is 7, never 8 as binary floats may say)."""
    if size < 0:
        raise ValueError("size must not be negative")
    if not Decimal(0) <= ratio <= Decimal(1):
        raise ValueError("ratio must lie in [0, 1]")
    product = ratio * size
    return math.ceil(product)


def select(seed: bytes, stratum_id: str, usccs: Iterable[str], n: int) -> list[str]:
    """The n candidates of a stratum with the smallest order keys, in ascending key order (input order is moot).

    The same as sorting by `order_key`, only faster (a draw over 1.35 million candidates must take seconds): the
    HMAC state keyed with the seed and fed `stratum_id|` is made once and copied per candidate (HMAC-SHA256 of
    `stratum_id|uscc` all the same), and the raw digests, whose order is their hex text's, are sorted with the
    credit code appended (32 digest bytes first, so the code only follows).
    """
    if n <= 0:
        return []
    keyed = hmac.new(seed, f"{stratum_id}|".encode(), hashlib.sha256)
    fresh = keyed.copy
    records: list[bytes] = []
    keep = records.append
    for uscc in set(usccs):
        code = uscc.encode()
        state = fresh()
        state.update(code)
        keep(state.digest() + code)
    records.sort()
    return [record[DIGEST_BYTES:].decode() for record in records[:n]]


def candidates_csv(rows: Iterable[tuple[str, str]]) -> bytes:
    """The published candidate list: header `stratum_id,uscc`, rows sorted by (stratum_id, uscc), LF, UTF-8."""
    body = "".join(f"{stratum_id},{uscc}\n" for stratum_id, uscc in sorted(rows))
    return CSV_HEADER + body.encode("utf-8")


def candidates_sha256(rows: Iterable[tuple[str, str]]) -> str:
    """SHA-256 (hex) of the canonical candidate list's bytes (`candidates_csv`)."""
    return hashlib.sha256(candidates_csv(rows)).hexdigest()


def public_value_problem(public_value: str) -> str | None:
    """Why a public value cannot be used (Chinese), or None: it is taken byte for byte, so it must be plain text."""
    if public_value == "":
        return "公开随机数不能为空"
    if len(public_value) > PUBLIC_VALUE_MAX_CHARS:
        return f"公开随机数不能超过 {PUBLIC_VALUE_MAX_CHARS} 个字符"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in public_value):
        return "公开随机数不能含控制字符或不可见字符（请按公告原样输入，如 3 位开奖号码）"
    return None


# ------------------------------------------------------------------------------------ business hours of a visit

# The hours a visit may fall in, minutes after midnight (an assumption, documented in docs/INSPECTIONS.md): companies
# keep office hours, individual businesses (个体工商户) open later and close later, catering (餐饮) serves lunch to
# dinner and is best inspected outside the rush; an inspection needs the premises open.
COMPANY_HOURS = (9 * 60, 17 * 60 + 30)
INDIVIDUAL_HOURS = (9 * 60 + 30, 20 * 60)
CATERING_HOURS = (10 * 60, 21 * 60)
CATERING_WORD = "餐饮"


@dataclass(frozen=True)
class VisitHours:
    """A visit's business-hours window (minutes after midnight) and the time it takes."""

    window_start: int
    window_end: int
    service_minutes: int


def business_hours(kind: str, industry: str | None) -> tuple[int, int]:
    """The window an entity can be visited in: catering first (by industry), then by kind (company/individual)."""
    if industry and CATERING_WORD in industry:
        return CATERING_HOURS
    return INDIVIDUAL_HOURS if kind == "individual" else COMPANY_HOURS


def visit_hours(kind: str, industry: str | None, item_minutes: Iterable[int]) -> VisitHours:
    """The visit's window and its service time: one visit for every drawn item, so their minutes add up."""
    start, end = business_hours(kind, industry)
    return VisitHours(start, end, sum(item_minutes))
