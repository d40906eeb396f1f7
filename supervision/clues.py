"""supervision.clues: grid workers' field reports — placed, checked for duplicates, routed, photographed.

A clue (线索) carries a point or an address, one of the high-frequency industries, a description and a
severity. It is located in a grid, compared with the same industry's clues of the last 30 days within 50 m
(suggested duplicates, never merged automatically), routed (ordinary → the industry's department, severe →
the command centre) and given a task with the same life and deadlines as any other task.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import h3
import shapely
from PIL import Image, UnidentifiedImageError
from sqlalchemy import Connection, text

from address_library.errors import AddressInputError
from address_library.match import MATCHED
from address_library.service import Geocoder
from gis import clock
from grids.codes import community_sql
from grids.repository import active_grid_at
from supervision.audit import Actor
from supervision.backdating import FUTURE_SKEW
from supervision.creation import NewTask, create_tasks
from supervision.errors import InvalidInput, NotFound, OutOfScope
from supervision.paging import Page, keyset_page
from supervision.routing import default_router
from supervision.scope import CITY, Scope, visible_row
from supervision.workflow import Duty

DUPLICATE_RADIUS_M = 50.0
DUPLICATE_WINDOW = timedelta(days=30)
MAX_PHOTO_BYTES = 8 * 1024 * 1024
MAX_PHOTOS_PER_CLUE = 9
# A phone photo is at most about 50 megapixels; more from a few megabytes is a decompression bomb.
MAX_PHOTO_PIXELS = 60_000_000
MAX_DESCRIPTION = 2000
# What a photo may be: the declared content type must be what the bytes are.
PHOTO_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
PHOTO_SUFFIX = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
MAX_FILENAME = 200
# Dropped from an uploaded file's name: control characters (NUL above all, which PostgreSQL text cannot hold).
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ClueReport:
    """A field report as the worker's app sends it."""

    industry: str
    description: str
    severity: str = "normal"
    lon: float | None = None
    lat: float | None = None
    address: str | None = None
    reported_at: datetime | None = None
    # field: a grid worker's report; hotline: a 12345 hotline work order (supervision.open311).
    source: Literal["field", "hotline"] = "field"


@dataclass(frozen=True)
class DuplicateCandidate:
    """疑似重复：同行业 50 米内、30 天内上报的另一条线索。"""

    clue_id: int
    distance_m: float = field(metadata={"description": "距离（米）"})
    reported_at: str = field(metadata={"description": "其上报时间（ISO 8601）"})
    status: str


@dataclass(frozen=True)
class ClueView:
    """一条线索：位置、行业、严重程度、去向部门、疑似重复、任务与期限、照片数。"""

    id: int
    kind: Literal["clue", "unlicensed"] = field(metadata={"description": "clue（线索）或 unlicensed（无证经营）"})
    industry: str
    description: str
    severity: Literal["normal", "severe"]
    status: str = field(metadata={"description": "其任务的状态"})
    source: Literal["field", "hotline"] = field(metadata={"description": "field（现场上报）或 hotline（热线）"})
    reported_at: datetime
    address: str | None
    town_code: str | None
    grid_code: str | None
    reported_by: str | None
    department_code: str | None = field(metadata={"description": "去向部门（严重线索为指挥中心）"})
    duplicate_candidates: list[DuplicateCandidate] | None = field(metadata={"description": "疑似重复（近的在前）"})
    lon: float = field(metadata={"description": "经度（WGS84）"})
    lat: float = field(metadata={"description": "纬度（WGS84）"})
    task_id: int | None
    due_at: datetime | None = field(metadata={"description": "其任务的期限"})
    photo_count: int


@dataclass(frozen=True)
class PhotoView:
    """线索的一张照片（按校验和存盘）。"""

    id: int
    sha256: str
    size_bytes: int
    content_type: str
    filename: str | None
    uploaded_by: str
    uploaded_at: datetime


