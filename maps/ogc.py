"""maps.ogc: OGC API Features (Part 1 Core, Part 3 CQL2 text) for towns, communities and grids — the pure part.

The collections, their queryable properties, the landing, conformance and collection documents, the links, the
parsing of `bbox`, `limit`, `offset` and property queries, and the translation of a CQL2 text filter into a SQL
fragment over whitelisted columns with bound values. SQL lives in maps.ogc_repository, the routes in
api.routers.ogc.

Why not tipg or pygeoapi: both serve collections from a connection pool and a configuration of their own, and know
nothing of our credentials; neither can take the caller's `Scope` (derived from the credential alone) as a bound
parameter of every query without running their own database pools and authentication beside ours. The few
documents OGC API Features asks for are small, so they are built here, on our app, our pool and our scope.

CQL2 text is parsed by pygeofilter (`pygeofilter.parsers.cql2_text`); its AST is translated by the small
evaluator below, which accepts only what it can translate exactly: comparisons, LIKE, IN, BETWEEN, IS NULL,
AND/OR/NOT over the collection's queryables, and S_INTERSECTS of the geometry with a BBOX or a WKT geometry.

Two limits of pygeofilter 0.4.0's grammar are made explicit rather than silently wrong: it gives AND and OR the
same precedence (CQL2 binds AND tighter), so a filter that mixes them without parentheses is refused with a 400
asking for them; and its NOT applies to one predicate only (`NOT (a AND b)` is a 400; write `NOT a OR NOT b`).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import shapely
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_text import parse as parse_cql2_text
from shapely.geometry import shape

from maps.errors import MapsError, UnknownLayer

PropertyType = Literal["string", "integer", "number"]
BBox = tuple[float, float, float, float]

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
# Far beyond any collection (the city has about 2,900 grids), and well inside PostgreSQL's bigint OFFSET.
MAX_OFFSET = 10_000_000
MAX_FILTER_CHARS = 4000
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOJSON = "application/geo+json"
JSON = "application/json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE: tuple[str, ...] = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
)
# Query parameters of /items that are not property queries (`key` is the Nominatim-style credential).
ITEMS_PARAMETERS = frozenset({"f", "bbox", "bbox-crs", "limit", "offset", "filter", "filter-lang", "filter-crs", "key"})
GEOMETRY_PROPERTY = "geometry"


class OgcRequestError(MapsError):
    """A request the OGC API refuses (400): a bad bbox, limit, offset, property query or CQL2 filter."""


class UnknownCollection(UnknownLayer):
    """No OGC collection has this id (404)."""


class UnknownFeature(UnknownLayer):
    """No feature of the collection has this id within the caller's area (404, never revealing which)."""


@dataclass(frozen=True)
class Queryable:
    """One property of a collection: its name, JSON type, Chinese title and the SQL expression that reads it."""

    name: str
    type: PropertyType
    title: str
    column: str


@dataclass(frozen=True)
class Collection:
    """One feature collection: id, Chinese title and description, and its properties (the first is the id)."""

    id: str
    title: str
    description: str
    properties: tuple[Queryable, ...]

    def queryable(self, name: str) -> Queryable | None:
        """The property of this name, or None."""
        return next((p for p in self.properties if p.name == name), None)

    @property
    def names(self) -> list[str]:
        """The names of the queryable properties, in order."""
        return [p.name for p in self.properties]


def _area_km2() -> Queryable:
    return Queryable("area_km2", "number", "面积（平方千米）", "round(CAST(h.area_m2 / 1e6 AS numeric), 3)::float8")


