"""synthetic.loader: build the deterministic city on the real territory and load it, all or nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Connection, select, text

from address_library.repository import COMPONENT_COLUMNS
from gis.bulk import copy_frame, ewkb_hex
from gis.crs import METRIC_EPSG
from gis.database import make_engine
from gis.settings import DatabaseSettings
from grids import repository as grid_repo
from grids.codes import grid_code
from grids.locate import GridLocator
from grids.partition import partition
from grids.reference import read_communities, read_towns
from grids.topology import node_coverage, repair_towns
from supervision.calendar import today
from synthetic import models as truth
from synthetic.communities import allocate, synthesize_communities

# Bump when the generator changes, so that `demo load` rebuilds an older city instead of skipping it.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class Scale:
    """How big the synthetic city is."""

    addresses: int
    entities: int
    clues: int
    hotspots: int
    grids: int = 2_900


SCALES: dict[str, Scale] = {
    "test": Scale(addresses=40_000, entities=15_000, clues=8_000, hotspots=8),
    "demo": Scale(addresses=300_000, entities=135_000, clues=60_000, hotspots=12),
    "full": Scale(addresses=3_000_000, entities=1_350_000, clues=500_000, hotspots=30),
}


class Progress:
    """Prints stage timings (and a rich progress bar when asked)."""

    def __init__(self, enabled: bool, total_stages: int) -> None:
        self.enabled = enabled
        self.started = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None
        if enabled:
            from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
            self._bar.start()
            self._task = self._bar.add_task("demo load", total=total_stages)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one stage and advance the bar."""
        t0 = time.perf_counter()
        if self._bar is not None:
            self._bar.update(self._task, description=f"demo load: {name}")
        yield
        if self._bar is not None:
            self._bar.advance(self._task)
            self._bar.console.print(f"  {name}: {time.perf_counter() - t0:.1f} s")

    def close(self) -> None:
        """Stop the bar."""
        if self._bar is not None:
            self._bar.stop()


def build_territory(seed: int, progress: Progress) -> tuple[gpd.GeoDataFrame, pd.DataFrame, gpd.GeoDataFrame]:
    """Real towns (repaired) and synthetic communities, in the metric CRS."""
    with progress.stage("towns: topology repair"):
        towns = read_towns()
        repaired = repair_towns(towns[["code", "name", "geometry"]])
        towns_m = towns.drop(columns="geometry").merge(
            repaired.towns[["code", "geometry"]].to_crs(METRIC_EPSG), on="code"
        )
        towns_m = gpd.GeoDataFrame(towns_m, geometry="geometry", crs=METRIC_EPSG)
    with progress.stage("communities"):
        communities = read_communities(set(towns_m["code"]))
        communities_m = synthesize_communities(towns_m, communities, partition, seed)
    return towns_m, repaired.report, communities_m


def build_grids(
    communities_m: gpd.GeoDataFrame,
    points_xy: np.ndarray,
    weights: np.ndarray,
    point_community: np.ndarray,
    n_grids: int,
) -> gpd.GeoDataFrame:
    """Version-1 grids: every community cut into parts balanced on workload (address rows + entities)."""
    codes = communities_m["code"].to_numpy()
    workload = np.array([weights[point_community == c].sum() for c in codes])
    k_per = allocate(n_grids - len(codes), workload) + 1
    rows: list[dict[str, Any]] = []
    for comm, k in zip(communities_m.itertuples(index=False), k_per, strict=True):
        mask = point_community == comm.code
        parts = partition(comm.geometry, points_xy[mask], weights[mask], int(k)) if k > 1 else [comm.geometry]
        # Codes run north-west to south-east, so neighbours get neighbouring numbers.
        order = sorted(range(len(parts)), key=lambda i: (-round(parts[i].centroid.y, -2), parts[i].centroid.x))
        for seq, idx in enumerate(order, start=1):
            rows.append(
                {
                    "code": grid_code(comm.code, seq),
                    "community_code": comm.code,
                    "town_code": comm.town_code,
                    "name": f"{comm.short_name}第{seq}网格",
                    "geometry": parts[idx],
                }
            )
    grids = gpd.GeoDataFrame(rows, geometry="geometry", crs=communities_m.crs)
    grids["geometry"] = grids.geometry.apply(_as_multi)
    return grids