@dataclass(frozen=True, kw_only=True)
class StoredPhoto(PhotoView):
    """刚存下的照片及其线索编号。"""

    clue_id: int


@dataclass(frozen=True)
class ClueDetail(ClueView):
    """一条线索及其照片。"""

    photos: list[PhotoView] = field(default_factory=list)


def report_clue(conn: Connection, report: ClueReport, *, actor: Actor, geocoder: Geocoder | None = None) -> ClueDetail:
    """Store a clue, suggest duplicates, route it and push its task; the stored clue."""
    router = default_router()
    if report.industry not in router.clue_industries():
        raise InvalidInput(
            f"unknown industry {report.industry!r}; choose one of {'、'.join(router.clue_industries())}",
            field="industry",
        )
    if report.severity not in ("normal", "severe"):
        raise InvalidInput("severity must be normal or severe", field="severity")
    if len(report.description) > MAX_DESCRIPTION:
        raise InvalidInput(f"description is longer than {MAX_DESCRIPTION} characters", field="description")
    now = clock.now()
    reported_at = report.reported_at or now
    if reported_at.tzinfo is None:
        raise InvalidInput("reported_at needs a time zone", field="reported_at")
    if reported_at > now + FUTURE_SKEW:
        raise InvalidInput("reported_at is in the future", field="reported_at")
    lon, lat, address = _position(report, geocoder)
    found = active_grid_at(conn, lon, lat)
    if found is None:
        raise InvalidInput(f"({lon:.6f}, {lat:.6f}) lies in no grid of the city", field="lon")
    grid_code, town_code = found
    if not actor.scope.covers(conn, "grid", grid_code):
        raise OutOfScope(f"grid {grid_code} is outside your area")
    department = (
        router.command_centre() if report.severity == "severe" else router.department_for_industry(report.industry)
    )
    duplicates = suggest_duplicates(conn, report.industry, lon, lat, reported_at, scope=actor.scope, town=town_code)
    clue_id = conn.execute(
        text(
            """
            INSERT INTO clue (kind, industry, description, severity, status, source, reported_at, address,
                              town_code, grid_code, geom, reported_by, department_code, duplicate_candidates)
            VALUES ('clue', :industry, :description, :severity, 'pushed', :source, :reported_at, :address,
                    :town, :grid, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :by, :department,
                    CAST(:duplicates AS jsonb))
            RETURNING id
            """
        ),
        {
            "industry": report.industry,
            "description": report.description,
            "severity": report.severity,
            "source": report.source,
            "reported_at": reported_at,
            "address": address,
            "town": town_code,
            "grid": grid_code,
            "lon": lon,
            "lat": lat,
            "by": actor.name,
            "department": department,
            "duplicates": _json([asdict(d) for d in duplicates]),
        },
    ).scalar_one()
    create_tasks(
        conn,
        [
            NewTask(
                Duty.UNLICENSED_PATROL,
                grid_code,
                reported_at,
                clue_id=int(clue_id),
                department_codes=[department],
                kind="clue",
                note=f"clue: {report.industry}"
                + ("; severe: command-centre queue" if report.severity == "severe" else ""),
            )
        ],
        actor=actor,
    )
    conn.execute(
        text("UPDATE clue c SET status = t.status FROM task t WHERE t.clue_id = c.id AND c.id = :id"), {"id": clue_id}
    )
    return clue_by_id(conn, int(clue_id), CITY)


def _position(report: ClueReport, geocoder: Geocoder | None) -> tuple[float, float, str | None]:
    if report.lon is not None and report.lat is not None:
        if not (-180 <= report.lon <= 180 and -90 <= report.lat <= 90):
            raise InvalidInput(f"lon/lat ({report.lon}, {report.lat}) is not a WGS84 position", field="lon")
        return float(report.lon), float(report.lat), report.address
    if not report.address:
        raise InvalidInput("a clue needs lon and lat, or an address", field="lon")
    if geocoder is None:
        raise InvalidInput("addresses cannot be geocoded here; send lon and lat", field="address")
    try:
        answer = geocoder.geocode(report.address)
    except AddressInputError as exc:
        raise InvalidInput(f"address unusable: {exc}", field="address") from None
    if answer.status != MATCHED or answer.lon is None or answer.lat is None or answer.level in ("town", "community"):
        raise InvalidInput(
            f"the address could not be placed precisely ({answer.status}, {answer.level}); send lon and lat",
            field="address",
        )
    return answer.lon, answer.lat, answer.standard_address or report.address


