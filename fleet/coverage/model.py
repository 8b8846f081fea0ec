"""The 6-minute zone: times to CPR and to an AED for every cell, fully and incrementally.

For a cardiac arrest at a cell, after the 112 call:

- time to CPR = alarm delay + the nearest alertable responder's travel to the victim;
- time to an AED = alarm delay + the fastest responder -> AED -> victim travel over the AEDs
  deployable at that time.

Travel is the alarm core's `TravelModel` (one model for dispatch and coverage). Because a
fetcher's trip is responder -> AED -> victim, the fastest one through AED `a` is always the
responder nearest to `a`: min over r of d(r, a) + d(a, v) = fetch(a) + d(a, v). So each AED reaches
a disc of radius `reach - fetch(a)` and the cell's AED time is a minimum over the AEDs around it,
which k-d trees answer for a million cells in a second or two. A cell is covered when both times
are within the target (6 minutes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from alarm_core.geo import TravelModel, arc_to_chord, chord_to_arc, to_xyz
from alarm_core.policy import AedAccessPolicy, DispatchPolicy
from alarm_core.pools import AedEntry, PointIndex, ResponderPool
from alarm_core.selection import not_deployable_reason
from fleet.access import accessible_at
from fleet.coverage.grid import Cells

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# Distances are compared on the sphere; the trees work in chords, so their cut-offs get a hair of
# slack and the exact test is made afterwards on great-circle metres.
SLACK = 1.0 + 1e-9


@dataclass(frozen=True)
class CoverageModel:
    """When a place counts as inside the zone, and which AEDs count."""

    travel: TravelModel = TravelModel()
    alarm_delay_s: float = 60.0
    """From the 112 call to the responders' phones ringing."""
    target_s: float = 360.0
    policy: DispatchPolicy = DispatchPolicy(aed_access=AedAccessPolicy.OPEN_NOW)
    """Whose AED rule is applied (`unverified` never counts for coverage)."""
    tz_name: str = "Europe/Amsterdam"
    country: str | None = "NL"

    def __post_init__(self) -> None:
        if self.alarm_delay_s < 0 or self.target_s <= 0:
            raise ValueError("alarm delay must be at least 0 and the target more than 0")
        if self.policy.allow_unverified_aeds:
            # Unknown state is never shown as ready, whatever dispatch may do with it.
            object.__setattr__(self, "policy", replace(self.policy, allow_unverified_aeds=False))

    @property
    def reach_m(self) -> float:
        """The longest trip (metres) that still arrives within the target."""
        spare = self.target_s - self.alarm_delay_s - self.travel.turnout_s
        return max(0.0, spare * self.travel.speed_mps)

    def seconds(self, metres: FloatArray) -> FloatArray:
        """Seconds from the 112 call to arriving after a trip of `metres` (inf stays inf)."""
        return np.asarray(self.alarm_delay_s + self.travel.seconds(metres), dtype=np.float64)

    def local(self, at: datetime) -> datetime:
        return at.astimezone(ZoneInfo(self.tz_name))

    def at_work(self, at: datetime) -> bool:
        """Whether responders with a work address are taken to be there at `at`."""
        return accessible_at("public", self.policy.work_hours, at, self.tz_name,
                             self.country).accessible


def deployable_mask(aeds: Sequence[AedEntry], at: datetime, model: CoverageModel) -> BoolArray:
    """Which AEDs count at `at`: the dispatch rule, decided once per distinct set of facts."""
    decided: dict[tuple[str, bool, bool, str | None], bool] = {}
    out = np.zeros(len(aeds), dtype=bool)
    for i, aed in enumerate(aeds):
        key = (aed.readiness, aed.in_use, aed.public, aed.opening_hours)
        verdict = decided.get(key)
        if verdict is None:
            verdict = decided[key] = not_deployable_reason(
                aed.readiness, aed.in_use, aed.public, aed.opening_hours, at, model.policy,
                model.tz_name, model.country) is None
        out[i] = verdict
    return out


class ResponderSites:
    """Responders' home and work positions with the columns their alertability rests on."""

    def __init__(self, pool: ResponderPool, work_xyz: FloatArray) -> None:
        self.pool = pool
        """Positions at home (work when no home is known)."""
        self.work_xyz = work_xyz
        """Per slot: the work position (home when no work is known)."""

    @classmethod
    def build(cls, pool: ResponderPool, work: dict[str, tuple[float, float]]) -> ResponderSites:
        """`pool` loaded at home positions; `work` the responders who have a work address."""
        work_xyz = np.array([pool.index.position(slot) for slot in range(len(pool.ids))]
                            ).reshape(-1, 3)
        if work:
            slots = np.array([pool.slot_of[rid] for rid in work], dtype=np.int64)
            lat = np.array([p[0] for p in work.values()])
            lon = np.array([p[1] for p in work.values()])
            work_xyz[slots] = to_xyz(lat, lon).reshape(-1, 3)
        return cls(pool, work_xyz)

    def positions_at(self, at: datetime, model: CoverageModel) -> FloatArray:
        """Where the responders who may be alerted at `at` are then."""
        slots = self.pool.alertable_slots(model.local(at))
        if model.at_work(at):
            return self.work_xyz[slots]
        return self.pool.index.positions(slots)


