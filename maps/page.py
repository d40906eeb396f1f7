"""maps.page: the map page (HTML from the package template) and where its static files live."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from maps.settings import MapSettings

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATE_PATH = PACKAGE_DIR / "templates" / "index.html"
STATIC_DIR = PACKAGE_DIR / "static"
NODE_MODULES = PACKAGE_DIR / "assets" / "node_modules"
# The WGS84 extent of Dongguan's towns (west, south, east, north), the view the page opens on.
DONGGUAN_BOUNDS_LON_LAT = (113.5163, 22.6565, 114.2555, 23.1447)
TITLE = "东莞市网格化治理平台"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VendorLibrary:
    """A front-end library served under /static/vendor/<name>/ from its distribution folder."""

    name: str
    directory: Path


def vendor_libraries() -> list[VendorLibrary]:
    """The installed front-end libraries: a packaged copy in static/vendor wins over maps/assets/node_modules."""
    found: list[VendorLibrary] = []
    for name, dist in (("leaflet", "dist"), ("leaflet.heat", "dist"), ("swagger-ui-dist", "")):
        for candidate in (STATIC_DIR / "vendor" / name, NODE_MODULES / name / dist if dist else NODE_MODULES / name):
            if candidate.is_dir():
                found.append(VendorLibrary(name, candidate))
                break
        else:
            log.warning("front-end library %s is not installed: run `npm ci` in maps/assets (make assets)", name)
    return found


def page_config(settings: MapSettings) -> dict[str, Any]:
    """What map.js needs to know, injected into the page as JSON."""
    west, south, east, north = DONGGUAN_BOUNDS_LON_LAT
    tile_url, tile_attribution = settings.tiles()
    return {
        "basemap": settings.basemap,
        "coords": settings.coords,
        "tileUrl": tile_url,
        "tileAttribution": tile_attribution,
        "gridMinZoom": settings.grid_min_zoom,
        "communityMinZoom": settings.community_min_zoom,
        "bounds": [[south, west], [north, east]],
        "api": {"layers": "/v1/", "grid": "/v1/grids/"},
    }


def render_index(settings: MapSettings) -> str:
    """The map page HTML with its configuration embedded (safe inside a <script> element)."""
    config_json = json.dumps(page_config(settings), ensure_ascii=False)
    # A JSON string cannot break out of the script element once '<' is escaped.
    config_json = config_json.replace("<", "\\u003c")
    template = Template(TEMPLATE_PATH.read_text(encoding="utf-8"))
    return template.substitute(title=TITLE, config_json=config_json)


HEATMAP_TEMPLATE_PATH = TEMPLATE_PATH.parent / "heatmap.html"
HEATMAP_H3_RESOLUTION = 9


def render_heatmap(
    *,
    town_code: str | None,
    place_name: str,
    bounds_lon_lat: tuple[float, float, float, float],
    industries: list[str],
    today: str,
) -> str:
    """The heatmap page of one town (or the whole city when `town_code` is None), configuration embedded."""
    west, south, east, north = bounds_lon_lat
    config = {
        "town": town_code,
        "placeName": place_name,
        "bounds": [[south, west], [north, east]],
        "industries": industries,
        "today": today,
        "h3Resolution": HEATMAP_H3_RESOLUTION,
    }
    config_json = json.dumps(config, ensure_ascii=False).replace("<", "\\u003c")
    template = Template(HEATMAP_TEMPLATE_PATH.read_text(encoding="utf-8"))
    return template.substitute(title=f"{place_name} 线索热力图与热点", config_json=config_json)


CLUES_TEMPLATE_PATH = TEMPLATE_PATH.parent / "clues.html"


def render_clue_list() -> str:
    """The clue list page (a table filled by clues.js from GET /v1/clues with the page's own query)."""
    return Template(CLUES_TEMPLATE_PATH.read_text(encoding="utf-8")).substitute(title="线索列表")
