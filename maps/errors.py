"""maps.errors: exceptions of the map layers and the map page."""


class MapsError(Exception):
    """Base of every maps error; never raised itself."""


class InvalidLayerRequest(MapsError):
    """A layer request is malformed (bbox not four numbers, out of range, min not below max, bad zoom)."""


class LayerTooLarge(MapsError):
    """A layer would exceed the payload limit even at the coarsest simplification allowed."""


class UnknownLayer(MapsError):
    """No map layer has this name."""


class UnknownGrid(MapsError):
    """No grid of the active version has this code."""


class AggregateError(MapsError):
    """An aggregation request is malformed (unit, H3 resolution, window, kinds, coordinates, class scheme)."""


class HotspotError(MapsError):
    """A hotspot request is malformed (mismatched lengths, negative or non-finite values, bad cells, bad levels)."""


class ExportError(MapsError):
    """The offline libraries are missing, so a standalone map cannot be written."""
