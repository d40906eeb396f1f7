"""grids.errors: domain exceptions of the grids package, and the rejections a refused boundary file carries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gis.rejections import ProblemLine, format_problems

# Rejections listed by format_rejections before it summarises the rest.
FORMAT_LIMIT = 200


class GridsError(Exception):
    """Base class of every error raised by the grids package."""


class PartitionError(GridsError):
    """A polygon cannot be partitioned (bad k, empty or invalid polygon, bad points or weights)."""


class FeatureFileError(GridsError):
    """A feature file cannot be read or lacks what its level requires."""


class TopologyError(GridsError):
    """Territory polygons cannot be repaired into a clean topology."""


class LocateError(GridsError):
    """The locator cannot be built (bad codes or geometries, unusable cell size) or called (bad arrays)."""


@dataclass(frozen=True)
class Rejection:
    """One problem with one feature: its 0-based position in the file, its code if any, why, and details."""

    index: int
    code: str | None
    reason_code: str
    detail: str


class ImportRejected(GridsError):
    """A boundary file failed validation; nothing was loaded."""

    def __init__(self, path: Path, rejections: list[Rejection]) -> None:
        self.rejections = rejections
        n_features = len({r.index for r in rejections})
        super().__init__(f"{path}: {n_features} feature(s) rejected, nothing loaded\n{format_rejections(rejections)}")


def format_rejections(rejections: Sequence[Rejection], *, limit: int = FORMAT_LIMIT) -> str:
    """The rejections as lines for the CLI: row, code, reason, detail; a summary per reason at the end."""
    problems = [
        ProblemLine(r.index, r.code if r.code is not None else "(no code)", r.reason_code, r.detail) for r in rejections
    ]
    return format_problems(problems, unit="feature", limit=limit)
