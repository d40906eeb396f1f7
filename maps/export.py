"""maps.export: the heatmap as a standalone HTML file (folium) that opens on an offline intranet, GeoJSON and CSV.

folium's defaults load Leaflet, jQuery, Bootstrap and Font Awesome from CDNs. Here the map gets none of them:
Leaflet and Leaflet.heat are inlined from the npm packages the server already serves, and nothing else is
needed for outlines, hexagons, hotspots and a heat layer.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

import folium
from branca.element import Element
from folium.plugins import HeatMap

from maps.errors import ExportError
from maps.geojson import FeatureCollection
from maps.heat.schemas import HexagonProperties, HotspotCollection
from maps.page import vendor_libraries

HOT_COLOURS = {
    "hot_99": "#b2182b",
    "hot_95": "#ef8a62",
    "hot_90": "#fddbc7",
    "not_significant": "#f7f7f7",
    "cold_90": "#d1e5f0",
    "cold_95": "#67a9cf",
    "cold_99": "#2166ac",
}
CSV_FIELDS = ("code", "count", "rate", "z", "p", "class", "emerging")


def _vendor_file(library: str, name: str) -> str:
    for found in vendor_libraries():
        if found.name == library and (found.directory / name).is_file():
            return (found.directory / name).read_text(encoding="utf-8")
    raise ExportError(f"{library}/{name} is not installed (run `npm ci` in maps/assets)")


def _script(source: str) -> str:
    # Inline scripts must not close their own element.
    return "<script>" + source.replace("</script", "<\\/script") + "</script>"


def offline_html(
    *,
    title: str,
    bounds_lon_lat: tuple[float, float, float, float],
    hotspots: HotspotCollection,
    hexagons: FeatureCollection[HexagonProperties] | None = None,
    heat_points: Sequence[Sequence[float]] = (),
    outlines: dict[str, Any] | None = None,
) -> str:
    """A single HTML file with every script and style inlined: outlines, hexagons, hotspots and heat."""
    west, south, east, north = bounds_lon_lat
    fmap = folium.Map(location=[(south + north) / 2, (west + east) / 2], zoom_start=12, tiles=None)
    fmap.default_js = []
    fmap.default_css = []
    root: Any = fmap.get_root()  # a branca Figure (typed as Element)
    root.header.add_child(Element(f"<title>{title}</title>"))
    root.header.add_child(Element("<style>" + _vendor_file("leaflet", "leaflet.css") + "</style>"))
    root.header.add_child(Element(_script(_vendor_file("leaflet", "leaflet.js"))))
    root.header.add_child(Element(_script(_vendor_file("leaflet.heat", "leaflet-heat.js"))))
    if outlines is not None:
        folium.GeoJson(
            outlines, name="边界", style_function=lambda _f: {"color": "#555", "weight": 1, "fill": False}
        ).add_to(fmap)
    if hexagons is not None and hexagons.features:
        folium.GeoJson(
            hexagons.model_dump(mode="json"),
            name="六边形",
            style_function=lambda f: {
                "color": "#8c6d31",
                "weight": 0.5,
                "fillColor": ["#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704"][min(f["properties"]["bin"], 4)],
                "fillOpacity": 0.55,
            },
            tooltip=folium.GeoJsonTooltip(fields=["code", "count"], aliases=["编码", "数量"]),
        ).add_to(fmap)
    if hotspots.features:
        folium.GeoJson(
            hotspots.model_dump(mode="json"),
            name="热点",
            style_function=lambda f: {
                "color": "#444",
                "weight": 0.6,
                "fillColor": HOT_COLOURS.get(f["properties"]["class"], "#f7f7f7"),
                "fillOpacity": 0.05 if f["properties"]["class"] == "not_significant" else 0.6,
            },
            tooltip=folium.GeoJsonTooltip(fields=["code", "count", "class"], aliases=["编码", "数量", "类别"]),
        ).add_to(fmap)
    if heat_points:
        layer = HeatMap([list(p) for p in heat_points], name="热力", radius=18, blur=15)
        layer.default_js = []
        layer.add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.fit_bounds([[south, west], [north, east]])
    html: str = root.render()
    return html


def hotspots_csv(hotspots: HotspotCollection) -> str:
    """The hotspot features as CSV (UTF-8 with BOM, so that spreadsheet programs read the Chinese)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for feature in hotspots.features:
        writer.writerow(feature.properties.model_dump())
    return out.getvalue()


def hotspots_geojson(hotspots: HotspotCollection) -> str:
    """The hotspot features as a GeoJSON document (the JSON of GET /v1/hotspots, with spaces after separators)."""
    return json.dumps(hotspots.model_dump(mode="json"), ensure_ascii=False)
