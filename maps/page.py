"""maps.page: the HTML pages (Jinja2 templates over one base.html) and where their static files live."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from address_library.drafts import COMPONENT_FIELDS, COMPONENT_LABELS_ZH
from maps.heat.aggregate import EVENT_KIND_LABELS_ZH
from maps.settings import MapSettings

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
NODE_MODULES = PACKAGE_DIR / "assets" / "node_modules"
# The WGS84 extent of Dongguan's towns (west, south, east, north), the view the page opens on.
DONGGUAN_BOUNDS_LON_LAT = (113.5163, 22.6565, 114.2555, 23.1447)
TITLE = "东莞市网格化治理平台"
HEATMAP_H3_RESOLUTION = 9

log = logging.getLogger(__name__)

# The one template environment of the platform's pages: every value is HTML-escaped unless a template says
# otherwise, and a name a template uses but the caller did not pass is an error, not an empty string.
TEMPLATES = Environment(
    loader=PackageLoader("maps", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class VendorLibrary:
    """A front-end library served under /static/vendor/<name>/ from its distribution folder."""

    name: str
    directory: Path


def vendor_libraries() -> list[VendorLibrary]:
    """The installed front-end libraries: a packaged copy in static/vendor wins over maps/assets/node_modules."""
    found: list[VendorLibrary] = []
    for name, dist in (
        ("leaflet", "dist"),
        ("leaflet.heat", "dist"),
        ("maplibre-gl", "dist"),
        ("echarts", "dist"),
        ("swagger-ui-dist", ""),
    ):
        for candidate in (STATIC_DIR / "vendor" / name, NODE_MODULES / name / dist if dist else NODE_MODULES / name):
            if candidate.is_dir():
                found.append(VendorLibrary(name, candidate))
                break
        else:
            log.warning("front-end library %s is not installed: run `npm ci` in maps/assets (make assets)", name)
    return found


def render_page(template: str, **context: Any) -> str:
    """One page from its template (which extends base.html); `user` is the signed-in name the top bar shows."""
    context.setdefault("user", None)
    return TEMPLATES.get_template(template).render(**context)


def page_config(settings: MapSettings) -> dict[str, Any]:
    """What the map page's module needs to know, embedded in the page as a JSON data block."""
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
        "boundsLonLat": [west, south, east, north],
        "api": {"layers": "/v1/", "grid": "/v1/grids/"},
    }


def render_index(settings: MapSettings, *, user: str | None = None) -> str:
    """The dashboard (MapLibre map, drill-down, figures, live feed, lists) with its configuration embedded."""
    return render_page("index.html", title=TITLE, config=page_config(settings), user=user)


def render_forbidden(*, user: str | None = None) -> str:
    """The 403 page of a signed-in caller whose role may not open a page: says so in Chinese, offers the sign-out."""
    return render_page("forbidden.html", title=TITLE, user=user)


def render_heatmap(
    *,
    town_code: str | None,
    place_name: str,
    bounds_lon_lat: tuple[float, float, float, float],
    industries: list[str],
    today: str,
    user: str | None = None,
) -> str:
    """The heatmap page of one town (or the whole city when `town_code` is None), configuration embedded."""
    west, south, east, north = bounds_lon_lat
    config = {
        "town": town_code,
        "placeName": place_name,
        "bounds": [[south, west], [north, east]],
        "today": today,
        "h3Resolution": HEATMAP_H3_RESOLUTION,
    }
    return render_page(
        "heatmap.html",
        title=f"{place_name} 线索热力图与热点",
        config=config,
        industries=industries,
        event_kinds=EVENT_KIND_LABELS_ZH,
        user=user,
    )


def render_clue_list(*, user: str | None = None) -> str:
    """The clue list page (a table filled by clues.js from GET /v1/clues with the page's own query)."""
    return render_page("clues.html", title="线索列表", user=user)


def render_review_queue(settings: MapSettings, *, user: str | None = None) -> str:
    """The review queue page: open items, one item's typed address and proposed components, a map to click the
    point on (outlines only unless the basemap is in WGS84: the API takes WGS84 points).
    """
    config = page_config(settings)
    if config["coords"] != "wgs84":
        config = {**config, "basemap": "none", "tileUrl": None, "coords": "wgs84"}
    config["components"] = [{"name": name, "label": COMPONENT_LABELS_ZH[name]} for name in COMPONENT_FIELDS]
    return render_page("review.html", title="待核登记处理", config=config, user=user)


def _wgs84_config(settings: MapSettings) -> dict[str, Any]:
    """The page configuration for a page that draws WGS84 GeoJSON: outlines only unless the basemap is WGS84."""
    config = page_config(settings)
    if config["coords"] != "wgs84":
        config = {**config, "basemap": "none", "tileUrl": None, "coords": "wgs84"}
    return config


def render_grid_version(
    settings: MapSettings, *, version_id: int, rights: dict[str, bool], user: str | None = None
) -> str:
    """The compare page of a grid version: the draft beside the current grids, moved areas, figures, apply."""
    config = {**_wgs84_config(settings), "versionId": version_id, **rights}
    return render_page("grid_version.html", title=f"网格调整对比（版本 {version_id}）", config=config, user=user)


def render_grid_versions(*, rights: dict[str, bool], home: str | None, user: str | None = None) -> str:
    """The grid versions page: the versions the caller may see and the form to draw a draft."""
    config = {"home": home, **rights}
    return render_page("grid_versions.html", title="网格调整", config=config, user=user)
