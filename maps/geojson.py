"""maps.geojson: typed GeoJSON (RFC 7946) for the maps' answers — polygons, features and feature collections.

Frozen pydantic models, so that a service's result is checked by mypy and described in the OpenAPI document;
`Model` is their common configuration (serialized by alias, so a property may be called `class` or `from`).
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Position = list[float]  # lon, lat (WGS84 degrees unless an answer says otherwise)


class Model(BaseModel):
    """The configuration of every answer model: immutable, serialized by alias, built by field name or alias."""

    model_config = ConfigDict(frozen=True, serialize_by_alias=True, validate_by_name=True, validate_by_alias=True)


class Polygon(Model):
    """A polygon: an outer ring, then any holes; each ring closed (first position repeated last)."""

    type: Literal["Polygon"] = "Polygon"
    coordinates: list[list[Position]]


class MultiPolygon(Model):
    """Several polygons."""

    type: Literal["MultiPolygon"] = "MultiPolygon"
    coordinates: list[list[list[Position]]]


Geometry = Annotated[Polygon | MultiPolygon, Field(discriminator="type")]
P = TypeVar("P")


class Feature(Model, Generic[P]):
    """A GeoJSON feature with typed properties."""

    type: Literal["Feature"] = "Feature"
    geometry: Geometry
    properties: P


class FeatureCollection(Model, Generic[P]):
    """A GeoJSON FeatureCollection of features with typed properties."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature[P]]
