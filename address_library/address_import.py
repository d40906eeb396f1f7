"""address_library.address_import: importing a file of standard addresses (CSV or GeoPackage of points), all rows
or none, with a report of what was loaded and what was skipped as unchanged.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection

from address_library import repository
from address_library.errors import AddressFileError, AddressRejected
from address_library.gazetteer import Gazetteer, default_gazetteer
from address_library.new_addresses import NewAddress, insert_addresses, plan_additions, present
from grids.placement import GridPlacement

REQUIRED_COLUMNS = ("full_text", "level")
CSV_COLUMNS = ("full_text", "lon", "lat", "level", "parent_full_text")


@dataclass(frozen=True)
class ImportReport:
    """What an import did: rows loaded and rows skipped because they equal an existing address."""

    source: str
    loaded: int
    skipped: int
    ids: tuple[int, ...] = field(default=())

    def summary(self) -> str:
        """One line for the CLI."""
        return f"{self.source}: {self.loaded} address(es) loaded, {self.skipped} unchanged row(s) skipped"


# ------------------------------------------------------------------------------------------------------ import


def read_address_file(path: str | Path) -> list[NewAddress]:
    """The rows of a CSV (full_text, lon, lat, level[, parent_full_text]) or a GeoPackage of points.

    Raises AddressFileError when the file as a whole is unusable; problems of single rows are left to the
    validation, which reports them by row number (1 = the first data row).
    """
    path = Path(path)
    if not path.is_file():
        raise AddressFileError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    return _read_geopackage(path)


def import_rows(
    conn: Connection,
    placement: GridPlacement,
    items: Sequence[NewAddress],
    *,
    changed_by: str,
    source: str,
    gazetteer: Gazetteer | None = None,
) -> ImportReport:
    """Validate every row, then load all of them in the caller's transaction, or none (AddressRejected).

    Rows equal to an existing active address (same text, level, point and parent) are skipped and counted.
    """
    repository.lock_for_changes(conn)
    plan = plan_additions(conn, placement, items, gazetteer or default_gazetteer())
    if plan.rejections:
        raise AddressRejected(plan.rejections, source=source)
    ids = insert_addresses(conn, plan.rows, action="import", changed_by=changed_by, note=f"import of {source}")
    return ImportReport(source=source, loaded=len(ids), skipped=len(plan.skipped), ids=tuple(ids))


def import_file(conn: Connection, placement: GridPlacement, path: str | Path, *, changed_by: str) -> ImportReport:
    """Read and import one file, all rows or none."""
    return import_rows(conn, placement, read_address_file(path), changed_by=changed_by, source=str(path))


# ------------------------------------------------------------------------------------------------------ file readers


def _read_csv(path: Path) -> list[NewAddress]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, restkey="__extra__")
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in ("full_text", "lon", "lat", "level") if c not in header]
            if missing:
                raise AddressFileError(
                    f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(CSV_COLUMNS)} (header row)"
                )
            reader.fieldnames = header
            items: list[NewAddress] = []
            for n, record in enumerate(reader, start=1):
                if record.get("__extra__") or any(record.get(c) is None for c in header):
                    fields = len(header) + len(record.get("__extra__") or []) - sum(v is None for v in record.values())
                    problem = f"{fields} field(s) where the header has {len(header)}"
                    items.append(NewAddress(record.get("full_text"), None, None, None, row=n, problem=problem))
                    continue
                items.append(
                    NewAddress(
                        full_text=record["full_text"],
                        lon=record["lon"],
                        lat=record["lat"],
                        level=record["level"],
                        parent_full_text=record.get("parent_full_text") or None,
                        row=n,
                    )
                )
    except UnicodeDecodeError as exc:
        raise AddressFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise AddressFileError(f"{path}: malformed CSV ({exc})") from exc
    if not items:
        raise AddressFileError(f"{path}: the file has no rows")
    return items


def _read_geopackage(path: Path) -> list[NewAddress]:
    from grids.errors import FeatureFileError
    from grids.featureio import read_features

    try:
        frame = read_features(path)
    except FeatureFileError as exc:
        raise AddressFileError(str(exc)) from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise AddressFileError(f"{path}: missing attribute(s) {', '.join(missing)}; expected full_text, level")
    has_parent = "parent_full_text" in frame.columns
    items: list[NewAddress] = []
    for n, (geom, text_, level, parent) in enumerate(
        zip(
            frame.geometry,
            frame["full_text"],
            frame["level"],
            frame["parent_full_text"] if has_parent else [None] * len(frame),
            strict=True,
        ),
        start=1,
    ):
        is_point = geom is not None and not geom.is_empty and geom.geom_type == "Point"
        items.append(
            NewAddress(
                full_text=text_,
                lon=geom.x if is_point else f"({geom.geom_type if geom is not None else 'no geometry'})",
                lat=geom.y if is_point else "(not a point)",
                level=level,
                parent_full_text=str(parent) if present(parent) else None,
                row=n,
            )
        )
    return items