COLLECTIONS: Mapping[str, Collection] = {
    "towns": Collection(
        "towns",
        "镇街",
        "东莞市的镇（街道），含人口与面积。",
        (
            Queryable("code", "string", "镇街编码", "h.code"),
            Queryable("name", "string", "名称", "h.name"),
            Queryable("kind", "string", "类型（镇 / 街道）", "h.kind"),
            Queryable("population", "integer", "人口", "h.population"),
            _area_km2(),
        ),
    ),
    "communities": Collection(
        "communities",
        "村（社区）",
        "各镇街下的村（社区）。",
        (
            Queryable("code", "string", "村（社区）编码", "h.code"),
            Queryable("name", "string", "名称", "h.name"),
            Queryable("town_code", "string", "所属镇街编码", "h.town_code"),
            Queryable("kind", "string", "类型（村委会 / 居委会…）", "h.kind"),
            Queryable("population", "integer", "人口", "h.population"),
            _area_km2(),
        ),
    ),
    "grids": Collection(
        "grids",
        "网格",
        "现行网格版本的基础网格，含网格员、工作量与市场主体数。",
        (
            Queryable("code", "string", "网格编码", "h.code"),
            Queryable("name", "string", "名称", "h.name"),
            Queryable("town_code", "string", "所属镇街编码", "h.town_code"),
            Queryable("community_code", "string", "所属村（社区）编码", "h.community_code"),
            Queryable("population", "integer", "人口", "h.population"),
            Queryable("address_count", "integer", "标准地址数", "h.address_count"),
            Queryable("entity_count", "integer", "市场主体数", "h.entity_count"),
            Queryable("workload", "integer", "工作量", "h.workload"),
            Queryable("worker_count", "integer", "网格员数", "h.worker_count"),
            _area_km2(),
        ),
    ),
}


def collection_of(collection_id: str) -> Collection:
    """The collection of this id, or UnknownCollection (404)."""
    found = COLLECTIONS.get(collection_id)
    if found is None:
        raise UnknownCollection(f"no collection {collection_id!r}; choose one of {', '.join(COLLECTIONS)}")
    return found


# ------------------------------------------------------------------------------------------------------- documents


def _link(href: str, rel: str, media_type: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": media_type, "title": title}


def landing(base: str) -> dict[str, Any]:
    """The landing page: title, description and the links self, service-desc, conformance and data."""
    return {
        "title": "东莞网格化治理平台 · OGC API Features",
        "description": "镇街、村（社区）与网格的要素服务，按凭据限定范围。",
        "links": [
            _link(f"{base}/ogc", "self", JSON, "本页"),
            _link(f"{base}/openapi.json", "service-desc", OPENAPI, "接口定义（OpenAPI 3）"),
            _link(f"{base}/docs", "service-doc", "text/html", "接口文档"),
            _link(f"{base}/ogc/conformance", "conformance", JSON, "符合的标准类"),
            _link(f"{base}/ogc/collections", "data", JSON, "要素集合"),
        ],
    }


def conformance() -> dict[str, Any]:
    """The conformance declaration."""
    return {"conformsTo": list(CONFORMANCE)}


def collection_doc(base: str, collection: Collection, extent: BBox | None) -> dict[str, Any]:
    """One collection's description: id, title, extent (CRS84) and links to itself, its items and queryables."""
    href = f"{base}/ogc/collections/{collection.id}"
    doc: dict[str, Any] = {
        "id": collection.id,
        "title": collection.title,
        "description": collection.description,
        "itemType": "feature",
        "crs": [CRS84],
        "links": [
            _link(href, "self", JSON, collection.title),
            _link(f"{href}/items", "items", GEOJSON, f"{collection.title}要素"),
            _link(
                f"{href}/queryables",
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "application/schema+json",
                "可查询属性",
            ),
        ],
    }
    if extent is not None:
        doc["extent"] = {"spatial": {"bbox": [list(extent)], "crs": CRS84}}
    return doc


def collections_doc(base: str, collections: list[dict[str, Any]]) -> dict[str, Any]:
    """The /collections document."""
    return {
        "links": [_link(f"{base}/ogc/collections", "self", JSON, "要素集合")],
        "collections": collections,
    }


def queryables_doc(base: str, collection: Collection) -> dict[str, Any]:
    """The queryables of a collection as a JSON Schema (OGC API Features Part 3)."""
    props: dict[str, Any] = {p.name: {"title": p.title, "type": p.type} for p in collection.properties}
    props[GEOMETRY_PROPERTY] = {"title": "几何", "format": "geometry-multipolygon"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base}/ogc/collections/{collection.id}/queryables",
        "type": "object",
        "title": collection.title,
        "properties": props,
        "additionalProperties": False,
    }


def feature(base: str, collection: Collection, properties: dict[str, Any], geometry: Any) -> dict[str, Any]:
    """One GeoJSON feature, its id the feature's code, with links to itself and its collection."""
    href = f"{base}/ogc/collections/{collection.id}"
    return {
        "type": "Feature",
        "id": properties["code"],
        "geometry": geometry,
        "properties": properties,
        "links": [
            _link(f"{href}/items/{properties['code']}", "self", GEOJSON, "本要素"),
            _link(href, "collection", JSON, collection.title),
        ],
    }


