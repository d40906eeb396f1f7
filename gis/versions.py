"""gis.versions: the versions of the software that decides spatial results and their speed.

PostgreSQL, PostGIS and the GEOS, PROJ (and GDAL) libraries PostGIS was built against, as the database reports
them; the Debian packages of this machine that ship them; and the GEOS and PROJ the Python side (shapely,
pyproj) links. Two GEOS versions can answer the same `ST_Covers` or `buffer` differently, so a benchmark or a
status report names them all.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess

import pyproj
import shapely
from sqlalchemy import Connection, text

# Debian packages that ship the server and the geometry libraries (dpkg-query patterns; the installed ones count).
DEBIAN_PACKAGES = (
    "postgresql-[0-9][0-9]",
    "postgresql-[0-9][0-9]-postgis-[0-9]",
    "libgeos-c1*",
    "libproj[0-9]*",
)
# postgis_full_version() entries worth naming, with their labels.
_POSTGIS_LIBRARIES = (("GEOS", "PostGIS GEOS"), ("PROJ", "PostGIS PROJ"), ("GDAL", "PostGIS GDAL"))
_ENTRY = re.compile(r'([A-Z_]+)="([^"]*)"')


def software_versions(conn: Connection | None) -> dict[str, str]:
    """Label → version, in a stable order: database items (when `conn` is given), Debian packages, Python side.

    Only what is there is listed: no PostGIS items on a database without the extension, no package lines on a
    machine without dpkg.
    """
    versions: dict[str, str] = {}
    if conn is not None:
        versions.update(_database_versions(conn))
    versions.update(_debian_packages())
    versions["shapely"] = str(shapely.__version__)
    versions["shapely GEOS"] = str(shapely.geos_version_string)
    versions["pyproj"] = str(pyproj.__version__)
    versions["pyproj PROJ"] = str(pyproj.proj_version_str)
    return versions


def _database_versions(conn: Connection) -> dict[str, str]:
    versions: dict[str, str] = {}
    server = str(conn.execute(text("SELECT version()")).scalar_one())
    # "PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc …": keep the release.
    versions["PostgreSQL"] = server.removeprefix("PostgreSQL ").split(" on ", 1)[0].strip()
    installed = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")).scalar()
    if installed is None:
        return versions
    full = str(conn.execute(text("SELECT postgis_full_version()")).scalar_one())
    entries = dict(_ENTRY.findall(full))
    # POSTGIS="3.3.2 4975da8": the release and its commit.
    versions["PostGIS"] = entries.get("POSTGIS", str(installed))
    if "POSTGIS" in entries and str(installed) not in entries["POSTGIS"].split():
        versions["PostGIS"] += f" (extension scripts {installed})"  # the library was upgraded, not the extension
    for key, label in _POSTGIS_LIBRARIES:
        if key in entries:
            # PROJ="9.1.1 NETWORK_ENABLED=OFF …" and GDAL="GDAL 3.6.2, released 2023/01/02": the version alone.
            value = entries[key].removeprefix("GDAL ").split(",", 1)[0]
            versions[label] = value.split()[0] if value.split() else value
    return versions


def _debian_packages() -> dict[str, str]:
    dpkg_query = shutil.which("dpkg-query")
    if dpkg_query is None:
        return {}
    listed = subprocess.run(
        [dpkg_query, "--show", "--showformat=${db:Status-Abbrev}|${Package}|${Version}\n", *DEBIAN_PACKAGES],
        capture_output=True,
        text=True,
        check=False,  # exit 1 when a pattern matches no package: the others are still listed
    ).stdout
    installed: dict[str, str] = {}
    for line in listed.splitlines():
        status, _, rest = line.partition("|")
        package, _, version = rest.partition("|")
        if status.strip() == "ii" and version:
            installed[package] = version
    # In the order of DEBIAN_PACKAGES (the server first), not dpkg's alphabetical one.
    return {
        f"Debian {package}": installed[package]
        for pattern in DEBIAN_PACKAGES
        for package in sorted(installed)
        if fnmatch.fnmatchcase(package, pattern)
    }
