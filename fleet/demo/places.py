"""Random places inside an area, for synthetic responders and cardiac-arrest calls."""

from __future__ import annotations

import json
import math
import random

import shapely
import shapely.affinity
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

Place = tuple[float, float]  # (lat, lon)

MAX_TRIES = 10_000
METRES_PER_DEGREE = 111_320.0  # of latitude; of longitude times cos(latitude)


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


def around(places: list[Place], radius_m: float, within: BaseGeometry) -> BaseGeometry:
    """The part of `within` that lies at most `radius_m` from one of `places` (lat, lon).

    Circles drawn on a local flat projection about the places' mean latitude: over a city
    its error is far below a metre per kilometre.
    """
    lat0 = sum(lat for lat, _ in places) / len(places)
    scale_y = METRES_PER_DEGREE
    scale_x = METRES_PER_DEGREE * math.cos(math.radians(lat0))
    circles = [shapely.affinity.scale(Point(lon, lat).buffer(radius_m / scale_y, quad_segs=8),
                                      xfact=scale_y / scale_x, yfact=1.0)
               for lat, lon in places]
    near = shapely.intersection(shapely.union_all(circles), within)
    shapely.prepare(near)
    return near
