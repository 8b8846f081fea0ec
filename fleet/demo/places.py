"""Random places inside a municipality, for synthetic responders and cardiac-arrest calls."""

from __future__ import annotations

import json
import random

import shapely
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

Place = tuple[float, float]  # (lat, lon)

MAX_TRIES = 10_000


def area_from_geojson(geometry: str) -> BaseGeometry:
    """A boundary stored as a GeoJSON geometry, prepared for many `contains` tests."""
    area = shape(json.loads(geometry))
    shapely.prepare(area)
    return area


def random_place(area: BaseGeometry, rng: random.Random) -> Place:
    """A uniformly random (lat, lon) inside `area` (whose x is longitude)."""
    west, south, east, north = area.bounds
    for _ in range(MAX_TRIES):
        lon, lat = rng.uniform(west, east), rng.uniform(south, north)
        if area.contains(Point(lon, lat)):
            return round(lat, 6), round(lon, 6)
    raise ValueError("no point inside the area found: is it empty?")
