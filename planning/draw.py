"""planning.draw: the commit–reveal double-random draw (双随机) that anyone can recompute, byte for byte.

The algorithm, documented for auditors in docs/INSPECTIONS.md:

- ``server_seed`` is 32 random bytes (``secrets``), published as hex only after the draw;
- commitment = SHA-256(server_seed), hex, published with the candidate list BEFORE the public value exists;
- seed = SHA-256(server_seed ‖ UTF-8 bytes of the public value, used byte for byte as given: never stripped);
- in each stratum (one item × one credit class, under an opaque public id), the candidates are ordered by the hex
  HMAC-SHA256 (key: the 32 seed bytes, message: the UTF-8 text ``stratum_id|uscc``) ascending, and the first
  n = ⌈ratio × size⌉ are selected (exact decimal arithmetic).

No ``random`` and no NumPy generator: their streams may change between versions, a hash never does. (NumPy only
orders the keys, see `smallest`.)
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import repeat

import numpy as np

SERVER_SEED_BYTES = 32
PUBLIC_VALUE_MAX_CHARS = 200
CSV_HEADER = b"stratum_id,uscc\n"
DIGEST_BYTES = 32  # SHA-256
HEAD_BYTES = 8  # the part of a digest NumPy partitions on (a uint64)


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
    """The n candidates of a stratum with the smallest order keys, in ascending key order (input order is moot)."""
    if n <= 0:
        return []
    prefix = f"{stratum_id}|".encode()
    codes = [uscc.encode() for uscc in set(usccs)]
    chosen = smallest(digests(seed, [prefix + code for code in codes]), codes, n)
    return [codes[i].decode() for i in chosen]


def digests(seed: bytes, messages: Sequence[bytes]) -> list[bytes]:
    """The raw HMAC-SHA256 of each message under the seed (their order is their hex text's: `order_key`'s).

    One C call per message (`hmac.digest`, OpenSSL's one-shot HMAC): at 1.35 million candidates this is most of a
    draw's selection, and faster than copying a keyed HMAC object per candidate.
    """
    return list(map(hmac.digest, repeat(seed), messages, repeat("sha256")))


def smallest(keys: Sequence[bytes], codes: Sequence[bytes], n: int) -> list[int]:
    """The positions of the n smallest (digest, code) pairs, ascending: the first n of the sorted order, unsorted.

    Only the first n of a stratum are needed, so nothing sorts all of it: the first 8 bytes of every digest, read as
    a big-endian integer, are partitioned around the n-th smallest (NumPy orders here; it draws nothing). Every one
    of the n smallest digests begins with at most that bound, so the positions at or under it (n, plus any that
    share the bound's first 8 bytes) are sorted by their full digest, then the credit code, exactly as a full sort
    would order them, and the first n taken.
    """
    size = len(keys)
    if n <= 0 or size == 0:
        return []
    if n >= size:
        within = list(range(size))
    else:
        heads = np.frombuffer(b"".join(keys), dtype=">u8")[:: DIGEST_BYTES // HEAD_BYTES]
        bound = np.partition(heads, n - 1)[n - 1]
        within = np.flatnonzero(heads <= bound).tolist()
    within.sort(key=lambda i: (keys[i], codes[i]))
    return within[:n]


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
    # Whitespace an auditor cannot see or tell apart (a leading space, U+00A0, U+3000 …) would make the same-looking
    # value give another seed: only the plain ASCII space, between visible characters, is taken.
    if public_value[0].isspace() or public_value[-1].isspace():
        return "公开随机数首尾不能有空格或其他空白字符（请按公告原样输入）"
    if any(c != " " and (c.isspace() or unicodedata.category(c) in ("Zs", "Zl", "Zp")) for c in public_value):
        return "公开随机数中只能用普通半角空格分隔，不能含全角空格、不换行空格等其他空白字符"
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