def suggest_duplicates(
    conn: Connection,
    industry: str,
    lon: float,
    lat: float,
    reported_at: datetime,
    *,
    scope: Scope,
    town: str | None,
) -> list[DuplicateCandidate]:
    """Clues of the same industry within 50 m reported in the 30 days before: possible duplicates, nearest first.

    Only clues the reporter may read anyway (`scope`), and never beyond the new clue's own `town` (50 m may cross a
    town boundary): a candidate list must not disclose another town's clues.
    """
    where, params = scope.clue_sql("c")
    rows = conn.execute(
        text(
            f"""
            SELECT c.id, c.reported_at, c.status,
                   round(ST_Distance(c.geom::geography, p.g::geography)::numeric, 1)::float8 AS distance_m
            FROM clue c, (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g) p
            WHERE c.industry = :industry AND c.reported_at BETWEEN :since AND :until
              AND c.town_code IS NOT DISTINCT FROM :dup_town AND ({where})
              AND ST_DWithin(c.geom::geography, p.g::geography, :radius)
            ORDER BY distance_m, c.id LIMIT 10
            """  # noqa: S608 - fixed SQL fragments; values are bound
        ),
        {
            "lon": lon,
            "lat": lat,
            "industry": industry,
            "since": reported_at - DUPLICATE_WINDOW,
            "until": reported_at,
            "radius": DUPLICATE_RADIUS_M,
            "dup_town": town,
            **params,
        },
    )
    return [DuplicateCandidate(int(r.id), r.distance_m, r.reported_at.isoformat(), r.status) for r in rows]


# ------------------------------------------------------------------------------------------------ reading


_CLUE_COLUMNS = """
    c.id, c.kind, c.industry, c.description, c.severity, c.status, c.source, c.reported_at, c.address,
    c.town_code, c.grid_code, c.reported_by, c.department_code, {candidates} AS duplicate_candidates,
    ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat,
    (SELECT t.id FROM task t WHERE t.clue_id = c.id ORDER BY t.id LIMIT 1) AS task_id,
    (SELECT t.due_at FROM task t WHERE t.clue_id = c.id ORDER BY t.id LIMIT 1) AS due_at,
    (SELECT count(*) FROM clue_photo p WHERE p.clue_id = c.id) AS photo_count
"""


def _clue_columns(scope: Scope) -> str:
    """The clue columns, its duplicate candidates narrowed to those `scope` may read, of the clue's own town.

    Candidates are stored when a clue is reported (from its reporter's scope); a reader sees only the ones they may
    read themselves, so a candidate list never discloses a clue of another town or area (nor do older rows stored
    before candidates were scoped). The scope's fragment binds the same values as the query's own condition.
    """
    where, _params = scope.clue_sql("d")
    candidates = f"""CASE WHEN c.duplicate_candidates IS NULL THEN NULL ELSE coalesce((
        SELECT jsonb_agg(x.item ORDER BY x.n)
        FROM jsonb_array_elements(c.duplicate_candidates) WITH ORDINALITY AS x(item, n)
        JOIN clue d ON d.id = (x.item->>'clue_id')::bigint
        WHERE d.town_code IS NOT DISTINCT FROM c.town_code AND ({where})), '[]'::jsonb) END"""  # noqa: S608 - fixed SQL fragments; values are bound
    return _CLUE_COLUMNS.format(candidates=candidates)


def _clue_out(row: Any) -> dict[str, Any]:
    out = dict(row)
    found = out["duplicate_candidates"]
    out["duplicate_candidates"] = None if found is None else [DuplicateCandidate(**d) for d in found]
    return out


