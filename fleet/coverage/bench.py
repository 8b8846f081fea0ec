"""`aedfleet bench coverage`: the 6-minute zone of the whole Netherlands.

The synthetic country of `aedfleet bench dispatch` (responders and AEDs placed by CBS population
per PC4 area, with the attributes a real register shows) on a grid of population cells over all
4,067 PC4 areas. Measured in one run on the same data:

- the full computation (every cell's time to CPR and to an AED);
- single AED changes applied incrementally, checked against a full recomputation;
- the 24-hour profile of the largest municipality;
- a straightforward baseline, all pairs of cells and AEDs (and of AEDs and responders) within
  reach as vectorised numpy distances, timed on a random sample of cells and AEDs and scaled to
  the whole grid (its work is linear in both), and whether it finds the same covered cells.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from alarm_core.bench import build_world
from alarm_core.geo import chord_to_arc
from fleet.coverage.grid import Cells, lay_cells
from fleet.coverage.model import CoverageMap, CoverageModel, FloatArray, deployable_mask
from fleet.coverage.service import (
    CoverageInputs,
    day_profile,
    find_municipality,
    near_cells,
)
from fleet.population import load_pc4


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def _metres(points: FloatArray, others: FloatArray) -> FloatArray:
    """Great-circle metres from each of `points` to each of `others` (all pairs)."""
    return chord_to_arc(np.sqrt(((points[:, None, :] - others[None, :, :]) ** 2).sum(axis=2)))


def baseline_sample(cells: Cells, sample: np.ndarray, aed_xyz: FloatArray,
                    responder_xyz: FloatArray, model: CoverageModel,
                    ) -> tuple[float, float, int, np.ndarray]:
    """Covered flags of the sampled cells from all-pairs distances: cell -> every responder,
    cell -> every AED, and each AED within reach -> every responder (its fetch).
    Returns (seconds for the cells, seconds for the fetches, AEDs fetched, flags)."""
    reach = model.reach_m
    fetch: dict[int, float] = {}
    fetch_s = 0.0
    start = time.perf_counter()
    covered = np.zeros(len(sample), dtype=bool)
    for lo in range(0, len(sample), 16):
        block = cells.xyz[sample[lo:lo + 16]]
        cpr = _metres(block, responder_xyz).min(axis=1) <= reach
        to_aeds = _metres(block, aed_xyz)
        wanted = [int(a) for a in np.flatnonzero((to_aeds <= reach).any(axis=0))
                  if int(a) not in fetch]
        if wanted:
            began = time.perf_counter()
            fetch.update(zip(wanted, _metres(aed_xyz[wanted], responder_xyz).min(axis=1)
                             .tolist(), strict=True))
            fetch_s += time.perf_counter() - began
        known = np.array([fetch.get(a, np.inf) for a in range(len(aed_xyz))])
        aed = ((to_aeds + known[None, :]) <= reach).any(axis=1)
        covered[lo:lo + 16] = cpr & aed
    cells_s = time.perf_counter() - start - fetch_s
    return cells_s, fetch_s, len(fetch), covered


def bench_coverage(responders: int, aeds: int, cell_m: float, at: datetime,
                   changes: int, sample_cells: int,
                   progress: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """The figures of `aedfleet bench coverage` (see the module's description)."""
    world = build_world(responders, aeds, 0, at)
    areas = load_pc4()
    model = CoverageModel()
    inputs = CoverageInputs.build(areas, world.aeds, world.responders, {}, model, cell_m)
    progress("laying the grid")
    grid_s, cells = _timed(lambda: lay_cells(areas, cell_m))
    tree_s, _tree = _timed(lambda: cells.tree)
    progress(f"full computation over {len(cells):,} cells")
    runs = [_timed(lambda: CoverageMap(cells, inputs.aeds, inputs.responders, model, at,
                                       len(areas))) for _ in range(2)]
    full_s = min(s for s, _m in runs)
    coverage: CoverageMap = runs[-1][1]
    night = model.local(at).replace(hour=3, minute=0)
    night_map = CoverageMap(cells, inputs.aeds, inputs.responders, model, night, len(areas))

    progress(f"{changes} single AED changes")
    rng = np.random.default_rng(6)
    timings: list[float] = []
    touched: list[int] = []
    for _ in range(changes):
        which = int(rng.integers(len(inputs.aeds)))
        aed = inputs.aeds[which]
        flipped = replace(aed, readiness="not_ready" if aed.readiness == "ready" else "ready")
        inputs.aeds[which] = flipped
        began = time.perf_counter()
        cells_done = coverage.set_aed(flipped)
        timings.append((time.perf_counter() - began) * 1000)
        touched.append(cells_done)
    fresh = CoverageMap(cells, inputs.aeds, inputs.responders, model, at, len(areas))
    agree_incremental = bool(np.array_equal(fresh.covered, coverage.covered)
                             and np.allclose(fresh.area_covered, coverage.area_covered))

    biggest = max(set(areas.municipalities),
                  key=lambda m: sum(p for p, n in zip(areas.population, areas.municipalities,
                                                      strict=True) if n == m))
    name = find_municipality(areas, biggest)
    indexes = [i for i, m in enumerate(areas.municipalities) if m == name]
    local_cells = lay_cells(areas, cell_m, only=np.array(indexes))
    nearby = np.flatnonzero(near_cells(inputs.aed_xyz, local_cells, model.reach_m))
    progress(f"24-hour profile of {name}")
    profile_s, _profile = _timed(lambda: day_profile(inputs, local_cells, nearby, at, indexes))

    progress(f"baseline on {sample_cells:,} sampled cells")
    picks = np.sort(rng.choice(len(cells), size=min(sample_cells, len(cells)), replace=False))
    people = inputs.responders.positions_at(at, model)
    usable = deployable_mask(inputs.aeds, at, model)
    cells_s, fetch_s, fetched, flags = baseline_sample(cells, picks, inputs.aed_xyz[usable],
                                                       people, model)
    # Scaled to the whole country: the cell part per cell, the fetch part per counted AED.
    baseline_s = cells_s / len(picks) * len(cells) + \
        fetch_s / max(1, fetched) * int(usable.sum())
    agree = bool(np.array_equal(flags, coverage.covered[picks]))
    population = float(coverage.area_population.sum())
    return {
        "cells": len(cells), "cell_m": cell_m, "aeds": len(inputs.aeds),
        "responders": len(world.responders), "at": at.isoformat(),
        "grid_s": round(grid_s, 2), "cell_tree_s": round(tree_s, 2),
        "full_s": round(full_s, 2),
        "incremental_ms": round(float(np.percentile(timings, 99)), 2),
        "incremental_p50_ms": round(statistics.median(timings), 2),
        "incremental_max_ms": round(max(timings), 2),
        "incremental_cells_median": int(statistics.median(touched)),
        "incremental_agrees_with_full": agree_incremental,
        "profile_municipality": name, "profile_cells": len(local_cells),
        "profile_s": round(profile_s, 3),
        "baseline_s": round(baseline_s, 1), "baseline_sample_cells": len(picks),
        "baseline_sample_aeds": fetched,
        "baseline_ratio": round(baseline_s / full_s, 1), "baseline_agrees": agree,
        "national_covered_pct": round(100 * coverage.covered_share, 2),
        "national_cpr_pct": round(100 * float(coverage.area_cpr.sum() / population), 2),
        "national_aed_pct": round(100 * float(coverage.area_aed.sum() / population), 2),
        "national_covered_pct_night": round(100 * night_map.covered_share, 2),
        "night_at": night.isoformat(),
    }