def page_links(
    base: str, collection: Collection, query: list[tuple[str, str]], *, offset: int, limit: int, matched: int
) -> list[dict[str, str]]:
    """self, and next / prev when there are more features after or before this page (same query, other offset).

    The query keeps a `key=` the request itself carried: a client that authenticates by URL follows the links.
    """
    href = f"{base}/ogc/collections/{collection.id}/items"
    kept = [(k, v) for k, v in query if k not in ("offset", "limit")]

    def at(start: int) -> str:
        return f"{href}?{urlencode([*kept, ('limit', str(limit)), ('offset', str(start))])}"

    links = [_link(at(offset), "self", GEOJSON, "本页")]
    if offset + limit < matched:
        links.append(_link(at(offset + limit), "next", GEOJSON, "下一页"))
    if offset > 0:
        links.append(_link(at(max(0, offset - limit)), "prev", GEOJSON, "上一页"))
    return links


# ------------------------------------------------------------------------------------------------ query parameters


def parse_bbox(text: str | None, crs: str | None = None) -> BBox | None:
    """`bbox=minLon,minLat,maxLon,maxLat` in CRS84, or OgcRequestError naming what is wrong."""
    if crs not in (None, "", CRS84):
        raise OgcRequestError(f"bbox-crs {crs!r} is not supported; only {CRS84}")
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 4:
        raise OgcRequestError("bbox needs 4 numbers: minLon,minLat,maxLon,maxLat")
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        raise OgcRequestError(f"bbox {text!r} is not 4 numbers") from None
    if not all(math.isfinite(v) for v in (west, south, east, north)):
        raise OgcRequestError("bbox values must be finite numbers")
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= 90 and -90 <= north <= 90):
        raise OgcRequestError("bbox lies outside -180..180 longitude, -90..90 latitude")
    if west > east or south > north:
        raise OgcRequestError("bbox minimum is above its maximum")
    return west, south, east, north


def parse_limit(text: str | None) -> int:
    """`limit` 1..1000 (default 10); above 1000 it is 1000, as the standard recommends; otherwise OgcRequestError."""
    if text is None:
        return DEFAULT_LIMIT
    try:
        value = int(text)
    except ValueError:
        raise OgcRequestError(f"limit {text!r} is not a whole number") from None
    if value < 1:
        raise OgcRequestError("limit must be at least 1")
    return min(value, MAX_LIMIT)


def parse_offset(text: str | None) -> int:
    """`offset` 0..MAX_OFFSET (default 0), or OgcRequestError."""
    if text is None:
        return 0
    try:
        value = int(text)
    except ValueError:
        raise OgcRequestError(f"offset {text!r} is not a whole number") from None
    if value < 0:
        raise OgcRequestError("offset must not be negative")
    if value > MAX_OFFSET:
        raise OgcRequestError(f"offset must be at most {MAX_OFFSET:,}")
    return value


@dataclass(frozen=True)
class SqlFilter:
    """A SQL condition over the alias `h` with its bound values (names never collide within one request)."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


TRUE = SqlFilter("TRUE")


def _typed(queryable: Queryable, value: Any) -> Any:
    """A literal checked against the property's type (strings for strings, numbers for numbers)."""
    if queryable.type == "string":
        if not isinstance(value, str):
            raise OgcRequestError(f"{queryable.name} is a string property; compare it with a quoted string")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise OgcRequestError(f"{queryable.name} is a numeric property; compare it with a number")
    return value


def property_filter(collection: Collection, query: list[tuple[str, str]]) -> SqlFilter:
    """Property equality queries (`?town_code=…`) as one SQL condition; an unknown parameter → OgcRequestError."""
    names = itertools.count()
    parts: list[str] = []
    params: dict[str, Any] = {}
    for key, raw in query:
        if key in ITEMS_PARAMETERS:
            continue
        queryable = collection.queryable(key)
        if queryable is None:
            raise OgcRequestError(
                f"unknown query parameter {key!r}; the properties of {collection.id} are {', '.join(collection.names)}"
            )
        value: Any = raw
        if queryable.type != "string":
            try:
                value = int(raw) if queryable.type == "integer" else float(raw)
            except ValueError:
                raise OgcRequestError(f"{key} must be a number") from None
        name = f"q{next(names)}"
        parts.append(f"{queryable.column} = :{name}")
        params[name] = value
    return SqlFilter(" AND ".join(parts), params) if parts else TRUE