def clue_by_id(conn: Connection, clue_id: int, scope: Scope) -> ClueDetail:
    """One clue with its task, deadline and photos; NotFound or OutOfScope."""
    where, params = scope.clue_sql("c")
    sql = f"SELECT {_clue_columns(scope)}, ({where}) AS visible FROM clue c WHERE c.id = :id"  # noqa: S608 - fixed SQL fragments; values are bound
    row = visible_row(conn, sql, {"id": clue_id, **params}, what=f"clue {clue_id}")
    photos = [
        PhotoView(**r)
        for r in conn.execute(
            text(
                "SELECT id, sha256, size_bytes, content_type, filename, uploaded_by, uploaded_at FROM clue_photo "
                "WHERE clue_id = :id ORDER BY id"
            ),
            {"id": clue_id},
        ).mappings()
    ]
    return ClueDetail(**_clue_out(row), photos=photos)


@dataclass
class ClueFilters:
    """Optional filters of the clue listing (dates are inclusive days, Asia/Shanghai)."""

    town: str | None = None
    community: str | None = None
    grid: str | None = None
    status: str | None = None
    industry: str | None = None
    severity: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    kind: str | None = None  # clue | unlicensed
    source: str | None = "field"  # field (grid workers' reports), hotline, or None for both
    h3_cell: str | None = None  # only clues inside this H3 cell (a hotspot of the heatmap page)


def list_clues(
    conn: Connection, scope: Scope, filters: ClueFilters, *, limit: int = 50, cursor: str | None = None
) -> Page[ClueView]:
    """Clues in scope, newest first, as {items, total, next}."""
    where, params = scope.clue_sql("c")
    clauses = [where]
    for column, value in (
        ("town_code", filters.town),
        ("grid_code", filters.grid),
        ("status", filters.status),
        ("industry", filters.industry),
        ("severity", filters.severity),
        ("kind", filters.kind),
        ("source", filters.source),
    ):
        if value is not None:
            clauses.append(f"c.{column} = :f_{column}")
            params[f"f_{column}"] = value
    if filters.community is not None:
        clauses.append(f"{community_sql('c.grid_code')} = :f_community")
        params["f_community"] = filters.community
    if filters.h3_cell is not None:
        # The cell's hexagon as a bound WKT polygon; the GiST index on clue.geom does the rest.
        ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(filters.h3_cell)]
        params["f_cell"] = shapely.Polygon(ring).wkt
        clauses.append("ST_Intersects(c.geom, ST_GeomFromText(:f_cell, 4326))")
    if filters.since is not None:
        clauses.append("c.reported_at >= :f_since")
        params["f_since"] = filters.since
    if filters.until is not None:
        clauses.append("c.reported_at < :f_until")
        params["f_until"] = filters.until
    return keyset_page(
        conn,
        columns=_clue_columns(scope),
        rows_from="clue c",
        count_from="clue c",
        condition=" AND ".join(clauses),
        params=params,
        order=("c.reported_at", "c.id"),
        limit=limit,
        cursor=cursor,
        build=lambda row: ClueView(**_clue_out(row)),
    )


# ------------------------------------------------------------------------------------------------ photos