def nearest_m(points: cKDTree | None, query: FloatArray, reach_m: float) -> FloatArray:
    """Great-circle metres from each query point to the nearest tree point; inf beyond reach."""
    if points is None or points.n == 0 or len(query) == 0:
        return np.full(len(query), np.inf)
    chord, _ = points.query(query, k=1, distance_upper_bound=arc_to_chord(reach_m) * SLACK,
                            workers=-1)
    metres = np.full(len(query), np.inf)
    found = np.isfinite(chord)
    metres[found] = chord_to_arc(chord[found])
    metres[metres > reach_m] = np.inf
    return metres


def aed_trips(cells: cKDTree, aed_xyz: FloatArray, fetch_m: FloatArray,
              reach_m: float) -> tuple[IntArray, IntArray, FloatArray]:
    """(aed, cell, metres) for every AED that brings help to a cell within reach: metres is
    the fastest fetch, responder -> AED -> cell."""
    usable = np.flatnonzero(np.isfinite(fetch_m) & (fetch_m <= reach_m))
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))
    if len(usable) == 0 or cells.n == 0:
        return empty
    tree = cKDTree(aed_xyz[usable])
    pairs = tree.sparse_distance_matrix(cells, arc_to_chord(reach_m) * SLACK,
                                        output_type="ndarray")
    aed = usable[pairs["i"].astype(np.int64)]
    total = chord_to_arc(pairs["v"]) + fetch_m[aed]
    keep = total <= reach_m
    return aed[keep], pairs["j"].astype(np.int64)[keep], total[keep]


@dataclass(frozen=True)
class Times:
    """Seconds from the call to CPR and to an AED per cell (inf: not within the target)."""

    cpr_s: FloatArray
    aed_s: FloatArray
    fetch_m: FloatArray
    """Per AED: metres from its nearest alertable responder (inf: none within reach, or the AED
    does not count at that time)."""

    def covered(self, model: CoverageModel) -> BoolArray:
        return np.asarray((self.cpr_s <= model.target_s) & (self.aed_s <= model.target_s))


def fetch_distances(responders: cKDTree | None, aed_xyz: FloatArray, deployable: BoolArray,
                    reach_m: float) -> FloatArray:
    """Per AED, metres from its nearest alertable responder; inf where it does not count."""
    fetch_m = np.full(len(aed_xyz), np.inf)
    if deployable.any():
        fetch_m[deployable] = nearest_m(responders, aed_xyz[deployable], reach_m)
    return fetch_m


def aed_seconds(cells: Cells, aed_xyz: FloatArray, fetch_m: FloatArray,
                model: CoverageModel) -> FloatArray:
    """Per cell, seconds from the call until the fastest fetcher brings an AED."""
    _aed, cell, metres = aed_trips(cells.tree, aed_xyz, fetch_m, model.reach_m)
    aed_m = np.full(len(cells), np.inf)
    np.minimum.at(aed_m, cell, metres)
    return model.seconds(aed_m)


def evaluate(cells: Cells, aed_xyz: FloatArray, deployable: BoolArray,
             responder_xyz: FloatArray, model: CoverageModel) -> Times:
    """Times for every cell from these AEDs (those `deployable`) and alertable responders."""
    responders = cKDTree(responder_xyz) if len(responder_xyz) else None
    cpr_m = nearest_m(responders, cells.xyz, model.reach_m)
    fetch_m = fetch_distances(responders, aed_xyz, deployable, model.reach_m)
    return Times(model.seconds(cpr_m), aed_seconds(cells, aed_xyz, fetch_m, model), fetch_m)


def aggregate(cells: Cells, values: FloatArray, n_areas: int) -> FloatArray:
    """Sum of `values` (per cell) per area."""
    return np.asarray(np.bincount(cells.area, weights=values, minlength=n_areas), dtype=np.float64)


