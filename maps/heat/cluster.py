"""maps.heat.cluster: the hotspots of many towns, each town's analysis on this machine or on a Dask cluster.

Each town is analysed as the heatmap page analyses it (maps.heat.heatmap.hotspot_collection, town by town). The
database reads happen here, on the driver (the workers have no database): each town's events and units are read
by hotspot_inputs; the statistics (weights, Gi* or rates, FDR classes, emerging categories) run on the workers
through hotspots_from_inputs, the same function the single-machine path runs, so the results are identical.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection

from gis.distributed import results
from maps.export import CSV_FIELDS, hotspots_geojson
from maps.heat.heatmap import HotspotInputs, hotspot_inputs, hotspots_from_inputs
from maps.heat.schemas import HotspotCollection

if TYPE_CHECKING:
    from distributed import Client


def load_town_inputs(
    conn: Connection,
    towns: Sequence[str],
    *,
    since: datetime,
    until: datetime,
    unit: str,
    method: str,
    kind: str,
    per: str = "residents",
    industry: str | None = None,
    status: str | None = None,
    source: str | None = None,
) -> dict[str, HotspotInputs]:
    """Each town's database reads for its hotspots (events of the window, units, population), in town order."""
    return {
        town: hotspot_inputs(
            conn,
            town=town,
            since=since,
            until=until,
            unit=unit,
            method=method,
            kind=kind,
            industry=industry,
            per=per,
            status=status,
            source=source,
        )  # fmt: skip
        for town in towns
    }


def hotspots_by_town(
    inputs: Mapping[str, HotspotInputs], *, client: Client | None = None
) -> dict[str, HotspotCollection]:
    """Each town's hotspots from its inputs (load_town_inputs), in the order of `inputs`.

    Without `client`, one town after the other here; with one, a task per town on the cluster.
    """
    if client is None:
        return {town: hotspots_from_inputs(one) for town, one in inputs.items()}
    jobs = [client.submit(hotspots_from_inputs, one, pure=False) for one in inputs.values()]
    done = results(client, jobs, job="the hotspot analysis")
    return {town: cast(HotspotCollection, spots) for town, spots in zip(inputs, done, strict=True)}


def towns_csv(by_town: Mapping[str, HotspotCollection]) -> str:
    """The towns' hotspot features as one CSV: a town column, then the columns of maps.export.hotspots_csv."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.DictWriter(out, fieldnames=("town", *CSV_FIELDS), extrasaction="ignore")
    writer.writeheader()
    for town, spots in by_town.items():
        for feature in spots.features:
            writer.writerow({"town": town, **feature.properties.model_dump()})
    return out.getvalue()


def towns_geojson(by_town: Mapping[str, HotspotCollection]) -> str:
    """The towns' hotspots as one FeatureCollection: each feature as maps.export.hotspots_geojson writes it, with
    its town in the properties; `towns` gives each town's empty flag, message, method, unit, per and window."""
    features: list[Any] = []
    towns: dict[str, Any] = {}
    for town, spots in by_town.items():
        document = json.loads(hotspots_geojson(spots))
        for feature in document.pop("features"):
            feature["properties"] = {"town": town, **feature["properties"]}
            features.append(feature)
        document.pop("type", None)
        towns[town] = document
    return json.dumps({"type": "FeatureCollection", "features": features, "towns": towns}, ensure_ascii=False)
