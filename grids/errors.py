"""grids.errors: domain exceptions of the grids package."""

from __future__ import annotations


class GridsError(Exception):
    """Base class of every error raised by the grids package."""


class PartitionError(GridsError):
    """A polygon cannot be partitioned (bad k, empty or invalid polygon, bad points or weights)."""


class FeatureFileError(GridsError):
    """A feature file cannot be read or lacks what its level requires."""


class TopologyError(GridsError):
    """Territory polygons cannot be repaired into a clean topology."""