class CoverageMap:
    """Coverage at one moment over a set of cells, kept current as single AEDs change.

    A change of one AED (readiness, use, hours, position, added, removed) recomputes only the
    cells within reach of where it was and where it is; the per-area sums move by the
    difference. Responders are taken as they were at construction: rebuild for their changes.
    """

    # Beyond this many AEDs changing at once (shops opening at 08:00), one vectorised pass over
    # every AED is faster than applying them one by one.
    BULK = 200

    def __init__(self, cells: Cells, aeds: Sequence[AedEntry], responders: ResponderSites,
                 model: CoverageModel, at: datetime, n_areas: int) -> None:
        self.cells, self.model, self.at, self.n_areas = cells, model, at, n_areas
        responder_xyz = responders.positions_at(at, model)
        self.responders = cKDTree(responder_xyz) if len(responder_xyz) else None
        self.entries: list[AedEntry | None] = list(aeds)
        self.slot_of = {aed.id: slot for slot, aed in enumerate(aeds)}
        xyz = to_xyz(np.array([a.lat for a in aeds]), np.array([a.lon for a in aeds])
                     ).reshape(-1, 3)
        self.index = PointIndex()
        self.index.bulk_load(xyz)
        self.cpr_s = model.seconds(nearest_m(self.responders, cells.xyz, model.reach_m))
        weights = cells.population
        self.area_population = aggregate(cells, weights, n_areas)
        self.area_cpr = aggregate(cells, weights * (self.cpr_s <= model.target_s), n_areas)
        self._all_aeds()

    def _all_aeds(self) -> None:
        """Every AED's contribution from scratch, at `self.at`."""
        slots = self.index.present_slots()
        present = [self.entries[slot] for slot in slots.tolist()]
        self.deployable = np.zeros(len(self.entries), dtype=bool)
        self.deployable[slots] = deployable_mask([a for a in present if a is not None],
                                                 self.at, self.model)
        xyz = self.index.positions(np.arange(len(self.entries)))
        self.fetch_m = fetch_distances(self.responders, xyz, self.deployable, self.model.reach_m)
        self.aed_s = aed_seconds(self.cells, xyz, self.fetch_m, self.model)
        target, weights = self.model.target_s, self.cells.population
        self.covered = np.asarray((self.cpr_s <= target) & (self.aed_s <= target))
        self.area_covered = aggregate(self.cells, weights * self.covered, self.n_areas)
        self.area_aed = aggregate(self.cells, weights * (self.aed_s <= target), self.n_areas)

    @property
    def covered_share(self) -> float:
        total = float(self.area_population.sum())
        return float(self.area_covered.sum()) / total if total else 0.0

    def times(self) -> Times:
        return Times(self.cpr_s, self.aed_s, self.fetch_m)

    def set_aed(self, aed: AedEntry) -> int:
        """Add or replace one AED; returns how many cells were recomputed."""
        xyz = to_xyz(aed.lat, aed.lon)
        slot = self.slot_of.get(aed.id)
        around = [xyz]
        if slot is None:
            slot = self.index.add(xyz)
            self.slot_of[aed.id] = slot
            self.entries.append(aed)
            self.deployable = np.append(self.deployable, False)
            self.fetch_m = np.append(self.fetch_m, np.inf)
        else:
            before = self.index.position(slot).copy()
            if not np.array_equal(before, xyz):
                around.append(before)
                self.index.move(slot, xyz)
            self.entries[slot] = aed
        self.deployable[slot] = deployable_mask([aed], self.at, self.model)[0]
        self.fetch_m[slot] = nearest_m(self.responders, xyz.reshape(1, 3),
                                       self.model.reach_m)[0] if self.deployable[slot] else np.inf
        return self._recompute(around)

    def advance(self, at: datetime) -> int:
        """Move the map to another moment: AEDs whose opening hours (or the rules) now decide
        otherwise are applied. Responders stay as they were: rebuild for them.
        Returns how many AEDs changed."""
        self.at = at
        present = [(slot, aed) for slot, aed in enumerate(self.entries) if aed is not None]
        now = deployable_mask([aed for _slot, aed in present], at, self.model)
        flipped = [aed for (slot, aed), ok in zip(present, now.tolist(), strict=True)
                   if ok != bool(self.deployable[slot])]
        if len(flipped) > self.BULK:
            self._all_aeds()
        else:
            for aed in flipped:
                self.set_aed(aed)
        return len(flipped)

    def remove_aed(self, aed_id: str) -> int:
        """Take an AED out (removed from the registry); returns cells recomputed."""
        slot = self.slot_of.pop(aed_id, None)
        if slot is None:
            return 0
        where = self.index.position(slot).copy()
        self.index.remove(slot)
        self.entries[slot] = None
        self.deployable[slot] = False
        self.fetch_m[slot] = np.inf
        return self._recompute([where])

    def _recompute(self, around: list[FloatArray]) -> int:
        reach = self.model.reach_m
        chord = arc_to_chord(reach) * SLACK
        hits: set[int] = set()
        for centre in around:
            hits.update(self.cells.tree.query_ball_point(centre, chord))
        if not hits:
            return 0
        cells = np.fromiter(hits, dtype=np.int64, count=len(hits))
        best = np.full(len(cells), np.inf)
        for k, cell in enumerate(cells.tolist()):
            slots, metres = self.index.within(self.cells.xyz[cell], reach)
            total = metres + self.fetch_m[slots]
            if len(total):
                best[k] = float(total.min())
        best[best > reach] = np.inf
        self._store(cells, self.model.seconds(best))
        return len(cells)

    def _store(self, cells: IntArray, aed_s: FloatArray) -> None:
        target = self.model.target_s
        pop = self.cells.population[cells]
        areas = self.cells.area[cells]
        was_aed = self.aed_s[cells] <= target
        was_covered = self.covered[cells]
        self.aed_s[cells] = aed_s
        now_aed = aed_s <= target
        now_covered = now_aed & (self.cpr_s[cells] <= target)
        self.covered[cells] = now_covered
        np.add.at(self.area_aed, areas, pop * (now_aed.astype(float) - was_aed))
        np.add.at(self.area_covered, areas, pop * (now_covered.astype(float) - was_covered))
