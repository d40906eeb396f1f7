"""A map client asks for layers by bbox and zoom: parsing, simplification by zoom and the size guard."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maps.errors import InvalidLayerRequest, LayerTooLarge
from maps.layers import (
    MIN_GEOMETRY_BYTES,
    BBox,
    Layer,
    coordinate_decimals,
    degrees_per_pixel,
    parse_bbox,
    simplifying_can_fit,
    snap_ladder_deg,
    too_large,
)

lons = st.floats(min_value=-180, max_value=180, allow_nan=False)
lats = st.floats(min_value=-90, max_value=90, allow_nan=False)


def test_a_dongguan_viewport_parses_west_south_east_north() -> None:
    assert parse_bbox("113.7,22.98,113.8,23.05") == BBox(113.7, 22.98, 113.8, 23.05)
    assert parse_bbox(" 113.7 , 22.98,113.8 ,23.05 ") == BBox(113.7, 22.98, 113.8, 23.05)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "113.7,22.98,113.8",
        "113.7,22.98,113.8,23.05,1",
        "a,b,c,d",
        "113.8,22.98,113.7,23.05",  # west east of east
        "113.7,23.05,113.8,22.98",  # south north of north
        "113.7,22.98,113.7,23.05",  # zero width
        "113.7,-91,113.8,23.05",
        "-181,22.98,113.8,23.05",
        "nan,22.98,113.8,23.05",
        "113.7,22.98,inf,23.05",
        "22.98,113.7,23.05,113.8",  # lat/lon swapped: latitude 113.7 is impossible
    ],
)
def test_malformed_boxes_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(InvalidLayerRequest):
        parse_bbox(text)


@given(lons, lats, lons, lats)
def test_any_ordered_box_round_trips_through_its_text(a: float, b: float, c: float, d: float) -> None:
    west, east = sorted((a, c))
    south, north = sorted((b, d))
    text = f"{west!r},{south!r},{east!r},{north!r}"
    if west < east and south < north:
        assert parse_bbox(text) == BBox(west, south, east, north)
    else:
        with pytest.raises(InvalidLayerRequest):
            parse_bbox(text)


@given(st.text(max_size=60))
def test_arbitrary_text_either_parses_to_a_valid_box_or_is_refused(text: str) -> None:
    try:
        box = parse_bbox(text)
    except InvalidLayerRequest:
        return
    assert box.min_lon < box.max_lon and box.min_lat < box.max_lat
    assert all(math.isfinite(v) for v in box.as_params().values())


def test_one_pixel_halves_with_every_zoom_level() -> None:
    assert degrees_per_pixel(0) == pytest.approx(360 / 256)
    for zoom in range(20):
        assert degrees_per_pixel(zoom + 1) == pytest.approx(degrees_per_pixel(zoom) / 2)
    # At zoom 18 a pixel is about 0.6 m at Dongguan's latitude: 5e-6 degrees.
    assert degrees_per_pixel(18) == pytest.approx(5.36e-6, rel=0.01)


def test_low_zoom_simplifies_harder_and_retries_coarser() -> None:
    city, street = snap_ladder_deg(9), snap_ladder_deg(17)
    assert city[0] > street[0] * 100
    for ladder in (city, street):
        assert list(ladder) == sorted(ladder) and len(ladder) >= 2
    assert snap_ladder_deg(None) == (0.0,)


@pytest.mark.parametrize("zoom", [-1, 21, 99])
def test_zoom_outside_0_to_20_is_refused(zoom: int) -> None:
    with pytest.raises(InvalidLayerRequest):
        snap_ladder_deg(zoom)


def test_coordinates_keep_five_or_six_decimals() -> None:
    assert {coordinate_decimals(z) for z in range(21)} <= {5, 6}
    assert coordinate_decimals(8) == 5 and coordinate_decimals(18) == 6 and coordinate_decimals(None) == 6
    # Rounding never moves a vertex by more than half a pixel.
    for zoom in range(21):
        assert 0.5 * 10 ** -coordinate_decimals(zoom) <= degrees_per_pixel(zoom) / 2


def test_the_size_guard_gives_up_only_when_properties_alone_are_too_big() -> None:
    assert simplifying_can_fit(fixed_bytes=500_000, n_features=1_000, limit_bytes=1_000_000)
    assert not simplifying_can_fit(fixed_bytes=990_000, n_features=1_000, limit_bytes=1_000_000)
    assert simplifying_can_fit(fixed_bytes=0, n_features=1, limit_bytes=MIN_GEOMETRY_BYTES)


def test_the_too_large_message_says_what_to_do() -> None:
    error = too_large(Layer.GRIDS, size_bytes=1_400_000, n_features=2_900, limit_bytes=1_000_000)
    assert isinstance(error, LayerTooLarge)
    message = str(error)
    assert "grids" in message and "1.40 MB" in message and "1.00 MB" in message
    assert "narrow the bbox or zoom in" in message