def add_photo(
    conn: Connection,
    clue_id: int,
    data: bytes,
    *,
    declared_type: str | None,
    filename: str | None,
    actor: Actor,
    photo_dir: Path,
) -> StoredPhoto:
    """Verify and store one photo of a clue (on disk by checksum, described in the database)."""
    clue_by_id(conn, clue_id, actor.scope)
    if not data:
        raise InvalidInput("the photo is empty", field="file")
    if len(data) > MAX_PHOTO_BYTES:
        raise InvalidInput(f"the photo is {len(data):,} bytes; the limit is {MAX_PHOTO_BYTES:,}", field="file")
    content_type = sniff_image(data)
    declared = (declared_type or "").split(";")[0].strip().lower()
    if declared and declared != content_type:
        raise InvalidInput(f"the file is {content_type}, not {declared} as declared", field="file")
    count = conn.execute(text("SELECT count(*) FROM clue_photo WHERE clue_id = :id"), {"id": clue_id}).scalar_one()
    if count >= MAX_PHOTOS_PER_CLUE:
        raise InvalidInput(f"a clue holds at most {MAX_PHOTOS_PER_CLUE} photos", field="file")
    sha256 = hashlib.sha256(data).hexdigest()
    row = (
        conn.execute(
            text(
                "INSERT INTO clue_photo (clue_id, sha256, size_bytes, content_type, filename, uploaded_by) "
                "VALUES (:c, :s, :n, :t, :f, :by) "
                "RETURNING id, clue_id, sha256, size_bytes, content_type, filename, uploaded_by, uploaded_at"
            ),
            {
                "c": clue_id,
                "s": sha256,
                "n": len(data),
                "t": content_type,
                "f": clean_filename(filename),
                "by": actor.name,
            },
        )  # fmt: skip
        .mappings()
        .one()
    )
    # On disk only once its row is written: a refused photo leaves no file behind.
    store_photo(photo_dir, sha256, content_type, data)
    return StoredPhoto(**row)


def clean_filename(filename: str | None) -> str | None:
    """An uploaded file's name without control characters (PostgreSQL text cannot hold NUL), cut to
    MAX_FILENAME characters; None when nothing is left."""
    return _CONTROL_CHARACTERS.sub("", filename or "").strip()[:MAX_FILENAME] or None


def sniff_image(data: bytes) -> str:
    """The content type the bytes really are (JPEG, PNG or WebP, fully decodable); InvalidInput otherwise."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            width, height = image.size
            image.verify()
    except Image.DecompressionBombError:
        # A few kilobytes can claim billions of pixels: refuse it here rather than fail whoever opens it later.
        raise InvalidInput("the image claims too many pixels to be a photo", field="file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"the file is not a readable image ({exc.__class__.__name__})", field="file") from None
    if width * height > MAX_PHOTO_PIXELS:
        raise InvalidInput(f"the image is {width}×{height} pixels; the limit is {MAX_PHOTO_PIXELS:,}", field="file")
    if kind not in PHOTO_FORMATS:
        raise InvalidInput(f"{kind} images are not accepted; send JPEG, PNG or WebP", field="file")
    return PHOTO_FORMATS[kind]


def photo_path(photo_dir: Path, sha256: str, content_type: str) -> Path:
    """Where a photo lives: fanned out by the checksum's first two characters."""
    return photo_dir / sha256[:2] / f"{sha256}{PHOTO_SUFFIX[content_type]}"


def store_photo(photo_dir: Path, sha256: str, content_type: str, data: bytes) -> Path:
    """Write a photo atomically (temp file, fsync, rename); the same photo twice is stored once.

    Photos are evidence and are kept, readable by the server's user only: files 0600 (the temporary file's mode),
    folders 0700 — also a photo stored before this rule, which gets the modes when stored again."""
    path = photo_path(photo_dir, sha256, content_type)
    for folder in (photo_dir, path.parent):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
    if path.exists():
        os.chmod(path, 0o600)
        return path
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)
    return path


def photo_file(conn: Connection, photo_id: int, scope: Scope, photo_dir: Path) -> tuple[Path, str]:
    """The stored file of one photo (after the scope check on its clue), checked against its checksum."""
    row = conn.execute(
        text("SELECT clue_id, sha256, content_type FROM clue_photo WHERE id = :id"), {"id": photo_id}
    ).first()
    if row is None:
        raise NotFound(f"no photo {photo_id}")
    clue_by_id(conn, int(row.clue_id), scope)
    path = photo_path(photo_dir, row.sha256, row.content_type)
    if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != row.sha256:
        raise NotFound(f"the file of photo {photo_id} is missing or damaged")
    return path, row.content_type


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