# ------------------------------------------------------------------------------------------------------------ CQL2

_COMPARISONS: Mapping[type[ast.Comparison], str] = {
    ast.Equal: "=",
    ast.NotEqual: "<>",
    ast.LessThan: "<",
    ast.LessEqual: "<=",
    ast.GreaterThan: ">",
    ast.GreaterEqual: ">=",
}
_FLIPPED = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def cql2_filter(
    collection: Collection, text: str | None, *, lang: str | None = None, crs: str | None = None
) -> SqlFilter:
    """A CQL2 text filter as a SQL condition over the collection's queryables, values bound; OgcRequestError if bad.

    Text comparisons use the "C" collation, so that order is by code point whatever the database's locale. LIKE
    patterns keep CQL2's meaning (`%` any run, `_` one character, backslash escapes), which is SQL's.
    """
    if lang not in (None, "", "cql2-text"):
        raise OgcRequestError(f"filter-lang {lang!r} is not supported; use cql2-text")
    if crs not in (None, "", CRS84):
        raise OgcRequestError(f"filter-crs {crs!r} is not supported; only {CRS84}")
    if text is None or not text.strip():
        return TRUE
    if len(text) > MAX_FILTER_CHARS:
        raise OgcRequestError(f"filter is longer than {MAX_FILTER_CHARS} characters")
    _refuse_mixed_and_or(text)
    try:
        node = parse_cql2_text(text)
    except Exception as exc:  # lark's parse errors and pygeofilter's own: the message says where
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OgcRequestError(f"filter is not valid CQL2 text: {reason}") from None
    translator = _Translator(collection)
    return SqlFilter(translator.condition(node), translator.params)


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_TOKENS = re.compile(r"[()]|[A-Za-z_][A-Za-z0-9_]*")


def _refuse_mixed_and_or(text: str) -> None:
    """OgcRequestError when AND and OR meet at one level of parentheses (pygeofilter would read them left to right).

    The AND of a BETWEEN … AND … is not a conjunction; quoted text is skipped.
    """
    levels: list[dict[str, int]] = [{"and": 0, "or": 0, "between": 0}]
    for token in _TOKENS.findall(_QUOTED.sub(" ", text)):
        word = token.upper()
        if token == "(":
            levels.append({"and": 0, "or": 0, "between": 0})
        elif token == ")":
            if len(levels) > 1:
                levels.pop()
        elif word == "BETWEEN":
            levels[-1]["between"] += 1
        elif word == "AND" and levels[-1]["between"]:
            levels[-1]["between"] -= 1
        elif word in ("AND", "OR"):
            levels[-1][word.lower()] += 1
            if levels[-1]["and"] and levels[-1]["or"]:
                raise OgcRequestError("a filter that mixes AND and OR needs parentheses, e.g. a OR (b AND c)")


