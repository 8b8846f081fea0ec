"""Where people live in the Netherlands: PC4 areas with population and expected cardiac arrests.

Used to place simulated responders, AEDs and incidents realistically (benchmarks, the demo)
and, for coverage, to weigh areas by inhabitants. Data: CBS open data (see data/ATTRIBUTION.md).
"""

from __future__ import annotations

import csv
import gzip
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import shape
from shapely.strtree import STRtree


@dataclass(frozen=True)
class Pc4Areas:
    postcodes: NDArray[np.int32]
    municipalities: list[str]
    population: NDArray[np.float64]
    expected_ohca: NDArray[np.float64]
    """Expected out-of-hospital cardiac arrests per year (age-weighted)."""
    polygons: list[shapely.Geometry]

    def __len__(self) -> int:
        return len(self.postcodes)


@lru_cache(maxsize=1)
def load_pc4() -> Pc4Areas:
    """The 4,067 PC4 areas shipped with aedfleet."""
    data = resources.files("fleet.data")
    with data.joinpath("nl_pc4.geojson.gz").open("rb") as raw, gzip.open(raw, "rt") as text:
        features = json.load(text)["features"]
    with data.joinpath("nl_pc4_ohca_expected.csv").open("r", encoding="utf-8") as handle:
        ohca = {int(row["postcode"]): float(row["expected_ohca_per_year_age_weighted"] or 0)
                for row in csv.DictReader(handle)}
    postcodes = np.array([f["properties"]["postcode"] for f in features], dtype=np.int32)
    polygons = [shape(f["geometry"]) for f in features]
    return Pc4Areas(
        postcodes=postcodes,
        municipalities=_municipalities([f["properties"]["gemeente"] for f in features],
                                       polygons),
        population=np.array([f["properties"]["inwoners"] or 0 for f in features], dtype=float),
        expected_ohca=np.array([ohca.get(int(p), 0.0) for p in postcodes]),
        polygons=polygons)


def _municipalities(names: list[str | None], polygons: list[shapely.Geometry]) -> list[str]:
    """Each area's municipality; the few areas CBS lists without one (new or split areas)
    get the municipality their inner point lies in."""
    from fleet.municipalities import MunicipalityLocator, read_boundaries

    if all(names):
        return [str(name) for name in names]
    locator = MunicipalityLocator([(b.name, b.geometry_geojson) for b in read_boundaries()])
    filled: list[str] = []
    for name, polygon in zip(names, polygons, strict=True):
        if not name:
            point = polygon.representative_point()
            name = locator.locate(point.y, point.x) or "unknown"
        filled.append(str(name))
    return filled


def sample_points(areas: Pc4Areas, weights: NDArray[np.float64], count: int,
                  rng: np.random.Generator) -> NDArray[np.float64]:
    """`count` points (lat, lon): an area drawn in proportion to `weights`, then a uniform
    point inside its polygon (rejection sampling within the polygon's bounds)."""
    chosen = rng.choice(len(areas), size=count, p=weights / weights.sum())
    out = np.zeros((count, 2))
    for area in np.unique(chosen):
        where = np.flatnonzero(chosen == area)
        polygon = areas.polygons[int(area)]
        west, south, east, north = polygon.bounds
        found: list[NDArray[np.float64]] = []
        needed = len(where)
        while needed > 0:
            batch = max(16, needed * 3)
            lon = rng.uniform(west, east, batch)
            lat = rng.uniform(south, north, batch)
            inside = shapely.contains_xy(polygon, lon, lat)
            hits = np.column_stack([lat[inside], lon[inside]])[:needed]
            found.append(hits)
            needed -= len(hits)
        out[where] = np.concatenate(found)
    return out


@dataclass(frozen=True)
class Pc4Place:
    """The PC4 area a point lies in: its code, municipality and centroid."""

    postcode: str
    municipality: str
    lat: float
    lon: float


NEAREST_WITHIN_DEG = 0.003
"""A point just outside every area (the simplified outlines leave slivers at coasts and
borders) belongs to the nearest one within about 300 m."""


class Pc4Locator:
    """Point-in-polygon lookup over the PC4 areas (an R-tree of their polygons)."""

    def __init__(self, areas: Pc4Areas) -> None:
        self._areas = areas
        shapely.prepare(areas.polygons)
        self._tree = STRtree(areas.polygons)

    def locate(self, lat: float, lon: float) -> Pc4Place | None:
        """The area containing the point (or the nearest one very close by), else None."""
        point = shapely.Point(lon, lat)
        hits = self._tree.query(point, predicate="intersects")
        if len(hits) == 0:
            hits = self._tree.query_nearest(point, max_distance=NEAREST_WITHIN_DEG)
        if len(hits) == 0:
            return None
        index = int(min(hits))
        centroid = self._areas.polygons[index].centroid
        return Pc4Place(f"{int(self._areas.postcodes[index]):04d}",
                        self._areas.municipalities[index],
                        round(float(centroid.y), 5), round(float(centroid.x), 5))


@lru_cache(maxsize=1)
def pc4_locator() -> Pc4Locator:
    """The locator over the bundled PC4 areas (built once per process, about a second)."""
    return Pc4Locator(load_pc4())
