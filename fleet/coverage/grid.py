"""Population cells: a regular grid over the PC4 areas, each cell carrying its share of the
area's inhabitants.

CBS publishes inhabitants per PC4 area, not finer, so an area's inhabitants are spread evenly
over the cells whose centre lies inside it; an area too small to hold a cell centre becomes one
cell at its inner point. Cells are a latitude/longitude lattice whose spacing is `cell_m` metres
at the middle latitude of the areas (within about 3 % of it anywhere in the Netherlands); all
distances are then measured exactly on the sphere (`alarm_core.geo`), so the lattice's shape
never bends a travel time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from alarm_core.geo import EARTH_RADIUS_M, to_xyz
from fleet.population import Pc4Areas

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

METRES_PER_DEGREE = np.pi * EARTH_RADIUS_M / 180.0


@dataclass(frozen=True)
class Lattice:
    """Cell centres at (lat0 + row * dlat, lon0 + col * dlon)."""

    lat0: float
    lon0: float
    dlat: float
    dlon: float

    @classmethod
    def over(cls, bounds: tuple[float, float, float, float], cell_m: float) -> Lattice:
        """A lattice of `cell_m`-metre cells covering (west, south, east, north)."""
        if not cell_m > 0:
            raise ValueError("cell size must be positive")
        west, south, east, north = bounds
        dlat = cell_m / METRES_PER_DEGREE
        dlon = cell_m / (METRES_PER_DEGREE * np.cos(np.radians((south + north) / 2)))
        return cls(south + dlat / 2, west + dlon / 2, dlat, dlon)

    def ranges(self, bounds: tuple[float, float, float, float]) -> tuple[IntArray, IntArray]:
        """Rows and columns whose centres fall inside (west, south, east, north)."""
        west, south, east, north = bounds
        rows = np.arange(np.ceil((south - self.lat0) / self.dlat),
                         np.floor((north - self.lat0) / self.dlat) + 1, dtype=np.int64)
        cols = np.arange(np.ceil((west - self.lon0) / self.dlon),
                         np.floor((east - self.lon0) / self.dlon) + 1, dtype=np.int64)
        return rows, cols

    def square(self, lat: float, lon: float) -> list[list[float]]:
        """The cell around a centre as a closed GeoJSON ring (lon, lat)."""
        h, w = self.dlat / 2, self.dlon / 2
        return [[round(lon - w, 6), round(lat - h, 6)], [round(lon + w, 6), round(lat - h, 6)],
                [round(lon + w, 6), round(lat + h, 6)], [round(lon - w, 6), round(lat + h, 6)],
                [round(lon - w, 6), round(lat - h, 6)]]


@dataclass(frozen=True)
class Cells:
    """Places where a cardiac arrest may happen, with the inhabitants each stands for."""

    lat: FloatArray
    lon: FloatArray
    population: FloatArray
    area: IntArray
    """Index of the PC4 area (in the `Pc4Areas` the cells were laid over)."""
    cell_m: float
    lattice: Lattice | None = None
    xyz: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "xyz", to_xyz(self.lat, self.lon).reshape(-1, 3))

    def __len__(self) -> int:
        return len(self.lat)

    @cached_property
    def tree(self) -> cKDTree:
        return cKDTree(self.xyz)


def lay_cells(areas: Pc4Areas, cell_m: float, only: IntArray | None = None,
              progress: Callable[[int], None] | None = None) -> Cells:
    """Cells of about `cell_m` metres over the areas (all, or the indexes in `only`)."""
    chosen = np.arange(len(areas)) if only is None else np.asarray(only, dtype=np.int64)
    lattice = Lattice.over(tuple(shapely.total_bounds(areas.polygons)), cell_m)  # type: ignore[arg-type]
    lat_parts: list[FloatArray] = []
    lon_parts: list[FloatArray] = []
    area_parts: list[IntArray] = []
    pop_parts: list[FloatArray] = []
    seen: set[tuple[int, int]] = set()
    for done, index in enumerate(chosen.tolist(), start=1):
        polygon = areas.polygons[index]
        rows, cols = lattice.ranges(polygon.bounds)
        lat = np.repeat(lattice.lat0 + rows * lattice.dlat, len(cols))
        lon = np.tile(lattice.lon0 + cols * lattice.dlon, len(rows))
        inside = shapely.contains_xy(polygon, lon, lat) if len(lat) else np.zeros(0, bool)
        lat, lon = lat[inside], lon[inside]
        # A centre on a shared border (or in overlapping simplified outlines) counts once.
        key_rows = np.rint((lat - lattice.lat0) / lattice.dlat).astype(np.int64)
        key_cols = np.rint((lon - lattice.lon0) / lattice.dlon).astype(np.int64)
        fresh = np.array([(r, c) not in seen for r, c in zip(key_rows.tolist(), key_cols.tolist(),
                                                             strict=True)], dtype=bool)
        seen.update(zip(key_rows[fresh].tolist(), key_cols[fresh].tolist(), strict=True))
        lat, lon = lat[fresh], lon[fresh]
        if len(lat) == 0:
            point = polygon.representative_point()
            lat, lon = np.array([point.y]), np.array([point.x])
        lat_parts.append(lat)
        lon_parts.append(lon)
        area_parts.append(np.full(len(lat), index, dtype=np.int64))
        pop_parts.append(np.full(len(lat), areas.population[index] / len(lat)))
        if progress is not None and done % 64 == 0:
            progress(64)
    if progress is not None and len(chosen) % 64:
        progress(len(chosen) % 64)
    if not lat_parts:
        empty = np.zeros(0)
        return Cells(empty, empty, empty, np.zeros(0, dtype=np.int64), cell_m, lattice)
    return Cells(np.concatenate(lat_parts), np.concatenate(lon_parts),
                 np.concatenate(pop_parts), np.concatenate(area_parts), cell_m, lattice)
