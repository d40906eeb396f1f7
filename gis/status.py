"""gis.status: what `gridgov db status` reports: role, durability, authentication and software versions."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, create_engine, pool, text
from sqlalchemy.exc import DBAPIError

from gis.settings import DatabaseSettings

# The settings whose values decide whether an acknowledged write survives a power loss.
DURABILITY_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes")
# Authentication methods that let a connection in without a password.
PASSWORDLESS_METHODS = frozenset({"trust"})


@dataclass(frozen=True)
class DatabaseStatus:
    """One reading of a database: who we are there, how durable and how closed it is, what software it runs."""

    role: str
    superuser: bool
    durability: dict[str, str]
    password_encryption: str
    # pg_hba rules as "TYPE DATABASE USER [ADDRESS] METHOD", or None when this role may not read them.
    hba_rules: list[str] | None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def durable(self) -> bool:
        """True when fsync, synchronous_commit and full_page_writes are all on (PostgreSQL's defaults)."""
        return all(self.durability.get(name) == "on" for name in DURABILITY_SETTINGS)

    @property
    def trusts_without_password(self) -> bool | None:
        """True when some pg_hba rule admits connections without a password; None when the rules are not visible."""
        if self.hba_rules is None:
            return None
        return any(rule.split()[-1] in PASSWORDLESS_METHODS for rule in self.hba_rules)


def read_status(conn: Connection, *, admin: Connection | None = None) -> DatabaseStatus:
    """Read the status through `conn` (the platform's role); `admin` (a superuser) can also read pg_hba rules."""
    from gis.versions import software_versions

    role, superuser = conn.execute(
        text("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
    ).one()
    durability = {name: str(conn.execute(text(f"SHOW {name}")).scalar_one()) for name in DURABILITY_SETTINGS}
    encryption = str(conn.execute(text("SHOW password_encryption")).scalar_one())
    return DatabaseStatus(
        role=str(role),
        superuser=bool(superuser),
        durability=durability,
        password_encryption=encryption,
        hba_rules=_hba_rules(admin if admin is not None else conn),
        versions=software_versions(conn),
    )


def _hba_rules(conn: Connection) -> list[str] | None:
    try:
        with conn.begin_nested():
            rows = conn.execute(
                text(
                    "SELECT type, array_to_string(database, ',') AS db, array_to_string(user_name, ',') AS usr, "
                    "address, netmask, auth_method FROM pg_hba_file_rules WHERE error IS NULL ORDER BY line_number"
                )
            ).all()
    except DBAPIError:
        return None  # only superusers may read the rules
    out = []
    for r in rows:
        where = f"{r.address}/{_prefix(r.netmask)}" if r.address and r.netmask else (r.address or "")
        out.append(" ".join(part for part in (r.type, r.db, r.usr, where, r.auth_method) if part))
    return out


def _prefix(netmask: str) -> int:
    """255.255.255.255 → 32; ffff:…:ffff → 128."""
    import ipaddress

    return bin(int(ipaddress.ip_address(netmask))).count("1")


def status_of(settings: DatabaseSettings, *, admin_url: str | None = None) -> DatabaseStatus:
    """Connect with `settings` (and `admin_url` when given) and read the status."""
    engine = create_engine(settings.sqlalchemy_url(), poolclass=pool.NullPool)
    admin_engine = (
        create_engine(DatabaseSettings(database_url=admin_url).sqlalchemy_url(), poolclass=pool.NullPool)
        if admin_url
        else None
    )
    try:
        with engine.connect() as conn:
            if admin_engine is None:
                return read_status(conn)
            with admin_engine.connect() as admin_conn:
                return read_status(conn, admin=admin_conn)
    finally:
        engine.dispose()
        if admin_engine is not None:
            admin_engine.dispose()
