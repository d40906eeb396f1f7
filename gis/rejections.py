"""gis.rejections: the one text report of a refused file's problems (a line each, a count per reason at the end)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple


class ProblemLine(NamedTuple):
    """One problem as the report shows it: where (row or feature number), what (text or code), why, details."""

    where: int
    what: str
    reason_code: str
    detail: str


def format_problems(problems: Sequence[ProblemLine], *, unit: str, limit: int) -> str:
    """The first `limit` problems as lines, then `... and N more`, then `N problem(s) in M <unit>(s): reason n, …`."""
    lines = [f"row {p.where}  {p.what}  {p.reason_code}: {p.detail}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more")
    counts = Counter(p.reason_code for p in problems)
    if counts:
        summary = ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items()))
        lines.append(f"{len(problems)} problem(s) in {len({p.where for p in problems})} {unit}(s): {summary}")
    return "\n".join(lines)
