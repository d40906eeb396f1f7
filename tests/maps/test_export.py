"""The exported heatmap opens on an offline intranet: no script or style comes from the internet."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser

from maps.export import hotspots_csv, hotspots_geojson, offline_html
from maps.heat.schemas import HotspotCollection

HOTSPOTS = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[113.70, 23.00], [113.71, 23.00], [113.71, 23.01], [113.70, 23.01], [113.70, 23.00]]],
            },
            "properties": {"code": "441900003001001", "count": 12, "rate": 0.3, "z": 3.4, "p": 0.001, "q": 0.002,
                           "class": "hot_99", "emerging": "intensifying"},
        },
        {
            "type": "Feature",
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[113.72, 23.00], [113.73, 23.00], [113.73, 23.01], [113.72, 23.01], [113.72, 23.00]]],
            },
            "properties": {"code": "441900003001002", "count": 1, "rate": 0.02, "z": -0.1, "p": 0.9, "q": 0.9,
                           "class": "not_significant", "emerging": None},
        },
    ],
    "empty": False,
    "message": None,
}  # fmt: skip
SPOTS = HotspotCollection.model_validate(HOTSPOTS)


class Links(HTMLParser):
    """Every src and href attribute of the document (script contents are data, not tags)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.found.append((tag, name, value))


def test_the_standalone_map_loads_nothing_from_the_internet() -> None:
    html = offline_html(
        title="东城街道 线索热点",
        bounds_lon_lat=(113.6, 22.9, 113.8, 23.1),
        hotspots=SPOTS,
        heat_points=[[23.005, 113.705, 3.0], [23.006, 113.706, 1.0]],
    )
    links = Links()
    links.feed(html)
    remote = [link for link in links.found if "http://" in link[2] or "https://" in link[2]]
    assert remote == []
    # Leaflet and the heat plugin are inside the file, and the map draws the hotspots.
    assert "L.map" in html and "heatLayer" in html and "441900003001001" in html
    assert "东城街道 线索热点" in html


def test_hotspots_export_as_csv_and_geojson() -> None:
    rows = list(csv.DictReader(io.StringIO(hotspots_csv(SPOTS).lstrip("\ufeff"))))
    assert [r["code"] for r in rows] == ["441900003001001", "441900003001002"]
    assert rows[0]["class"] == "hot_99" and rows[0]["emerging"] == "intensifying"
    assert json.loads(hotspots_geojson(SPOTS)) == HOTSPOTS  # no key added, none lost