class _Translator:
    """Walks a pygeofilter AST and writes SQL over whitelisted columns, every literal a bound parameter."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self.params: dict[str, Any] = {}
        self._names: Iterator[int] = itertools.count()

    def bind(self, value: Any) -> str:
        """A new bound parameter holding `value`; its placeholder."""
        name = f"f{next(self._names)}"
        self.params[name] = value
        return f":{name}"

    def attribute(self, node: Any) -> Queryable:
        """The queryable an attribute node names, or OgcRequestError listing them."""
        if not isinstance(node, ast.Attribute):
            raise OgcRequestError("a comparison needs a property on one side and a literal on the other")
        found = self.collection.queryable(node.name)
        if found is None:
            raise OgcRequestError(
                f"unknown property {node.name!r}; the queryables of {self.collection.id} are "
                f"{', '.join(self.collection.names)}"
            )
        return found

    def column(self, queryable: Queryable) -> str:
        """The column, under the C collation when it is text (code-point order)."""
        return f'({queryable.column}) COLLATE "C"' if queryable.type == "string" else queryable.column

    def condition(self, node: Any) -> str:
        """The SQL of one condition node."""
        if isinstance(node, ast.And | ast.Or):
            word = "AND" if isinstance(node, ast.And) else "OR"
            return f"({self.condition(node.lhs)} {word} {self.condition(node.rhs)})"
        if isinstance(node, ast.Not):
            return f"(NOT {self.condition(node.sub_node)})"
        if isinstance(node, ast.Comparison) and type(node) in _COMPARISONS:
            return self.comparison(node)
        if isinstance(node, ast.Between):
            queryable = self.attribute(node.lhs)
            low, high = self.bind(_typed(queryable, node.low)), self.bind(_typed(queryable, node.high))
            negation = "NOT " if node.not_ else ""
            return f"({self.column(queryable)} {negation}BETWEEN {low} AND {high})"
        if isinstance(node, ast.Like):
            return self.like(node)
        if isinstance(node, ast.In):
            queryable = self.attribute(node.lhs)
            items = ", ".join(self.bind(_typed(queryable, v)) for v in node.sub_nodes)
            return f"({self.column(queryable)} {'NOT IN' if node.not_ else 'IN'} ({items}))"
        if isinstance(node, ast.IsNull):
            queryable = self.attribute(node.lhs)
            return f"({queryable.column} IS {'NOT NULL' if node.not_ else 'NULL'})"
        if isinstance(node, ast.GeometryIntersects):
            return self.intersects(node)
        raise OgcRequestError(f"this server's CQL2 does not support {type(node).__name__}")

    def comparison(self, node: ast.Comparison) -> str:
        """attribute op literal, or literal op attribute (flipped)."""
        operator = _COMPARISONS[type(node)]
        lhs, rhs = node.lhs, node.rhs
        if not isinstance(lhs, ast.Attribute) and isinstance(rhs, ast.Attribute):
            lhs, rhs, operator = rhs, lhs, _FLIPPED[operator]
        queryable = self.attribute(lhs)
        if isinstance(rhs, ast.Node):
            raise OgcRequestError("a comparison needs a property on one side and a literal on the other")
        return f"({self.column(queryable)} {operator} {self.bind(_typed(queryable, rhs))})"

    def like(self, node: ast.Like) -> str:
        """LIKE on a string property; pygeofilter's `singlechar` is not CQL2's `_`, so the pattern is kept as sent."""
        queryable = self.attribute(node.lhs)
        if queryable.type != "string":
            raise OgcRequestError(f"LIKE needs a string property; {queryable.name} is numeric")
        pattern = _typed(queryable, node.pattern)
        return f"({self.column(queryable)} {'NOT LIKE' if node.not_ else 'LIKE'} {self.bind(pattern)})"

    def intersects(self, node: ast.GeometryIntersects) -> str:
        """S_INTERSECTS(geometry, BBOX(…) | a WKT geometry), either order."""
        lhs, rhs = node.lhs, node.rhs
        if not isinstance(lhs, ast.Attribute):
            lhs, rhs = rhs, lhs
        if not isinstance(lhs, ast.Attribute) or lhs.name != GEOMETRY_PROPERTY:
            raise OgcRequestError(f"S_INTERSECTS needs the property {GEOMETRY_PROPERTY!r} and a literal geometry")
        return f"ST_Intersects(h.geom, ST_GeomFromText({self.bind(_literal_wkt(rhs))}, 4326))"


def _literal_wkt(node: Any) -> str:
    """A BBOX or geometry literal as valid WKT in CRS84, or OgcRequestError."""
    if isinstance(node, ast.Function) and node.name.lower() == "bbox":
        args = node.arguments
        if len(args) != 4 or not all(isinstance(a, int | float) and not isinstance(a, bool) for a in args):
            raise OgcRequestError("BBOX needs 4 numbers: minLon, minLat, maxLon, maxLat")
        west, south, east, north = (float(a) for a in args)
        parse_bbox(f"{west},{south},{east},{north}")
        return str(shapely.box(west, south, east, north).wkt)
    if isinstance(node, values.Geometry):
        try:
            geom = shape(node.geometry)
        except Exception as exc:  # shapely refuses malformed coordinates in several ways
            raise OgcRequestError(f"the filter's geometry is malformed: {exc}") from None
        if geom.is_empty or not geom.is_valid:
            raise OgcRequestError(f"the filter's geometry is not valid: {shapely.is_valid_reason(geom)}")
        west, south, east, north = geom.bounds
        if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
            raise OgcRequestError("the filter's geometry lies outside CRS84 longitude and latitude")
        return str(geom.wkt)
    raise OgcRequestError("S_INTERSECTS needs a BBOX(…) or a geometry literal (POINT, POLYGON…)")
