"""Coverage as documents: JSON (the API and `--json`), CSV (the municipality's report) and
GeoJSON (opens in QGIS: PC4 areas shaded by coverage, advised sites, critical AEDs, cells)."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
from shapely.geometry import mapping

from alarm_core.wire import rfc3339
from fleet.coverage.model import CoverageModel
from fleet.coverage.service import MunicipalityCoverage, NationalCoverage


def assumptions(model: CoverageModel, cell_m: float) -> dict[str, Any]:
    """What the figures rest on, printed with every result."""
    return {"target_s": model.target_s, "alarm_delay_s": model.alarm_delay_s,
            "speed_mps": model.travel.speed_mps, "turnout_s": model.travel.turnout_s,
            "reach_m": round(model.reach_m, 1), "aed_access": str(model.policy.aed_access),
            "cell_m": cell_m, "population": "CBS inhabitants per PC4, spread evenly over "
            "the area's cells"}


def municipality_json(result: MunicipalityCoverage) -> dict[str, Any]:
    total = result.total.to_json()
    return {
        "municipality": result.municipality, "at": rfc3339(result.at),
        "assumptions": assumptions(result.model, result.cell_m),
        "population": total["population"], "covered": total["covered"],
        "covered_pct": total["covered_pct"], "cpr_pct": total["cpr_pct"],
        "aed_pct": total["aed_pct"], "cells": len(result.cells),
        "aeds_counted": result.aeds_counted,
        "postcodes": [{"postcode": p.code, **_area(p.to_json())} for p in result.postcodes],
        "profile": [{"at": rfc3339(h.at), "covered_pct": round(100 * h.covered_share, 2)}
                    for h in result.profile],
        "proposals": [p.to_json() for p in result.proposals],
        "critical_aeds": [c.to_json() for c in result.critical],
    }


def _area(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in ("code", "municipality")}


def national_json(result: NationalCoverage, limit: int | None = None) -> dict[str, Any]:
    return {
        "at": rfc3339(result.at), "assumptions": assumptions(result.model, result.cell_m),
        "cells": result.cells, "population": round(result.population),
        "covered": round(result.covered), "covered_pct": round(100 * result.share, 2),
        "municipalities": [{"municipality": m.code, **_area(m.to_json())}
                           for m in result.municipalities[:limit]],
    }


def municipality_csv(result: MunicipalityCoverage) -> str:
    """One row per PC4 area, weakest first, with its share at each hour of the day."""
    hours = [h.at for h in result.profile]
    # With the UTC offset: the day the clocks go back has two 02:00 hours.
    local = [result.model.local(h).isoformat(timespec="minutes")[11:] for h in hours]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["postcode", "municipality", "population", "covered", "covered_pct",
                     "cpr_pct", "aed_pct", *(f"covered_pct_{t}" for t in local)])
    for p in result.postcodes:
        row = p.to_json()
        writer.writerow([p.code, p.municipality, row["population"], row["covered"],
                         row["covered_pct"], row["cpr_pct"], row["aed_pct"],
                         *(round(100 * h.postcode_shares.get(p.code, 0.0), 2)
                           for h in result.profile)])
    return out.getvalue()


def municipality_geojson(result: MunicipalityCoverage, cells: bool = False) -> dict[str, Any]:
    """PC4 polygons with their coverage, the advised sites and the critical AEDs as points;
    with `cells`, every grid cell as a square with its times."""
    features: list[dict[str, Any]] = []
    for p in result.postcodes:
        features.append({"type": "Feature", "geometry": _rounded(mapping(result.polygons[p.code])),
            "properties": {"kind": "postcode", "postcode": p.code, **_area(p.to_json()),
                           "municipality": p.municipality}})
    for proposal in result.proposals:
        features.append(_point(proposal.lat, proposal.lon,
                                {"kind": "proposed_aed", **proposal.to_json()}))
    for aed in result.critical:
        features.append(_point(aed.lat, aed.lon, {"kind": "critical_aed", **aed.to_json()}))
    if cells and result.cells.lattice is not None:
        times = result.times
        covered = times.covered(result.model)
        for i in range(len(result.cells)):
            lat, lon = float(result.cells.lat[i]), float(result.cells.lon[i])
            features.append({"type": "Feature", "geometry": {
                "type": "Polygon", "coordinates": [result.cells.lattice.square(lat, lon)]},
                "properties": {"kind": "cell", "covered": bool(covered[i]),
                               "population": round(float(result.cells.population[i]), 2),
                               "cpr_s": _seconds(times.cpr_s[i]),
                               "aed_s": _seconds(times.aed_s[i])}})
    return {"type": "FeatureCollection", "features": features,
            "properties": {"municipality": result.municipality, "at": rfc3339(result.at),
                           "covered_pct": result.total.to_json()["covered_pct"],
                           "assumptions": assumptions(result.model, result.cell_m)}}


def _seconds(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 1)


def _point(lat: float, lon: float, properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "properties": properties,
            "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}}


def _rounded(geometry: Any) -> dict[str, Any]:
    """GeoJSON with coordinates at 6 decimals (~0.1 m): a smaller file, same map."""
    def walk(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 6)
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        return value
    return {"type": geometry["type"], "coordinates": walk(geometry["coordinates"])}