def _as_multi(geom: Any) -> Any:
    from shapely.geometry import MultiPolygon, Polygon

    return MultiPolygon([geom]) if isinstance(geom, Polygon) else geom


def loaded_city(conn: Connection) -> dict[str, Any] | None:
    """The last demo load recorded in this database, if any."""
    row = conn.execute(select(truth.demo_load).order_by(truth.demo_load.c.id.desc()).limit(1)).first()
    return dict(row._mapping) if row else None


def load_demo(
    settings: DatabaseSettings,
    *,
    scale: str = "demo",
    seed: int = 20201101,
    force: bool = False,
    progress: bool = True,
    load_date: date | None = None,
    log: Callable[[str], None] = print,
) -> str:
    """Build and load the city in one transaction; skip when the same city is already there."""
    from synthetic.addresses import generate_library
    from synthetic.clues import generate_clues
    from synthetic.entities import generate_entities

    spec = SCALES[scale]
    engine = make_engine(settings)
    note = f"generator v{GENERATOR_VERSION}"
    with engine.connect() as conn:
        previous = loaded_city(conn)
    if previous and not force and previous["scale"] == scale and previous["seed"] == seed and previous["note"] == note:
        engine.dispose()
        return f"demo city already loaded ({scale}, seed {seed}, {previous['loaded_at']:%Y-%m-%d %H:%M}); nothing to do"

    load_date = load_date or today()
    t0 = time.perf_counter()
    bar = Progress(progress, total_stages=9)
    try:
        towns_m, repair_report, communities_m = build_territory(seed, bar)
        with bar.stage("roads and standard addresses"):
            library = generate_library(communities_m, seed, spec.addresses)
            addresses = library.addresses
        town_names = dict(zip(towns_m["code"], towns_m["name"], strict=True))
        community_names = dict(zip(communities_m["code"], communities_m["short_name"], strict=True))
        with bar.stage("market entities"):
            entity_set = generate_entities(addresses, town_names, community_names, seed, spec.entities, load_date)
            entities = entity_set.entities
        with bar.stage("grids (balanced partition)"):
            addr_xy = addresses[["x", "y"]].to_numpy(dtype=float)
            ent_xy = addr_xy[pd.Index(addresses["id"]).get_indexer(entities["address_id"])]
            points = np.vstack([addr_xy, ent_xy])
            point_comm = np.concatenate(
                [
                    addresses["community_code"].to_numpy(),
                    addresses["community_code"].to_numpy()[
                        pd.Index(addresses["id"]).get_indexer(entities["address_id"])
                    ],
                ]
            )
            grids_m = build_grids(communities_m, points, np.ones(len(points)), point_comm, spec.grids)
            # Shared edges must keep shared vertices through the reprojection to WGS84 (see node_coverage).
            grids_m["geometry"] = [_as_multi(g) for g in node_coverage(list(grids_m.geometry))]
            grid_geoms = list(grids_m.geometry)
            communities_m["geometry"] = [
                _as_multi(g) for g in node_coverage(list(communities_m.geometry), references=grid_geoms)
            ]
            towns_m["geometry"] = [_as_multi(g) for g in node_coverage(list(towns_m.geometry), references=grid_geoms)]
        with bar.stage("locate addresses and entities"):
            grids_ll = grids_m.to_crs(4326)
            locator = GridLocator.build(grids_ll["code"].tolist(), grids_ll.geometry.tolist())
            addr_ll = gpd.points_from_xy(addresses["x"], addresses["y"], crs=METRIC_EPSG).to_crs(4326)
            addr_lon, addr_lat = np.asarray(addr_ll.x), np.asarray(addr_ll.y)
            addr_grid = locator.locate_codes(addr_lon, addr_lat)
            # A door on a shared boundary belongs to the grid the tie rule picks, and so to that grid's community.
            grid_comm = dict(zip(grids_m["code"], grids_m["community_code"], strict=True))
            grid_town = dict(zip(grids_m["code"], grids_m["town_code"], strict=True))
            addresses = addresses.assign(
                grid_code=addr_grid,
                community_code=[
                    grid_comm.get(c, o) for c, o in zip(addr_grid, addresses["community_code"], strict=True)
                ],
                town_code=[grid_town.get(c, o) for c, o in zip(addr_grid, addresses["town_code"], strict=True)],
            )
            ent_idx = pd.Index(addresses["id"]).get_indexer(entities["address_id"])
            entities = entities.assign(
                grid_code=addr_grid[ent_idx], town_code=addresses["town_code"].to_numpy()[ent_idx]
            )
            grid_stats = _grid_stats(grids_m, addresses, entities, communities_m)
        with bar.stage("grid workers"):
            workers = _workers(grid_stats, seed)
        with bar.stage("clues and planted hotspots"):
            clue_set = generate_clues(grids_m, addresses, seed, spec.clues, load_date, spec.hotspots)
        with bar.stage("write to PostGIS (one transaction)"):
            counts = _write_all(
                engine,
                towns_m=towns_m,
                repair_report=repair_report,
                communities_m=communities_m,
                grids_m=grid_stats,
                roads_m=library.roads,
                addresses=addresses,
                addr_lonlat=(addr_lon, addr_lat),
                entities=entities,
                licences=entity_set.licences,
                workers=workers,
                clues=clue_set.clues,
                hotspots=clue_set.hotspots,
                locator=locator,
                scale=scale,
                seed=seed,
                load_date=load_date,
                note=note,
                started=t0,
            )
    finally:
        bar.close()
        engine.dispose()
    elapsed = time.perf_counter() - t0
    summary = ", ".join(f"{v:,} {k}" for k, v in counts.items())
    return f"demo city loaded ({scale}, seed {seed}) in {elapsed:.1f} s: {summary}"


