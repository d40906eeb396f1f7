"""A CQL2 text filter picks in PostGIS exactly the grids a plain Python reading of the same filter picks."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import shapely
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from maps import ogc, ogc_repository

pytestmark = pytest.mark.db

GRIDS = ogc.COLLECTIONS["grids"]
STRINGS = [p.name for p in GRIDS.properties if p.type == "string"]
NUMBERS = [p.name for p in GRIDS.properties if p.type != "string"]
# Characters a generated string may hold: pygeofilter's CQL2 text grammar has no escape for a quote.
SAFE = st.characters(codec="utf-8", exclude_characters="'\\\"", exclude_categories=("Cs", "Cc"))


class City:
    """The grids as rows (properties by name) and their geometries (full precision), by code.

    A plain class with a short repr: hypothesis prints the arguments of a strategy, and 2,900 grids are long.
    """

    def __init__(
        self, rows: list[dict[str, Any]], shapes: dict[str, shapely.Geometry], box: tuple[float, float, float, float]
    ) -> None:
        self.rows = rows
        self.shapes = shapes
        self.box = box

    def __repr__(self) -> str:
        return f"City({len(self.rows)} grids)"


@pytest.fixture(scope="module")
def city(engine: Engine) -> City:
    """Every grid of the active version, read once."""
    with engine.connect() as conn:
        rows = [
            r.properties
            for r in ogc_repository.read_features(conn, GRIDS, towns=None, limit=100_000, with_geometry=False)
        ]
        shapes = {
            code: shapely.from_wkb(bytes(wkb))
            for code, wkb in conn.execute(
                text(
                    "SELECT g.code, ST_AsBinary(g.geom) FROM grid g "
                    "JOIN grid_version v ON v.id = g.version_id AND v.status = 'active'"
                )
            )
        }
    bounds = shapely.total_bounds(list(shapes.values()))
    return City(rows, shapes, (float(bounds[0]), float(bounds[1]), float(bounds[2]), float(bounds[3])))


# ---------------------------------------------------------------------------------------- a filter, two readings
#
# A generated filter is a pair: its CQL2 text, and a Python function reading it over one row with SQL's three-valued
# logic (None is "unknown": a comparison with NULL; a row is selected only when the filter is True).

Filter = tuple[str, Callable[[dict[str, Any], shapely.Geometry], bool | None]]


def _quoted(value: str) -> str:
    return f"'{value}'"


def _like_regex(pattern: str) -> re.Pattern[str]:
    """CQL2's LIKE (SQL's): % any run, _ one character, everything else itself."""
    return re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern), re.DOTALL)


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@st.composite
def _string_literal(draw: st.DrawFn, city: City, name: str) -> str:
    existing = [r[name] for r in city.rows if r[name] is not None]
    if existing and draw(st.booleans()):
        return str(existing[draw(st.integers(0, len(existing) - 1))])
    return draw(st.text(SAFE, max_size=6))


@st.composite
def _number_literal(draw: st.DrawFn, city: City, name: str) -> int | float:
    existing = [r[name] for r in city.rows if r[name] is not None]
    base = existing[draw(st.integers(0, len(existing) - 1))] if existing else 0
    if draw(st.booleans()):
        return int(base) + draw(st.integers(-3, 3))
    return round(float(base) + draw(st.floats(-5, 5, allow_nan=False)), 3)


def _render_number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.3f}"


@st.composite
def _comparison(draw: st.DrawFn, city: City) -> Filter:
    name = draw(st.sampled_from(STRINGS + NUMBERS))
    op = draw(st.sampled_from(list(_OPS)))
    value: Any
    if name in STRINGS:
        value = draw(_string_literal(city, name))
        literal = _quoted(value)
    else:
        value = draw(_number_literal(city, name))
        literal = _render_number(value)
    flipped = draw(st.booleans())
    sql_text = f"{literal} {_FLIP[op]} {name}" if flipped else f"{name} {op} {literal}"

    def read(row: dict[str, Any], _: shapely.Geometry) -> bool | None:
        return None if row[name] is None else _OPS[op](row[name], value)

    return sql_text, read


_FLIP = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@st.composite
def _between(draw: st.DrawFn, city: City) -> Filter:
    name = draw(st.sampled_from(NUMBERS))
    low, high = draw(_number_literal(city, name)), draw(_number_literal(city, name))
    negated = draw(st.booleans())

    def read(row: dict[str, Any], _: shapely.Geometry) -> bool | None:
        if row[name] is None:
            return None
        inside = low <= row[name] <= high
        return not inside if negated else inside

    word = "NOT BETWEEN" if negated else "BETWEEN"
    return f"{name} {word} {_render_number(low)} AND {_render_number(high)}", read


@st.composite
def _like(draw: st.DrawFn, city: City) -> Filter:
    name = draw(st.sampled_from(STRINGS))
    seed = draw(_string_literal(city, name))
    cut = draw(st.integers(0, len(seed)))
    pattern = draw(st.sampled_from([seed[:cut] + "%", "%" + seed[cut:], seed[:cut] + "_" + seed[cut + 1 :], seed, "%"]))
    negated = draw(st.booleans())
    regex = _like_regex(pattern)

    def read(row: dict[str, Any], _: shapely.Geometry) -> bool | None:
        if row[name] is None:
            return None
        matched = regex.fullmatch(row[name]) is not None
        return not matched if negated else matched

    return f"{name} {'NOT LIKE' if negated else 'LIKE'} {_quoted(pattern)}", read


@st.composite
def _in(draw: st.DrawFn, city: City) -> Filter:
    name = draw(st.sampled_from(STRINGS + NUMBERS))
    make = _string_literal if name in STRINGS else _number_literal
    items = draw(st.lists(make(city, name), min_size=1, max_size=4))
    rendered = ", ".join(_quoted(v) if name in STRINGS else _render_number(v) for v in items)
    negated = draw(st.booleans())

    def read(row: dict[str, Any], _: shapely.Geometry) -> bool | None:
        if row[name] is None:
            return None
        found = row[name] in items
        return not found if negated else found

    return f"{name} {'NOT IN' if negated else 'IN'} ({rendered})", read


@st.composite
def _is_null(draw: st.DrawFn) -> Filter:
    name = draw(st.sampled_from(STRINGS + NUMBERS))
    negated = draw(st.booleans())
    return (
        f"{name} IS {'NOT NULL' if negated else 'NULL'}",
        lambda row, _: (row[name] is not None) if negated else (row[name] is None),
    )


@st.composite
def _intersects(draw: st.DrawFn, city: City) -> Filter:
    west, south, east, north = city.box
    xs = sorted(draw(st.floats(west, east)) for _ in range(2))
    ys = sorted(draw(st.floats(south, north)) for _ in range(2))
    box = shapely.box(round(xs[0], 5), round(ys[0], 5), round(xs[1], 5) + 0.001, round(ys[1], 5) + 0.001)
    x0, y0, x1, y1 = box.bounds
    if draw(st.booleans()):
        literal = f"BBOX({x0}, {y0}, {x1}, {y1})"
    else:
        literal = f"POLYGON(({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"
    return f"S_INTERSECTS(geometry, {literal})", lambda _, geom: bool(geom.intersects(box))


def _and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def _negate(child: Filter) -> Filter:
    inner, read = child
    return f"NOT ({inner})", lambda row, g: None if read(row, g) is None else not read(row, g)


def _filters(city: City) -> st.SearchStrategy[Filter]:
    """Predicates, negated or not, joined by AND / OR in parentheses (pygeofilter's NOT takes one predicate)."""
    predicates = st.one_of(_comparison(city), _between(city), _like(city), _in(city), _is_null(), _intersects(city))
    leaves = st.one_of(predicates, predicates.map(_negate))

    def extend(children: st.SearchStrategy[Filter]) -> st.SearchStrategy[Filter]:
        def both(pair: tuple[Filter, Filter], word: str) -> Filter:
            (left, read_left), (right, read_right) = pair
            join = _and if word == "AND" else _or
            return f"({left}) {word} ({right})", lambda row, g: join(read_left(row, g), read_right(row, g))

        return st.one_of(
            st.tuples(children, children).map(lambda p: both(p, "AND")),
            st.tuples(children, children).map(lambda p: both(p, "OR")),
        )

    return st.recursive(leaves, extend, max_leaves=5)


def test_generated_filters_pick_in_the_database_what_python_picks(engine: Engine, city: City) -> None:
    """For any filter over the grids' queryables, PostGIS and a Python reading select the same grids."""

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_filters(city))
    def check(generated: Filter) -> None:
        cql, read = generated
        note(cql)
        condition = ogc.cql2_filter(GRIDS, cql)
        with engine.connect() as conn:
            picked = [
                r.properties["code"]
                for r in ogc_repository.read_features(
                    conn, GRIDS, towns=None, filters=[condition], limit=100_000, with_geometry=False
                )
            ]
        expected = [row["code"] for row in city.rows if read(row, city.shapes[row["code"]]) is True]
        assert picked == expected, cql

    check()


