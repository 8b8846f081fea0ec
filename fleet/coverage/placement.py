"""Placement advice: where new 24/7 AEDs would add most, and which existing ones matter most.

New AEDs: greedy maximum coverage. A candidate site is any cell centre, inhabited or not; an
AED there would be fetched by the nearest alertable responder, so it reaches the cells within
`reach - fetch`. Only cells that already have CPR in time but no AED in time can be won. The
site that wins the most inhabitants is taken, its cells count as covered, and the next is chosen
on what is left: the classic greedy, within 1 - 1/e of the best possible set of k sites.

Existing AEDs: an AED hurts when lost where it is the only AED bringing help in time to a
covered cell; its loss is the inhabitants of those cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from fleet.coverage.grid import Cells
from fleet.coverage.model import (
    BoolArray,
    CoverageModel,
    FloatArray,
    Times,
    aed_trips,
    nearest_m,
)


@dataclass(frozen=True)
class Proposal:
    """One suggested site for a new 24/7 AED."""

    rank: int
    lat: float
    lon: float
    gain: float
    """Inhabitants newly inside the zone with this AED (after the ones ranked before it)."""
    fetch_m: float
    """Metres from the nearest alertable responder."""

    def to_json(self) -> dict[str, Any]:
        return {"rank": self.rank, "lat": round(self.lat, 6), "lon": round(self.lon, 6),
                "gain_inhabitants": round(self.gain, 1), "fetch_m": round(self.fetch_m, 1)}


@dataclass(frozen=True)
class CriticalAed:
    """An existing AED and the inhabitants who would fall outside the zone without it."""

    aed_id: str
    lat: float
    lon: float
    loss: float

    def to_json(self) -> dict[str, Any]:
        return {"aed_id": self.aed_id, "lat": self.lat, "lon": self.lon,
                "loss_inhabitants": round(self.loss, 1)}


def propose_sites(cells: Cells, times: Times, counted: BoolArray, responders: cKDTree | None,
                  model: CoverageModel, k: int) -> list[Proposal]:
    """Up to `k` sites among `cells` for new 24/7 AEDs, each with its gain in inhabitants of
    the `counted` cells (e.g. those of one municipality)."""
    reach = model.reach_m
    # Uninhabited cells too: a park or business park between two neighbourhoods may reach both.
    candidates = np.flatnonzero(counted)
    if k <= 0 or len(candidates) == 0:
        return []
    fetch = nearest_m(responders, cells.xyz[candidates], reach)
    site, cell, _metres = aed_trips(cells.tree, cells.xyz[candidates], fetch, reach)
    wanted = counted & (times.cpr_s <= model.target_s) & ~(times.aed_s <= model.target_s)
    keep = wanted[cell]
    site, cell = site[keep], cell[keep]
    reaches = sparse.csr_matrix((np.ones(len(site)), (site, cell)),
                                shape=(len(candidates), len(cells)))
    open_pop = np.where(wanted, cells.population, 0.0)
    proposals: list[Proposal] = []
    for rank in range(1, k + 1):
        gains = reaches @ open_pop
        best = int(np.argmax(gains)) if len(gains) else 0
        if not len(gains) or gains[best] <= 0:
            break
        won = reaches.indices[reaches.indptr[best]:reaches.indptr[best + 1]]
        open_pop[won] = 0.0
        where = int(candidates[best])
        proposals.append(Proposal(rank, float(cells.lat[where]), float(cells.lon[where]),
                                  float(gains[best]), float(fetch[best])))
    return proposals


def critical_aeds(cells: Cells, times: Times, counted: BoolArray, aed_ids: list[str],
                  aed_xyz: FloatArray, aed_latlon: FloatArray, model: CoverageModel,
                  limit: int) -> list[CriticalAed]:
    """The AEDs whose loss would take most inhabitants of the `counted` cells out of the zone,
    most first (only those whose loss is more than nobody)."""
    if limit <= 0 or len(aed_ids) == 0:
        return []
    aed, cell, metres = aed_trips(cells.tree, aed_xyz, times.fetch_m, model.reach_m)
    covered = counted & times.covered(model)
    keep = covered[cell]
    aed, cell, metres = aed[keep], cell[keep], metres[keep]
    if len(cell) == 0:
        return []
    order = np.lexsort((metres, cell))
    aed, cell = aed[order], cell[order]
    first = np.ones(len(cell), dtype=bool)
    first[1:] = cell[1:] != cell[:-1]
    # A cell with one AED in reach depends on it; with two or more, on none of them alone.
    alone = first & np.append(first[1:], True)
    loss = np.bincount(aed[alone], weights=cells.population[cell[alone]],
                       minlength=len(aed_ids))
    ranked = np.argsort(-loss, kind="stable")[:limit]
    return [CriticalAed(aed_ids[i], float(aed_latlon[i, 0]), float(aed_latlon[i, 1]),
                        float(loss[i])) for i in ranked.tolist() if loss[i] > 0]
