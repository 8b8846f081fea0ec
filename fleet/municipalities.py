"""Municipality boundaries: loading them and finding the municipality a point lies in."""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.strtree import STRtree

from fleet.errors import ImportFileError

BUNDLED_BOUNDARIES = "nl_gemeenten.geojson.gz"
NAME_KEYS = ("gemeente", "name", "municipality", "gemeentenaam")
POPULATION_KEYS = ("inwoners", "population")


@dataclass(frozen=True)
class Boundary:
    name: str
    population: int | None
    geometry_geojson: str


def read_boundaries(path: Path | None = None) -> list[Boundary]:
    """Municipality polygons from a GeoJSON file (gzip allowed); default: the bundled Dutch set."""
    if path is None:
        raw = resources.files("fleet.data").joinpath(BUNDLED_BOUNDARIES).read_bytes()
    else:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ImportFileError(f"cannot read {path}: {exc.strerror}") from exc
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"boundary file is not GeoJSON: {exc}") from exc
    boundaries = []
    for number, feature in enumerate(document.get("features") or [], start=1):
        props = feature.get("properties") or {}
        name = next((str(props[k]) for k in NAME_KEYS if props.get(k)), None)
        geometry = feature.get("geometry")
        if not name or not geometry or geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise ImportFileError(f"feature {number}: needs a name and a (Multi)Polygon geometry")
        population = next((props[k] for k in POPULATION_KEYS if props.get(k) is not None), None)
        boundaries.append(Boundary(name, int(population) if population is not None else None,
                                   json.dumps(geometry, separators=(",", ":"))))
    return boundaries


class MunicipalityLocator:
    """Point-in-polygon lookup over municipality boundaries (an R-tree of shapely polygons)."""

    def __init__(self, boundaries: list[tuple[str, str]]) -> None:
        self._names = [name for name, _ in boundaries]
        self._polygons: list[Any] = [shape(json.loads(geo)) for _, geo in boundaries]
        shapely.prepare(self._polygons)
        self._tree = STRtree(self._polygons)

    def __len__(self) -> int:
        return len(self._names)

    def locate(self, lat: float, lon: float) -> str | None:
        """The municipality containing the point, or None outside every boundary."""
        point = shapely.Point(lon, lat)
        for index in self._tree.query(point, predicate="intersects"):
            return self._names[int(index)]
        return None


def outlines(rows: Sequence[Any], near: tuple[float, float] | None = None,
             margin_deg: float = 0.03) -> list[dict[str, Any]]:
    """Simplified municipality outlines as GeoJSON features (a map's base layer without
    tiles), from (name, boundary GeoJSON) rows; `near` (lat, lon) keeps only those within
    about 3 km of the place."""
    found = []
    for name, geometry in rows:
        feature, (west, south, east, north) = _outline(name, geometry)
        if near is not None and not (south - margin_deg <= near[0] <= north + margin_deg
                                     and west - margin_deg <= near[1] <= east + margin_deg):
            continue
        found.append(feature)
    return found


@lru_cache(maxsize=1024)
def _outline(name: str, geometry: str) -> tuple[dict[str, Any], tuple[float, float, float, float]]:
    simple = shapely.from_geojson(geometry).simplify(0.0005, preserve_topology=True)
    feature = {"type": "Feature", "properties": {"name": name},
               "geometry": json.loads(shapely.to_geojson(shapely.set_precision(simple, 1e-5)))}
    return feature, tuple(simple.bounds)  # type: ignore[return-value]
