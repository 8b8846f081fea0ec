"""Distances and travel times: one model for dispatch and coverage.

Points are kept as Cartesian coordinates on a sphere of the Earth's mean radius, in metres. The
straight-line (chord) distance between two such points ranks exactly as the great-circle distance
does and converts to it exactly, so a k-d tree over them answers "nearest within r metres" with no
projection error anywhere in the world. The radius is geopy's and PostGIS's sphere radius, so the
three agree to well under a millimetre at dispatch distances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

EARTH_RADIUS_M = 6_371_008.8

FloatArray = NDArray[np.float64]


def to_xyz(lat: FloatArray | float, lon: FloatArray | float) -> FloatArray:
    """Cartesian metres on the mean sphere, shape (n, 3) (or (3,) for scalars)."""
    phi = np.radians(lat)
    lam = np.radians(lon)
    cos_phi = np.cos(phi)
    return np.stack([EARTH_RADIUS_M * cos_phi * np.cos(lam),
                     EARTH_RADIUS_M * cos_phi * np.sin(lam),
                     EARTH_RADIUS_M * np.sin(phi)], axis=-1)


def arc_to_chord(metres: float) -> float:
    """The straight-line distance between two points `metres` apart on the sphere."""
    return float(2.0 * EARTH_RADIUS_M * np.sin(min(metres, np.pi * EARTH_RADIUS_M)
                                              / (2.0 * EARTH_RADIUS_M)))


def chord_to_arc(chord: FloatArray | float) -> FloatArray:
    """Great-circle metres for straight-line metres (inverse of `arc_to_chord`)."""
    ratio = np.clip(np.asarray(chord, dtype=np.float64) / (2.0 * EARTH_RADIUS_M), 0.0, 1.0)
    return np.asarray(2.0 * EARTH_RADIUS_M * np.arcsin(ratio), dtype=np.float64)


def great_circle_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine on the mean sphere)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlam = np.radians(lon2 - lon1)
    h = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlam / 2) ** 2
    return float(2 * EARTH_RADIUS_M * np.arcsin(min(1.0, float(np.sqrt(h)))))


@dataclass(frozen=True)
class TravelModel:
    """Time for a citizen responder to cover a distance: reacting to the alert, then moving.

    Straight-line distance at a steady speed; the median lay responder moves at 2.3 m/s (a brisk
    walk with some running, as measured in the Dutch and Danish systems).
    """

    speed_mps: float = 2.3
    turnout_s: float = 30.0

    def seconds(self, metres: float | FloatArray) -> FloatArray:
        """Seconds from the alert to arriving `metres` away."""
        return np.asarray(self.turnout_s + np.asarray(metres) / self.speed_mps, dtype=np.float64)
