"""address_library.calibration: the match evidence → the probability that the answer is right at its stated level.

The matcher records *how* it found each answer (`Evidence`: the path — exact text, components, the address above,
a corrected slip, road interpolation, community or town — whether the typed town and community agree with the
answer, how many characters were corrected, whether text was left over). The confidence it reports is the share
of answers with the same evidence that were right, on a labelled set the benchmark generates (noisy library
addresses, input-method slips and absent addresses, 4:1): histogram-binning calibration over discrete evidence,
with each cell shrunk towards its coarser cell (an m-estimate), so a rare combination borrows strength from its
path instead of claiming certainty from a handful of rows.

The fitted table is small (a few hundred cells) and ships in `address_library/data/calibration.json`;
`python -m benchmarks.calibrate` refits it and the geocoder benchmark checks it on a set kept apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

# How many rows a cell's parent counts for when the cell's own rate is shrunk towards it.
PRIOR_WEIGHT = 20.0
# A path the labelled set never produced: no evidence, no confidence beyond a coin toss.
UNSEEN = 0.5
MAX_SLIPS = 2


@dataclass(frozen=True)
class Evidence:
    """How one answer was found."""

    path: (
        str  # text, components, parent, slip, contained, road_door, road_line, intersection, relative, community, town
    )
    town: str = "none"  # confirmed / missing / conflict / none (nothing to compare)
    community: str = "none"  # confirmed / missing / conflict / none
    slips: int = 0  # characters corrected (input-method slips, generic words put back)
    note: bool = False  # typed text left over that is not part of the standard address

    def cells(self) -> list[str]:
        """The calibration cells of this evidence, coarsest first."""
        slips = min(self.slips, MAX_SLIPS)
        return [
            self.path,
            f"{self.path}|{self.town}",
            f"{self.path}|{self.town}|{self.community}",
            f"{self.path}|{self.town}|{self.community}|{slips}",
            f"{self.path}|{self.town}|{self.community}|{slips}|{int(self.note)}",
        ]


class Calibration:
    """Counts of (rows, right answers) per evidence cell, and the smoothed probability they give."""

    def __init__(self, counts: dict[str, tuple[int, int]], source: str = "") -> None:
        self.counts = counts
        self.source = source

    def probability(self, evidence: Evidence) -> float:
        """P(right at the stated level | evidence), shrunk cell by cell from the path down."""
        cells = evidence.cells()
        if cells[0] not in self.counts:
            return UNSEEN
        p = UNSEEN
        weight = 0.0
        for cell in cells:
            n, right = self.counts.get(cell, (0, 0))
            if n == 0:
                break
            p = (right + weight * p) / (n + weight)
            weight = PRIOR_WEIGHT
        return round(p, 3)

    @classmethod
    def fit(cls, labelled: Iterable[tuple[Evidence, bool]], source: str = "") -> Calibration:
        """Count rows and right answers in every cell of every labelled answer."""
        counts: dict[str, list[int]] = {}
        for evidence, right in labelled:
            for cell in evidence.cells():
                entry = counts.setdefault(cell, [0, 0])
                entry[0] += 1
                entry[1] += int(right)
        return cls({k: (v[0], v[1]) for k, v in sorted(counts.items())}, source)

    def save(self, path: Path) -> None:
        """Write the table as JSON (cells sorted, one per line, so a refit reads as a diff)."""
        body = ",\n".join(f"    {json.dumps(k, ensure_ascii=False)}: [{n}, {r}]" for k, (n, r) in self.counts.items())
        path.write_text(
            '{\n  "source": '
            + json.dumps(self.source, ensure_ascii=False)
            + ',\n  "counts": {\n'
            + body
            + "\n  }\n}\n",
            encoding="utf-8",
        )

    @classmethod
    def from_json(cls, raw: str) -> Calibration:
        data = json.loads(raw)
        return cls({k: (int(v[0]), int(v[1])) for k, v in data["counts"].items()}, data.get("source", ""))


@lru_cache(maxsize=1)
def shipped() -> Calibration:
    """The table fitted by `python -m benchmarks.calibrate`, shipped with the package."""
    path = resources.files("address_library") / "data" / "calibration.json"
    return Calibration.from_json(path.read_text(encoding="utf-8"))


def reliability(pairs: list[tuple[float, bool]], bins: int = 10) -> tuple[list[tuple[str, int, float, float]], float]:
    """Reliability table (bin, rows, mean confidence, observed accuracy) and the expected calibration error."""
    table: list[tuple[str, int, float, float]] = []
    total = len(pairs)
    ece = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(c, r) for c, r in pairs if (lo <= c < hi) or (b == bins - 1 and c == 1.0)]
        if not inside:
            continue
        mean_c = sum(c for c, _ in inside) / len(inside)
        accuracy = sum(r for _, r in inside) / len(inside)
        table.append((f"{lo:.1f}–{hi:.1f}", len(inside), mean_c, accuracy))
        ece += len(inside) / total * abs(mean_c - accuracy)
    return table, ece
