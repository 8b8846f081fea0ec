"""Coverage properties over random small maps: monotony in the AEDs, incremental updates equal to
a rebuild, and placement advice that says exactly what an AED would add or take away.

Places lie on a grid of 7.3 m steps inside a 1.5 km square, so no distance (nor any sum of two)
falls exactly on the 621 m reach, where rounding could tip a cell either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from alarm_core.geo import to_xyz
from alarm_core.pools import AedEntry, ResponderEntry, ResponderPool
from fleet.coverage.grid import METRES_PER_DEGREE, Cells
from fleet.coverage.model import CoverageMap, CoverageModel, ResponderSites
from fleet.coverage.placement import critical_aeds, propose_sites

ORIGIN = (52.09, 5.12)
STEP_M = 7.3
SIDE = 205  # steps: 1.5 km
MODEL = CoverageModel()
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
WEDNESDAY_14H = datetime(2026, 6, 17, 14, 0, tzinfo=AMSTERDAM)
WEDNESDAY_03H = datetime(2026, 6, 17, 3, 0, tzinfo=AMSTERDAM)
OFFICE_HOURS = "Mo-Fr 08:00-18:00"
PROPERTY = settings(max_examples=100, deadline=None)

Place = tuple[float, float]


def grid_place(steps: tuple[int, int]) -> Place:
    north, east = steps
    return (ORIGIN[0] + north * STEP_M / METRES_PER_DEGREE,
            ORIGIN[1] + east * STEP_M / (METRES_PER_DEGREE * math.cos(math.radians(ORIGIN[0]))))


grid_steps = st.tuples(st.integers(0, SIDE), st.integers(0, SIDE))
places = grid_steps.map(grid_place)
moments = st.sampled_from([WEDNESDAY_14H, WEDNESDAY_03H])


@dataclass(frozen=True)
class Scene:
    cells: Cells
    aeds: list[AedEntry]
    responders: list[ResponderEntry]
    at: datetime

    def sites(self) -> ResponderSites:
        pool = ResponderPool(MODEL.policy)
        pool.load(self.responders)
        return ResponderSites.build(pool, {})

    def map(self, aeds: list[AedEntry] | None = None) -> CoverageMap:
        return CoverageMap(self.cells, self.aeds if aeds is None else aeds, self.sites(), MODEL,
                           self.at, 3)

    def responder_tree(self) -> cKDTree | None:
        positions = self.sites().positions_at(self.at, MODEL)
        return cKDTree(positions) if len(positions) else None


def ready_aed(aid: str, where: Place) -> AedEntry:
    return AedEntry(id=aid, lat=where[0], lon=where[1], readiness="ready", public=True,
                    opening_hours="24/7")


@st.composite
def aed_entries(draw: st.DrawFn, aid: str) -> AedEntry:
    """Mostly AEDs that count; now and then one that is not ready, in use, private or shut."""
    lat, lon = draw(places)
    return AedEntry(id=aid, lat=lat, lon=lon,
                    readiness=draw(st.sampled_from(["ready", "ready", "ready", "not_ready",
                                                    "unverified"])),
                    in_use=draw(st.sampled_from([False, False, False, True])),
                    public=draw(st.sampled_from([True, True, True, False])),
                    opening_hours=draw(st.sampled_from(["24/7", "24/7", OFFICE_HOURS])))


@st.composite
def scenes(draw: st.DrawFn, min_aeds: int = 0) -> Scene:
    """A few dozen cells with 0-50 inhabitants in three areas, some AEDs and responders."""
    spots = draw(st.lists(grid_steps, min_size=1, max_size=40, unique=True))
    lat, lon = np.array([grid_place(s) for s in spots]).T
    cells = Cells(lat, lon,
                  np.array(draw(st.lists(st.integers(0, 50), min_size=len(spots),
                                         max_size=len(spots))), dtype=np.float64),
                  np.array(draw(st.lists(st.integers(0, 2), min_size=len(spots),
                                         max_size=len(spots))), dtype=np.int64),
                  cell_m=7.3)
    n_aeds = draw(st.integers(min_aeds, 8))
    aeds = [draw(aed_entries(f"aed-{i}")) for i in range(n_aeds)]
    responders = [ResponderEntry(id=f"r-{i}", lat=p[0], lon=p[1],
                                 date_of_birth=date(1985, 3, 1),
                                 certificate_date=date(2026, 1, 15))
                  for i, p in enumerate(draw(st.lists(places, min_size=0, max_size=10)))]
    return Scene(cells, aeds, responders, draw(moments))


def covered_population(coverage: CoverageMap) -> float:
    return float((coverage.cells.population * coverage.covered).sum())


def assert_same_map(changed: CoverageMap, fresh: CoverageMap) -> None:
    assert changed.covered.tolist() == fresh.covered.tolist()
    assert np.array_equal(np.isinf(changed.aed_s), np.isinf(fresh.aed_s))
    assert np.allclose(changed.aed_s, fresh.aed_s, rtol=0, atol=1e-6)
    for name in ("area_population", "area_covered", "area_cpr", "area_aed"):
        assert np.allclose(getattr(changed, name), getattr(fresh, name), rtol=0, atol=1e-6), name


# -- monotony -------------------------------------------------------------------------------------

@PROPERTY
@given(scenes(), places)
def test_adding_a_ready_24_7_aed_never_lowers_coverage(scene: Scene, where: Place) -> None:
    before = scene.map()
    after = scene.map([*scene.aeds, ready_aed("new", where)])

    assert not (before.covered & ~after.covered).any()
    assert (after.aed_s <= before.aed_s).all()
    assert np.array_equal(after.cpr_s, before.cpr_s)
    assert covered_population(after) >= covered_population(before)
    assert (after.area_covered >= before.area_covered - 1e-9).all()


@PROPERTY
@given(scenes(min_aeds=1), st.data())
def test_removing_an_aed_never_raises_coverage(scene: Scene, data: st.DataObject) -> None:
    gone = data.draw(st.sampled_from([a.id for a in scene.aeds]))
    before = scene.map()
    after = scene.map([a for a in scene.aeds if a.id != gone])

    assert not (after.covered & ~before.covered).any()
    assert (after.aed_s >= before.aed_s).all()
    assert covered_population(after) <= covered_population(before)
    assert (after.area_covered <= before.area_covered + 1e-9).all()


USELESS: dict[str, dict[str, Any]] = {
    "not_ready": {"readiness": "not_ready"}, "unverified": {"readiness": "unverified"},
    "in_use": {"in_use": True}, "private": {"public": False},
    "closed_at_night": {"opening_hours": OFFICE_HOURS}}


@PROPERTY
@given(scenes(), places, st.sampled_from(sorted(USELESS)))
def test_an_aed_that_does_not_count_at_that_time_changes_no_cells_time(
        scene: Scene, where: Place, why: str) -> None:
    useless = replace(ready_aed("useless", where), **USELESS[why])
    if why == "closed_at_night":
        scene = replace(scene, at=WEDNESDAY_03H)

    without = scene.map()
    with_it = scene.map([*scene.aeds, useless])

    assert np.array_equal(with_it.aed_s, without.aed_s)
    assert np.array_equal(with_it.covered, without.covered)
    assert np.array_equal(with_it.area_covered, without.area_covered)


# -- incremental updates --------------------------------------------------------------------------

@st.composite
def changes(draw: st.DrawFn) -> AedEntry | str:
    """An AED to set (add, move or change one of a few ids), or the id of one to remove."""
    aid = draw(st.sampled_from([f"aed-{i}" for i in range(8)]))
    if draw(st.integers(0, 3)) == 0:
        return aid
    return draw(aed_entries(aid))


def apply(live: CoverageMap, registry: dict[str, AedEntry], change: AedEntry | str) -> None:
    """The change on the live map, and on the registry a fresh map is built from."""
    if isinstance(change, str):
        live.remove_aed(change)
        registry.pop(change, None)
    else:
        recomputed = live.set_aed(change)
        assert 0 <= recomputed <= len(live.cells)
        registry[change.id] = change


@PROPERTY
@given(scenes(), st.lists(changes(), min_size=1, max_size=12))
def test_incremental_aed_changes_equal_a_full_rebuild(
        scene: Scene, steps: list[AedEntry | str]) -> None:
    live = scene.map()
    registry = {a.id: a for a in scene.aeds}

    for change in steps:
        apply(live, registry, change)

    assert_same_map(live, scene.map(list(registry.values())))


@PROPERTY
@given(scenes(), st.lists(changes(), max_size=6), moments, st.sampled_from([0, 200]))
def test_advancing_the_clock_equals_a_full_rebuild_at_that_moment(
        scene: Scene, steps: list[AedEntry | str], later: datetime, bulk: int) -> None:
    live = scene.map()
    live.BULK = bulk  # 0: every change of hours in one vectorised pass; 200: one by one
    registry = {a.id: a for a in scene.aeds}
    for change in steps:
        apply(live, registry, change)

    live.advance(later)

    assert_same_map(live, replace(scene, at=later).map(list(registry.values())))


# -- placement advice -----------------------------------------------------------------------------

def proposals_for(scene: Scene, k: int) -> tuple[CoverageMap, list[AedEntry], list[float]]:
    base = scene.map()
    counted = np.ones(len(scene.cells), dtype=bool)
    proposals = propose_sites(scene.cells, base.times(), counted, scene.responder_tree(), MODEL,
                              k)
    assert [p.rank for p in proposals] == list(range(1, len(proposals) + 1))
    sites = [ready_aed(f"proposed-{p.rank}", (p.lat, p.lon)) for p in proposals]
    return base, sites, [p.gain for p in proposals]


@PROPERTY
@given(scenes())
def test_proposed_gains_do_not_grow_with_rank_and_each_is_what_an_aed_there_adds(
        scene: Scene) -> None:
    base, sites, gains = proposals_for(scene, k=4)

    assert all(g > 0 for g in gains)
    assert all(a >= b - 1e-9 for a, b in zip(gains, gains[1:], strict=False))
    start = covered_population(base)
    for taken in range(1, len(sites) + 1):
        with_sites = scene.map([*scene.aeds, *sites[:taken]])
        assert covered_population(with_sites) - start == pytest.approx(sum(gains[:taken]),
                                                                       abs=1e-6)


@PROPERTY
@given(scenes())
def test_the_first_proposal_is_the_best_single_cell_for_a_new_aed(scene: Scene) -> None:
    base, sites, gains = proposals_for(scene, k=1)
    start = covered_population(base)

    best = max((covered_population(scene.map([*scene.aeds, ready_aed("try", (lat, lon))]))
                - start for lat, lon in zip(scene.cells.lat.tolist(), scene.cells.lon.tolist(),
                                            strict=True)), default=0.0)

    assert (gains[0] if gains else 0.0) == pytest.approx(best, abs=1e-6)


@PROPERTY
@given(scenes())
def test_when_fewer_sites_than_asked_are_proposed_no_cell_would_add_anyone(
        scene: Scene) -> None:
    _base, sites, _gains = proposals_for(scene, k=40)
    if len(sites) == 40:
        return
    live = scene.map([*scene.aeds, *sites])
    reached = covered_population(live)

    for lat, lon in zip(scene.cells.lat.tolist(), scene.cells.lon.tolist(), strict=True):
        live.set_aed(ready_aed("try", (lat, lon)))
        assert covered_population(live) == pytest.approx(reached, abs=1e-6)


@PROPERTY
@given(scenes())
def test_a_critical_aeds_loss_is_what_removing_it_takes_out_of_the_zone(scene: Scene) -> None:
    base = scene.map()
    ids = [a.id for a in scene.aeds]
    xyz = to_xyz(np.array([a.lat for a in scene.aeds]),
                 np.array([a.lon for a in scene.aeds])).reshape(-1, 3)
    latlon = np.array([[a.lat, a.lon] for a in scene.aeds]).reshape(-1, 2)

    critical = critical_aeds(scene.cells, base.times(), np.ones(len(scene.cells), dtype=bool),
                             ids, xyz, latlon, MODEL, limit=len(ids))

    losses = [c.loss for c in critical]
    assert losses == sorted(losses, reverse=True)
    assert all(loss > 0 for loss in losses)
    listed = {c.aed_id: c.loss for c in critical}
    start = covered_population(base)
    for aed in scene.aeds:
        without = scene.map([a for a in scene.aeds if a.id != aed.id])
        drop = start - covered_population(without)
        assert listed.get(aed.id, 0.0) == pytest.approx(drop, abs=1e-6), aed.id
    for c in critical:
        where = next(a for a in scene.aeds if a.id == c.aed_id)
        assert (c.lat, c.lon) == (where.lat, where.lon)


@PROPERTY
@given(scenes(min_aeds=1), st.integers(1, 3))
def test_critical_aeds_are_limited_to_the_ones_that_hurt_most(scene: Scene, limit: int) -> None:
    base = scene.map()
    ids = [a.id for a in scene.aeds]
    xyz = to_xyz(np.array([a.lat for a in scene.aeds]),
                 np.array([a.lon for a in scene.aeds])).reshape(-1, 3)
    latlon = np.array([[a.lat, a.lon] for a in scene.aeds]).reshape(-1, 2)
    counted = np.ones(len(scene.cells), dtype=bool)

    everyone = critical_aeds(scene.cells, base.times(), counted, ids, xyz, latlon, MODEL,
                             limit=len(ids))
    few = critical_aeds(scene.cells, base.times(), counted, ids, xyz, latlon, MODEL, limit)

    assert [c.loss for c in few] == [c.loss for c in everyone[:limit]]