@pytest.mark.parametrize(
    "bad",
    [
        "name = ",
        "name = 'a' AND",
        "colour = 'red'",
        "population = 'many'",
        "name > 3",
        "population LIKE '1%'",
        "name = code",
        "town_code = 'a' OR town_code = 'b' AND population > 3",
        "NOT (name = 'a' AND code = 'b')",
        "S_INTERSECTS(town_code, BBOX(113, 22, 114, 23))",
        "S_INTERSECTS(geometry, BBOX(114, 23, 113, 22))",
        "S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))",
        "S_WITHIN(geometry, BBOX(113, 22, 114, 23))",
        "population + 1 > 2",
        "T_AFTER(population, TIMESTAMP('2026-01-01T00:00:00Z'))",
        "x" * 5000,
    ],
)
def test_a_bad_filter_is_refused_with_its_reason(bad: str) -> None:
    """Malformed text, unknown properties, mistyped literals, unsupported operators: OgcRequestError (400)."""
    with pytest.raises(ogc.OgcRequestError):
        ogc.cql2_filter(GRIDS, bad)


def test_between_and_quoted_words_are_not_a_mix_of_and_and_or() -> None:
    """BETWEEN … AND … and an 'OR' inside a string do not count as mixing AND with OR."""
    condition = ogc.cql2_filter(GRIDS, "population BETWEEN 1 AND 9 OR name = 'A OR B AND C'")
    assert "OR" in condition.sql and "BETWEEN" in condition.sql


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_either_translates_or_is_refused(junk: str) -> None:
    """Whatever a client sends as a filter, the answer is a SQL condition or a 400, never a crash."""
    try:
        condition = ogc.cql2_filter(GRIDS, junk)
    except ogc.OgcRequestError:
        return
    assert all(name.startswith("f") for name in condition.params)
