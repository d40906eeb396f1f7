"""Story: a benchmark or `gridgov db status` names the PostgreSQL, PostGIS, GEOS and PROJ that produced its figures."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine

from gis.versions import software_versions

pytestmark = pytest.mark.db

VERSION = re.compile(r"^\d+\.\d+(\.\d+)?")  # 3.3.2, 3.11.1-CAPI-1.17.1, 9.1.1, 15.18 (Debian …)


def test_the_database_reports_postgresql_postgis_geos_and_proj(engine: Engine) -> None:
    with engine.connect() as conn:
        versions = software_versions(conn)
    for label in ("PostgreSQL", "PostGIS", "PostGIS GEOS", "PostGIS PROJ", "shapely GEOS", "pyproj PROJ"):
        assert label in versions, f"{label} missing from {versions}"
        assert VERSION.match(versions[label]), f"{label} = {versions[label]!r} does not look like a version"
    # The server first, then the libraries PostGIS was built with, then the Python side: a stable order to print.
    labels = list(versions)
    assert labels.index("PostgreSQL") < labels.index("PostGIS") < labels.index("PostGIS GEOS")
    assert labels.index("PostGIS PROJ") < labels.index("shapely GEOS") < labels.index("pyproj PROJ")


def test_without_a_connection_only_the_machine_and_python_side_are_listed() -> None:
    versions = software_versions(None)
    assert "PostgreSQL" not in versions and "PostGIS" not in versions
    assert VERSION.match(versions["shapely GEOS"]) and VERSION.match(versions["pyproj PROJ"])
    # Debian package lines, when this machine has dpkg, carry a package version each.
    for label, version in versions.items():
        if label.startswith("Debian "):
            assert version and " " not in version, (label, version)