def _grid_stats(
    grids_m: gpd.GeoDataFrame, addresses: pd.DataFrame, entities: pd.DataFrame, communities_m: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """Counts, workload and a resident population per grid (population sums to each community's)."""
    addr_counts = addresses["grid_code"].value_counts()
    ent_counts = entities["grid_code"].value_counts()
    out = grids_m.copy()
    out["address_count"] = out["code"].map(addr_counts).fillna(0).astype(int)
    out["entity_count"] = out["code"].map(ent_counts).fillna(0).astype(int)
    out["workload"] = out["address_count"] + out["entity_count"]
    out["area_m2"] = out.geometry.area
    population = np.zeros(len(out), dtype=np.int64)
    comm_pop = dict(zip(communities_m["code"], communities_m["population"], strict=True))
    for code, idx in out.groupby("community_code").indices.items():
        shares = out["address_count"].to_numpy()[idx] + 1.0
        population[idx] = allocate(int(comm_pop[code]), shares)
    out["population"] = population
    out["worker_count"] = np.clip(np.round(out["workload"] / max(out["workload"].mean(), 1) * 3.4), 2, 5).astype(int)
    return out


SURNAMES = "陈李黄张梁刘林何叶罗郑袁卢王钟邓莫麦蔡杨吴周冯谢"
GIVEN = "伟强敏静丽军华芳婷杰明辉燕玲勇涛斌娟海霞峰雪佳文"


def _workers(grids: gpd.GeoDataFrame, seed: int) -> pd.DataFrame:
    """Grid workers, 2–5 per grid by workload, each with a capacity of open tasks."""
    rng = np.random.default_rng([seed, 99])
    n = int(grids["worker_count"].sum())
    grid_codes = np.repeat(grids["code"].to_numpy(), grids["worker_count"].to_numpy())
    town_codes = np.repeat(grids["town_code"].to_numpy(), grids["worker_count"].to_numpy())
    names = [
        SURNAMES[a] + GIVEN[b] + (GIVEN[c] if c >= 0 else "")
        for a, b, c in zip(
            rng.integers(0, len(SURNAMES), n),
            rng.integers(0, len(GIVEN), n),
            rng.integers(-8, len(GIVEN), n),
            strict=True,
        )
    ]
    phones = [f"13{d:09d}" for d in rng.integers(0, 10**9, n)]
    return pd.DataFrame(
        {
            "name": names,
            "phone": phones,
            "town_code": town_codes,
            "grid_code": grid_codes,
            "capacity": rng.integers(40, 81, n),
        }
    )


def _write_all(engine: Any, **parts: Any) -> dict[str, int]:
    """Replace the whole city inside one transaction; any failure leaves the previous city whole."""
    from address_library.models import address, road
    from supervision.models import clue, entity, entity_licence

    towns_m: gpd.GeoDataFrame = parts["towns_m"]
    communities_m: gpd.GeoDataFrame = parts["communities_m"]
    grids_m: gpd.GeoDataFrame = parts["grids_m"]
    addresses: pd.DataFrame = parts["addresses"]
    entities: pd.DataFrame = parts["entities"]
    with engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE synthetic.entity_truth, synthetic.hotspot, task_warning, task_event, task, clue_photo, clue, "
                "registration_event, outbox, job_run, address_alias, entity_licence, entity, address, road, "
                "review_queue, worker, grid, grid_version, community, town_repair, town RESTART IDENTITY CASCADE"
            )
        )
        towns_ll = towns_m.to_crs(4326)
        towns_ll["area_m2"] = towns_m.geometry.area.to_numpy()
        grid_repo.replace_towns(conn, towns_ll, parts["repair_report"])
        comm_ll = communities_m.to_crs(4326)
        comm_ll["area_m2"] = communities_m.geometry.area.to_numpy()
        grid_repo.replace_communities(conn, comm_ll)
        version_id = grid_repo.create_grid_version(
            conn, name="第1版网格 (合成城市)", status="active", note="balanced on address rows + entities"
        )
        grid_repo.insert_grids(conn, version_id, grids_m.to_crs(4326))
        workers: pd.DataFrame = parts["workers"]
        grid_repo.insert_workers(conn, workers.assign(version_id=version_id))

        roads_m: gpd.GeoDataFrame = parts["roads_m"]
        roads_ll = roads_m.to_crs(4326)
        from shapely.geometry import LineString, MultiLineString

        road_frame = pd.DataFrame(
            {
                "id": roads_ll["id"].to_numpy(),
                "town_code": roads_ll["town_code"].to_numpy(),
                "name": roads_ll["name"].to_numpy(),
                "kind": roads_ll["kind"].to_numpy(),
                "geom": ewkb_hex([MultiLineString([g]) if isinstance(g, LineString) else g for g in roads_ll.geometry]),
            }
        )
        copy_frame(conn, road, road_frame)

        lon, lat = parts["addr_lonlat"]
        addr_cols = [
            "id",
            "level",
            "parent_id",
            "full_text",
            "kind",
            "town_code",
            "community_code",
            "road_id",
            *COMPONENT_COLUMNS,
            "grid_code",
        ]
        addr_frame = addresses[addr_cols].copy()
        for col in ("parent_id", "road_id"):
            addr_frame[col] = addr_frame[col].astype("Int64")
        addr_frame["geom"] = ewkb_hex(gpd.points_from_xy(lon, lat))
        # Parents first, so the self-reference holds row by row.
        addr_frame = addr_frame.sort_values(["level"], key=lambda s: s.map({"door": 0, "building": 1, "room": 2}))
        copy_frame(conn, address, addr_frame)

        ent_idx = pd.Index(addresses["id"]).get_indexer(entities["address_id"])
        ent_frame = entities[
            [
                "uscc",
                "name",
                "kind",
                "business_scope",
                "industry",
                "raw_address",
                "address_id",
                "town_code",
                "grid_code",
                "status",
                "registered_on",
                "annual_report_filed_on",
                "needs_licence",
                "credit_class",
            ]
        ].copy()
        ent_frame["geom"] = ewkb_hex(gpd.points_from_xy(lon[ent_idx], lat[ent_idx]))
        copy_frame(conn, entity, ent_frame)
        copy_frame(conn, entity_licence, parts["licences"][["uscc", "licence", "department", "issued_on"]])
        copy_frame(
            conn,
            truth.entity_truth,
            pd.DataFrame({"uscc": entities["uscc"], "address_id": entities["address_id"], "noise": entities["noise"]}),
        )

        clues: pd.DataFrame = parts["clues"]
        clue_ll = gpd.points_from_xy(clues["x"], clues["y"], crs=METRIC_EPSG).to_crs(4326)
        clue_lon, clue_lat = np.asarray(clue_ll.x), np.asarray(clue_ll.y)
        clue_grid = parts["locator"].locate_codes(clue_lon, clue_lat)
        grid_town = dict(zip(grids_m["code"], grids_m["town_code"], strict=True))
        clue_frame = pd.DataFrame(
            {
                "kind": clues["kind"],
                "industry": clues["industry"],
                "description": clues["description"],
                "severity": clues["severity"],
                "status": "closed",
                "source": clues["source"],
                "reported_at": clues["reported_at"],
                "town_code": [grid_town.get(g) for g in clue_grid],
                "grid_code": clue_grid,
                "geom": ewkb_hex(gpd.points_from_xy(clue_lon, clue_lat)),
            }
        )
        copy_frame(conn, clue, clue_frame)
        hotspots: pd.DataFrame = parts["hotspots"]
        hs_ll = gpd.points_from_xy(hotspots["x"], hotspots["y"], crs=METRIC_EPSG).to_crs(4326)
        copy_frame(
            conn,
            truth.hotspot,
            pd.DataFrame(
                {
                    "id": hotspots["id"],
                    "industry": hotspots["industry"],
                    "kind": hotspots["kind"],
                    "radius_m": hotspots["radius_m"],
                    "start_date": hotspots["start_date"],
                    "n_clues": hotspots["n_clues"],
                    "geom": ewkb_hex(np.asarray(hs_ll)),
                }
            ),
        )
        # 一单两库 (issue 16): the shipped item lists and the departments' inspectors, once the city is in place.
        from synthetic.inspections import load_inspection_lists

        lists = load_inspection_lists(conn, parts["seed"])
        # Credit classes (issue 16): the generator's classes are only a first guess; the city starts with the classes
        # the rules compute from its records, each with its reasons and one history row, as of the load date.
        from planning.credit_service import recompute

        recompute(conn, as_of=parts["load_date"], actor="demo-load")
        counts = {
            "towns": len(towns_m),
            "communities": len(communities_m),
            "grids": len(grids_m),
            "roads": len(roads_m),
            "addresses": len(addresses),
            "entities": len(entities),
            "licences": len(parts["licences"]),
            "workers": len(workers),
            "clues": len(clues),
            "hotspots": len(hotspots),
            "inspection_items": lists["items"],
            "inspectors": lists["inspectors"],
        }
        conn.execute(
            truth.demo_load.insert().values(
                scale=parts["scale"],
                seed=parts["seed"],
                load_date=parts["load_date"],
                seconds=time.perf_counter() - parts["started"],
                counts=counts,
                note=parts["note"],
            )
        )
    return counts
