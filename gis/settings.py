"""gis.settings: configuration from the environment (prefix GRIDGOV_)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def project_root() -> Path:
    """The checkout (or working directory) that holds the project-local state folder."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


def redact_url(url: str) -> str:
    """The URL with its password replaced by `***`, for printing and logging."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def plain_libpq_url(url: str) -> str:
    """A SQLAlchemy or libpq URL as the plain `postgresql://` form psql and psycopg accept."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


class DatabaseSettings(BaseSettings):
    """Where the PostGIS database is, or where the project-local cluster lives."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="libpq/SQLAlchemy URL of an existing PostGIS database; unset = project-local cluster.",
    )
    # An administrator of that server (a superuser, or a role with CREATEDB that may create PostGIS and is a member
    # of the application role), for restores and for reading its authentication rules; unset = none.
    database_admin_url: str | None = None
    state_dir: Path = Field(default_factory=lambda: project_root() / ".gridgov")
    pg_port: int = 54329
    pg_database: str = "gridgov"
    pg_version: int = 15

    def sqlalchemy_url(self) -> str:
        """The URL SQLAlchemy connects with (psycopg 3 driver)."""
        url = self.libpq_url()
        return url.replace("postgresql://", "postgresql+psycopg://", 1)

    def libpq_url(self, database: str | None = None) -> str:
        """The plain `postgresql://` URL, for psql and other libpq clients."""
        if self.database_url:
            return plain_libpq_url(self.database_url)
        from gis.cluster import LocalCluster

        cluster = LocalCluster.from_settings(self)
        return cluster.url(database or self.pg_database)


class ServerSettings(BaseSettings):
    """How `gridgov serve` listens and signs sessions."""

    model_config = SettingsConfigDict(env_prefix="GRIDGOV_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str | None = None
    state_dir: Path = Field(default_factory=lambda: project_root() / ".gridgov")
    max_layer_bytes: int = 1_000_000
    # Access tokens (JWT) are short-lived; browser sessions last a working day and can be signed out earlier.
    token_minutes: float = Field(default=30.0, gt=0)
    session_hours: float = Field(default=12.0, gt=0)
    # Sign-ins: argon2 verifications run in at most this many threads at once (the cores); an attempt that waits
    # longer than password_verify_wait_seconds for one is answered 429 with Retry-After instead of queueing.
    password_verify_threads: int = Field(default=2, ge=1)
    password_verify_wait_seconds: float = Field(default=2.0, gt=0)
    # Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For names the client for the
    # sign-in throttle; any other peer is the client itself.
    trusted_proxies: str = ""
    # Live streams (/v1/live) one credential may hold at once; the server serves at most 200 in all.
    live_streams_per_credential: int = Field(default=4, ge=1)
    # Uploaded batch geocoding files and their results are removed this many days after the upload (photos are
    # evidence and are kept).
    batch_retention_days: float = Field(default=7.0, gt=0)

    def resolved_secret_key(self) -> str:
        """The configured secret, or one generated once into `.gridgov/secret` (mode 0600)."""
        if self.secret_key:
            if len(self.secret_key) < 32:
                raise ValueError("GRIDGOV_SECRET_KEY must be at least 32 characters")
            return self.secret_key
        import os
        import secrets

        path = self.state_dir / "secret"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        return key
