"""grids.reference: the real Dongguan reference data shipped in grids/data (towns, divisions, census)."""

from __future__ import annotations

from importlib import resources

import geopandas as gpd
import pandas as pd

DATA = resources.files("grids") / "data"

# The 33 towns used locally ("33 镇街(园区)"): 4 subdistricts, 28 towns and 松山湖. The other three NBS parks
# (东莞港, 东莞生态园, 滨海湾新区) have no polygon of their own in the source; their land lies in neighbouring towns.
COMMUNITY_KINDS_KEPT = ("village_committee", "residents_committee", "special")


def read_towns() -> gpd.GeoDataFrame:
    """The 33 town polygons (WGS84) with code, name, name_en, kind and 2020 census population."""
    with resources.as_file(DATA / "dongguan_towns.geojson") as path:
        towns = gpd.read_file(path, engine="pyogrio")
    towns = towns.set_crs(4326, allow_override=True)
    divisions = read_divisions()
    kinds = divisions.set_index("code")["kind"]
    towns["kind"] = towns["code"].map(kinds)
    towns = towns.rename(columns={"population_2020": "population"})
    return (
        towns[["code", "name", "name_en", "kind", "population", "geometry"]].sort_values("code").reset_index(drop=True)
    )


def read_divisions() -> pd.DataFrame:
    """The NBS division list: towns and communities with 12-digit codes and kinds."""
    with resources.as_file(DATA / "dongguan_divisions.csv") as path:
        return pd.read_csv(path, dtype=str, keep_default_na=False)


def read_communities(town_codes: set[str]) -> pd.DataFrame:
    """The 605 communities of the 33 towns: 596 villages/residents' committees, 8 special units, 松山湖's virtual one.

    The three other virtual communities belong to parks without a polygon and are left out.
    """
    divisions = read_divisions()
    rows = divisions[(divisions["level"] == "community") & divisions["parent_code"].isin(town_codes)]
    rows = rows[rows["kind"].isin(COMMUNITY_KINDS_KEPT) | (rows["kind"] == "virtual")]
    out = rows.rename(columns={"parent_code": "town_code"})[["code", "name", "town_code", "kind"]]
    return out.sort_values("code").reset_index(drop=True)


def short_community_name(name: str) -> str:
    """The name people use: 新安社区居民委员会 → 新安社区, 上沙村民委员会 → 上沙村."""
    for suffix, replacement in (
        ("社区居民委员会", "社区"),
        ("居民委员会", "社区"),
        ("村村民委员会", "村"),
        ("村民委员会", "村"),
        ("村委会", "村"),
    ):
        if name.endswith(suffix):
            return name[: -len(suffix)] + replacement
    return name


def town_short_name(name: str) -> str:
    """The town name without 镇/街道 (长安镇 → 长安, 东城街道 → 东城)."""
    for suffix in ("街道", "镇"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
