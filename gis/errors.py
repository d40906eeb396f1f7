"""gis.errors: exceptions of the PostGIS core."""


class GisError(Exception):
    """Base of every gis error; never raised itself."""


class PostgisUnavailable(GisError):
    """PostGIS (or PostgreSQL) is missing and cannot be installed here."""


class ClusterError(GisError):
    """The project-local PostgreSQL cluster could not be started or stopped."""
