"""gis.errors: exceptions of the PostGIS core."""


class GisError(Exception):
    """Base of every gis error; never raised itself."""


class PostgisUnavailable(GisError):
    """PostGIS (or PostgreSQL) is missing and cannot be installed here."""


class ClusterError(GisError):
    """The project-local PostgreSQL cluster could not be started or stopped."""


class BackupError(GisError):
    """Base of the backup and restore errors; never raised itself. The database is left as it was."""


class BackupFailed(BackupError):
    """A backup could not be read from the database or written to its file."""


class BackupInvalid(BackupError):
    """The file is not a whole gridgov backup: missing, truncated, foreign, altered or of an unknown format."""


class DatabaseNotEmpty(BackupError):
    """The database to restore into holds data, and replacing it was not asked for."""


class RestoreFailed(BackupError):
    """A restore stopped before the swap (the target is untouched) or, as its message says, after it."""


class UnknownCoordSystem(GisError, ValueError):
    """A coordinate-system name outside COORD_SYSTEMS was asked for."""
