"""The 6-minute zone on small hand-made maps, where every time and every sum is known exactly.

Most maps are a line of cells along the meridian through `ORIGIN`: a place `n` metres north of it
is exactly `n` great-circle metres from it, so a travel time reads straight off the sketch
(`60 s alarm + 30 s turnout + metres / 2.3 m/s`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from alarm_core.geo import great_circle_m, to_xyz
from alarm_core.policy import AedAccessPolicy, DispatchPolicy
from alarm_core.pools import AedEntry, ResponderEntry, ResponderPool
from fleet.coverage.grid import METRES_PER_DEGREE, Cells, lay_cells
from fleet.coverage.model import CoverageMap, CoverageModel, ResponderSites, evaluate
from fleet.coverage.service import (
    CoverageInputs,
    UnknownMunicipality,
    coverage_model,
    day_hours,
    find_municipality,
)
from fleet.population import load_pc4
from fleet.settings import CoverageSettings, Settings

ORIGIN = (52.09, 5.12)
MODEL = CoverageModel()
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# Wednesday 17 June 2026, no Dutch public holiday.
WEDNESDAY_14H = datetime(2026, 6, 17, 14, 0, tzinfo=AMSTERDAM)
WEDNESDAY_03H = datetime(2026, 6, 17, 3, 0, tzinfo=AMSTERDAM)
WEDNESDAY_20H = datetime(2026, 6, 17, 20, 0, tzinfo=AMSTERDAM)
SATURDAY_14H = datetime(2026, 6, 20, 14, 0, tzinfo=AMSTERDAM)
OFFICE_HOURS = "Mo-Fr 08:00-18:00"


def place(north_m: float) -> tuple[float, float]:
    """The point `north_m` metres north of `ORIGIN` (south when negative)."""
    return ORIGIN[0] + north_m / METRES_PER_DEGREE, ORIGIN[1]


def seconds(metres: float) -> float:
    """From the 112 call to arriving after a trip of `metres` (the default model)."""
    return 60.0 + 30.0 + metres / 2.3


def line(*north_m: float, population: Sequence[float] | None = None,
         area: Sequence[int] | None = None) -> Cells:
    """Cells at these distances north of `ORIGIN`, one inhabitant each unless told."""
    lat = np.array([place(m)[0] for m in north_m])
    return Cells(lat, np.full(len(lat), ORIGIN[1]),
                 np.asarray(population if population is not None else np.ones(len(lat)),
                            dtype=np.float64),
                 np.asarray(area if area is not None else np.zeros(len(lat)), dtype=np.int64),
                 cell_m=50.0)


def aed(aid: str, north_m: float, **changes: Any) -> AedEntry:
    """A ready public AED, open 24/7, `north_m` north of `ORIGIN`."""
    lat, lon = place(north_m)
    return replace(AedEntry(id=aid, lat=lat, lon=lon, readiness="ready", public=True,
                            opening_hours="24/7"), **changes)


def responder(rid: str, north_m: float, **changes: Any) -> ResponderEntry:
    """An adult with a current certificate, at home `north_m` north of `ORIGIN`."""
    lat, lon = place(north_m)
    return replace(ResponderEntry(id=rid, lat=lat, lon=lon, date_of_birth=date(1985, 3, 1),
                                  certificate_date=date(2026, 1, 15)), **changes)


def sites(responders: list[ResponderEntry], model: CoverageModel = MODEL,
          work: dict[str, tuple[float, float]] | None = None) -> ResponderSites:
    pool = ResponderPool(model.policy)
    pool.load(responders)
    return ResponderSites.build(pool, work or {})


def coverage(cells: Cells, aeds: list[AedEntry], responders: list[ResponderEntry],
             at: datetime = WEDNESDAY_14H, model: CoverageModel = MODEL, n_areas: int = 1,
             work: dict[str, tuple[float, float]] | None = None) -> CoverageMap:
    return CoverageMap(cells, aeds, sites(responders, model, work), model, at, n_areas)


# -- times ----------------------------------------------------------------------------------------

def test_a_place_n_metres_north_on_the_sketch_is_n_great_circle_metres_away() -> None:
    assert great_circle_m(*ORIGIN, *place(300)) == pytest.approx(300.0, abs=1e-6)
    assert great_circle_m(*place(-250), *place(400)) == pytest.approx(650.0, abs=1e-6)


def test_reach_is_what_a_responder_covers_in_the_time_left_after_alarm_and_turnout() -> None:
    assert MODEL.reach_m == pytest.approx((360 - 60 - 30) * 2.3)
    assert MODEL.reach_m == pytest.approx(621.0)


def test_a_cell_300_m_from_a_responder_with_an_aed_at_hand_is_covered_in_exact_seconds() -> None:
    cells = line(300)

    result = coverage(cells, [aed("a", 0)], [responder("r", 0)])

    assert result.cpr_s[0] == pytest.approx(seconds(300), abs=1e-6)
    assert result.aed_s[0] == pytest.approx(seconds(300), abs=1e-6)
    assert seconds(300) == pytest.approx(220.434782608, abs=1e-6)
    assert result.fetch_m[0] == pytest.approx(0.0, abs=1e-6)
    assert result.covered.tolist() == [True]


def test_cpr_reaches_620_m_but_not_622_m() -> None:
    cells = line(620, 622)

    result = coverage(cells, [], [responder("r", 0)])

    assert result.cpr_s[0] == pytest.approx(seconds(620), abs=1e-6)
    assert result.cpr_s[0] <= MODEL.target_s
    assert np.isinf(result.cpr_s[1])
    assert np.isinf(result.aed_s).all()
    assert result.covered.tolist() == [False, False]


def test_an_aed_brings_help_to_620_m_but_not_622_m_from_the_responder_beside_it() -> None:
    cells = line(620, 622)

    result = coverage(cells, [aed("a", 0)], [responder("r", 0)])

    assert result.aed_s[0] == pytest.approx(seconds(620), abs=1e-6)
    assert np.isinf(result.aed_s[1])
    assert result.covered.tolist() == [True, False]


def test_time_to_an_aed_runs_from_the_responder_via_the_aed_to_the_victim() -> None:
    # The victim's neighbour starts CPR at once; the AED 400 m south of the victim is fetched
    # by the responder 200 m beyond it: 200 + 400 = 600 m, inside the 621 m reach.
    cells = line(400)

    result = coverage(cells, [aed("a", 0)], [responder("fetcher", -200), responder("cpr", 400)])

    assert result.cpr_s[0] == pytest.approx(seconds(0), abs=1e-6)
    assert result.fetch_m[0] == pytest.approx(200.0, abs=1e-6)
    assert result.aed_s[0] == pytest.approx(seconds(600), abs=1e-6)
    assert result.covered.tolist() == [True]


def test_an_aed_fetched_from_250_m_and_carried_400_m_arrives_too_late() -> None:
    cells = line(400)

    result = coverage(cells, [aed("a", 0)], [responder("fetcher", -250), responder("cpr", 400)])

    assert result.cpr_s[0] == pytest.approx(seconds(0), abs=1e-6)
    assert result.fetch_m[0] == pytest.approx(250.0, abs=1e-6)
    assert np.isinf(result.aed_s[0])
    assert result.covered.tolist() == [False]


def test_the_nearest_aed_is_not_always_the_fastest_one() -> None:
    # AED "near" is 100 m from the victim but its nearest responder is 400 m from it (a 500 m
    # trip); AED "far" is 300 m away with a responder beside it (a 300 m trip).
    cells = line(0)
    aeds = [aed("near", 100), aed("far", -300)]
    responders = [responder("by-near", 600), responder("by-far", -300)]

    result = coverage(cells, aeds, responders)

    assert result.fetch_m.tolist() == pytest.approx([400.0, 0.0], abs=1e-6)
    assert result.aed_s[0] == pytest.approx(seconds(300), abs=1e-6)
    assert result.cpr_s[0] == pytest.approx(seconds(300), abs=1e-6)


def test_a_map_without_responders_covers_nobody_whatever_the_aeds() -> None:
    cells = line(0, 100)

    result = coverage(cells, [aed("a", 0)], [])

    assert np.isinf(result.cpr_s).all()
    assert np.isinf(result.aed_s).all()
    assert np.isinf(result.fetch_m).all()
    assert result.covered_share == 0.0


# -- which AEDs count -----------------------------------------------------------------------------

@pytest.mark.parametrize("change", [
    pytest.param({"readiness": "not_ready"}, id="not_ready"),
    pytest.param({"readiness": "unverified"}, id="unverified"),
    pytest.param({"readiness": "unknown-state"}, id="unknown-state"),
    pytest.param({"in_use": True}, id="in_use"),
    pytest.param({"public": False}, id="private"),
    pytest.param({"opening_hours": None}, id="hours-unknown"),
    pytest.param({"opening_hours": "whenever the caretaker is in"}, id="hours-unparseable"),
])
def test_an_aed_that_may_not_be_sent_never_brings_help(change: dict[str, Any]) -> None:
    cells = line(0, 300)

    result = coverage(cells, [aed("a", 0, **change)], [responder("r", 0)])

    assert result.deployable.tolist() == [False]
    assert np.isinf(result.fetch_m).all()
    assert np.isinf(result.aed_s).all()
    assert result.cpr_s.tolist() == pytest.approx([seconds(0), seconds(300)], abs=1e-6)
    assert result.covered.tolist() == [False, False]


def test_an_unverified_aed_never_counts_even_where_dispatch_may_send_it() -> None:
    model = CoverageModel(policy=DispatchPolicy(aed_access=AedAccessPolicy.OPEN_NOW,
                                                allow_unverified_aeds=True))
    cells = line(0)

    result = coverage(cells, [aed("a", 0, readiness="unverified")], [responder("r", 0)],
                      model=model)

    assert model.policy.allow_unverified_aeds is False
    assert result.covered.tolist() == [False]


@pytest.mark.parametrize(("at", "counts"), [
    pytest.param(WEDNESDAY_14H, True, id="weekday-14h"),
    pytest.param(WEDNESDAY_14H.astimezone(UTC), True, id="weekday-14h-given-in-utc"),
    pytest.param(WEDNESDAY_03H, False, id="weekday-03h"),
    pytest.param(SATURDAY_14H, False, id="saturday-14h"),
    pytest.param(datetime(2026, 6, 17, 17, 59, tzinfo=AMSTERDAM), True, id="weekday-17h59"),
    pytest.param(datetime(2026, 6, 17, 18, 0, tzinfo=AMSTERDAM), False, id="weekday-18h00"),
])
def test_an_aed_with_office_hours_counts_only_while_open(at: datetime, counts: bool) -> None:
    cells = line(100)

    result = coverage(cells, [aed("a", 0, opening_hours=OFFICE_HOURS)], [responder("r", 0)],
                      at=at)

    assert result.deployable.tolist() == [counts]
    assert result.covered.tolist() == [counts]
    if counts:
        assert result.aed_s[0] == pytest.approx(seconds(100), abs=1e-6)


def test_with_the_always_open_rule_only_24_7_aeds_count_even_while_a_shop_is_open() -> None:
    model = CoverageModel(policy=DispatchPolicy(aed_access=AedAccessPolicy.ALWAYS_OPEN))
    # Victims 100 m north of a shop's AED and 100 m south of a 24/7 one.
    cells = line(100, 900)
    aeds = [aed("shop", 0, opening_hours=OFFICE_HOURS), aed("street", 1000)]
    responders = [responder("by-shop", 0), responder("by-street", 1000)]

    result = coverage(cells, aeds, responders, at=WEDNESDAY_14H, model=model)

    assert result.deployable.tolist() == [False, True]
    assert np.isinf(result.aed_s[0])
    assert result.aed_s[1] == pytest.approx(seconds(100), abs=1e-6)
    assert result.covered.tolist() == [False, True]


def test_an_aed_closed_on_public_holidays_does_not_count_on_kings_day() -> None:
    # Monday 27 April 2026 is King's Day, a Dutch public holiday; Monday 4 May is not.
    hours = OFFICE_HOURS + "; PH off"
    cells = line(100)
    kings_day = datetime(2026, 4, 27, 14, 0, tzinfo=AMSTERDAM)
    ordinary_monday = datetime(2026, 5, 4, 14, 0, tzinfo=AMSTERDAM)

    holiday = coverage(cells, [aed("a", 0, opening_hours=hours)], [responder("r", 0)],
                       at=kings_day)
    monday = coverage(cells, [aed("a", 0, opening_hours=hours)], [responder("r", 0)],
                      at=ordinary_monday)

    assert holiday.covered.tolist() == [False]
    assert monday.covered.tolist() == [True]


# -- which responders count -----------------------------------------------------------------------

@pytest.mark.parametrize("change", [
    pytest.param({"quiet_from": time(13, 0), "quiet_until": time(15, 0)}, id="quiet-hours"),
    pytest.param({"certificate_date": date(2025, 6, 16)}, id="certificate-expired"),
    pytest.param({"certificate_date": None}, id="no-certificate"),
    pytest.param({"date_of_birth": date(2008, 6, 18)}, id="under-18"),
    pytest.param({"available": False}, id="unavailable"),
    pytest.param({"active": False}, id="inactive"),
    pytest.param({"lat": None, "lon": None}, id="no-address"),
])
def test_a_responder_who_may_not_be_alerted_brings_neither_cpr_nor_an_aed(
        change: dict[str, Any]) -> None:
    cells = line(0, 300)

    result = coverage(cells, [aed("a", 0)], [responder("r", 0, **change)])

    assert np.isinf(result.cpr_s).all()
    assert np.isinf(result.fetch_m).all()
    assert np.isinf(result.aed_s).all()
    assert result.covered.tolist() == [False, False]


def test_a_responder_who_turns_18_today_or_whose_certificate_runs_out_today_counts() -> None:
    cells = line(0, 300)
    responders = [responder("adult", 0, date_of_birth=date(2008, 6, 17)),
                  responder("certified", 300, certificate_date=date(2025, 6, 18))]

    result = coverage(cells, [], responders)

    assert result.cpr_s.tolist() == pytest.approx([seconds(0), seconds(0)], abs=1e-6)


def test_a_responder_in_quiet_hours_at_night_is_counted_again_in_the_afternoon() -> None:
    cells = line(0)
    quiet = [responder("r", 0, quiet_from=time(23, 0), quiet_until=time(7, 0))]

    night = coverage(cells, [aed("a", 0)], quiet, at=WEDNESDAY_03H)
    afternoon = coverage(cells, [aed("a", 0)], quiet, at=WEDNESDAY_14H)

    assert night.covered.tolist() == [False]
    assert afternoon.covered.tolist() == [True]


@pytest.mark.parametrize(("at", "where"), [
    pytest.param(WEDNESDAY_14H, "work", id="weekday-14h"),
    pytest.param(datetime(2026, 6, 17, 9, 0, tzinfo=AMSTERDAM), "work", id="weekday-09h"),
    pytest.param(datetime(2026, 6, 17, 8, 59, tzinfo=AMSTERDAM), "home", id="weekday-08h59"),
    pytest.param(datetime(2026, 6, 17, 17, 0, tzinfo=AMSTERDAM), "home", id="weekday-17h"),
    pytest.param(WEDNESDAY_20H, "home", id="weekday-20h"),
    pytest.param(SATURDAY_14H, "home", id="saturday-14h"),
])
def test_responders_are_at_work_in_work_hours_and_at_home_otherwise(at: datetime,
                                                                    where: str) -> None:
    # Home at 0, office 2 km north; victims at home and at the office.
    cells = line(0, 2000)
    result = coverage(cells, [], [responder("r", 0)], at=at, work={"r": place(2000)})

    expected = [seconds(0), np.inf] if where == "home" else [np.inf, seconds(0)]
    assert result.cpr_s.tolist() == pytest.approx(expected, abs=1e-6)


def test_a_responder_without_a_work_address_stays_at_home_during_work_hours() -> None:
    cells = line(0, 2000)

    result = coverage(cells, [], [responder("home-only", 0), responder("worker", 5000)],
                      at=WEDNESDAY_14H, work={"worker": place(2000)})

    assert result.cpr_s.tolist() == pytest.approx([seconds(0), seconds(0)], abs=1e-6)


# -- sums per area --------------------------------------------------------------------------------

def test_per_area_sums_and_the_covered_share_match_a_hand_count() -> None:
    # Responder r1 with an AED at 0, responder r2 (no AED) at 1300 m.
    #   cell 100 m, area 0, 10 people: CPR and AED in time          -> covered
    #   cell 800 m, area 0, 20 people: CPR from r2 (500 m), AED 800 m -> not covered
    #   cell 1300 m, area 1, 30 people: CPR at once, AED 1300 m     -> not covered
    #   cell 3000 m, area 2, 40 people: nobody near                 -> not covered
    #   area 3 has no cells.
    cells = line(100, 800, 1300, 3000, population=[10, 20, 30, 40], area=[0, 0, 1, 2])

    result = coverage(cells, [aed("a", 0)], [responder("r1", 0), responder("r2", 1300)],
                      n_areas=4)

    assert result.covered.tolist() == [True, False, False, False]
    assert result.area_population.tolist() == [30.0, 30.0, 40.0, 0.0]
    assert result.area_covered.tolist() == [10.0, 0.0, 0.0, 0.0]
    assert result.area_cpr.tolist() == [30.0, 30.0, 0.0, 0.0]
    assert result.area_aed.tolist() == [10.0, 0.0, 0.0, 0.0]
    assert result.covered_share == pytest.approx(0.1)


def test_evaluate_agrees_with_the_map_it_is_built_on() -> None:
    cells = line(100, 800, 1300, 3000)
    aeds = [aed("a", 0), aed("b", 1200, readiness="not_ready")]
    people = sites([responder("r1", 0), responder("r2", 1300)])
    xyz = to_xyz(np.array([a.lat for a in aeds]), np.array([a.lon for a in aeds]))
    times = evaluate(cells, xyz, np.array([True, False]), people.positions_at(WEDNESDAY_14H, MODEL),
                     MODEL)
    whole = CoverageMap(cells, aeds, people, MODEL, WEDNESDAY_14H, 1)

    assert np.array_equal(times.cpr_s, whole.cpr_s)
    assert np.array_equal(times.aed_s, whole.aed_s)
    assert np.array_equal(times.covered(MODEL), whole.covered)


# -- incremental changes --------------------------------------------------------------------------

# Cells every 50 m from 1 km south to 3 km north; AEDs sit on odd multiples of 25 m, so no cell
# is ever exactly at the edge of an AED's reach.
STREET = tuple(float(m) for m in range(-1000, 3001, 50))


def street_cells() -> Cells:
    return line(*STREET, population=[1 + (i % 7) for i in range(len(STREET))],
                area=[0 if m < 1000 else 1 for m in STREET])


STREET_RESPONDERS = [responder("r1", -475), responder("r2", 525), responder("r3", 1525),
                     responder("r4", 2475)]


def assert_same_map(changed: CoverageMap, fresh: CoverageMap) -> None:
    assert changed.covered.tolist() == fresh.covered.tolist()
    assert np.allclose(changed.aed_s, fresh.aed_s, rtol=0, atol=1e-6)
    assert np.array_equal(np.isinf(changed.aed_s), np.isinf(fresh.aed_s))
    assert np.array_equal(changed.cpr_s, fresh.cpr_s)
    for name in ("area_population", "area_covered", "area_cpr", "area_aed"):
        assert np.allclose(getattr(changed, name), getattr(fresh, name), rtol=0, atol=1e-9), name
    assert changed.covered_share == pytest.approx(fresh.covered_share)


def test_after_each_aed_change_the_map_is_what_a_fresh_build_would_be() -> None:
    cells = street_cells()
    registry = {a.id: a for a in (aed("a", -475), aed("b", 525), aed("c", 1525))}
    live = coverage(cells, list(registry.values()), STREET_RESPONDERS, n_areas=2)
    at_start = live.covered.copy()
    changes: list[AedEntry | str] = [
        aed("b", 2425),  # moved 1.9 km north
        aed("d", 2475),  # new
        "c",  # removed
        aed("a", -475, readiness="not_ready"),
        aed("a", -475, readiness="ready"),  # ready again
        aed("e", 525, opening_hours=OFFICE_HOURS),  # new, open at 14:00
        aed("e", 525, opening_hours=OFFICE_HOURS, in_use=True),
    ]

    for change in changes:
        if isinstance(change, str):
            live.remove_aed(change)
            del registry[change]
        else:
            live.set_aed(change)
            registry[change.id] = change
        assert_same_map(live, coverage(cells, list(registry.values()), STREET_RESPONDERS,
                                       n_areas=2))

    assert sorted(registry) == ["a", "b", "d", "e"]
    assert live.covered.tolist() != at_start.tolist()


def test_a_removed_aed_that_comes_back_is_counted_once_again() -> None:
    cells = street_cells()
    live = coverage(cells, [aed("a", 525)], STREET_RESPONDERS, n_areas=2)

    live.remove_aed("a")
    assert not live.covered.any()
    live.set_aed(aed("a", 1525))

    assert_same_map(live, coverage(cells, [aed("a", 1525)], STREET_RESPONDERS, n_areas=2))


def test_a_map_built_without_aeds_takes_new_ones() -> None:
    cells = street_cells()
    live = coverage(cells, [], STREET_RESPONDERS, n_areas=2)

    live.set_aed(aed("a", 525))
    live.set_aed(aed("b", 2475))

    assert_same_map(live, coverage(cells, [aed("a", 525), aed("b", 2475)], STREET_RESPONDERS,
                                   n_areas=2))


def test_set_aed_recomputes_only_the_cells_within_reach_of_where_it_was_and_is() -> None:
    cells = street_cells()
    live = coverage(cells, [aed("a", 525), aed("b", -475)], STREET_RESPONDERS, n_areas=2)
    before = live.aed_s.copy()

    recomputed = live.set_aed(aed("a", 1525))

    positions = np.array(STREET)
    near_old = np.abs(positions - 525) <= MODEL.reach_m
    near_new = np.abs(positions - 1525) <= MODEL.reach_m
    # -50..1100 around 525 and 950..2100 around 1525: 24 cells each, 4 of them shared.
    assert int(near_old.sum()) == 24 and int(near_new.sum()) == 24
    assert recomputed == 44
    assert recomputed == int((near_old | near_new).sum())
    changed = ~np.isclose(before, live.aed_s, rtol=0, atol=1e-9) & ~(
        np.isinf(before) & np.isinf(live.aed_s))
    assert changed.any()
    assert not (changed & ~(near_old | near_new)).any()


def test_readiness_change_in_place_recomputes_the_cells_around_the_aed_once() -> None:
    cells = street_cells()
    live = coverage(cells, [aed("a", 525)], STREET_RESPONDERS, n_areas=2)

    recomputed = live.set_aed(aed("a", 525, readiness="not_ready"))

    assert recomputed == int((np.abs(np.array(STREET) - 525) <= MODEL.reach_m).sum())
    assert np.isinf(live.aed_s).all()
    assert live.area_aed.tolist() == [0.0, 0.0]
    assert live.area_covered.tolist() == [0.0, 0.0]


def test_an_aed_far_from_every_cell_recomputes_nothing_and_removing_an_unknown_id_neither(
        ) -> None:
    cells = street_cells()
    live = coverage(cells, [aed("a", 525)], STREET_RESPONDERS, n_areas=2)

    assert live.set_aed(aed("far", 10_000)) == 0
    assert live.remove_aed("no-such-aed") == 0
    assert live.remove_aed("far") == 0
    assert_same_map(live, coverage(cells, [aed("a", 525)], STREET_RESPONDERS, n_areas=2))


def test_inputs_with_changed_aeds_keep_positions_in_step_and_leave_the_old_inputs_alone(
        ) -> None:
    before = CoverageInputs(load_pc4(), [aed("a", 0), aed("b", 100), aed("c", 200)],
                            sites([]), MODEL, 150.0)

    after = before.with_aeds([aed("b", 900, readiness="not_ready"), aed("d", 300)],
                             removed={"c"})

    assert [(a.id, a.readiness) for a in after.aeds] == [
        ("a", "ready"), ("b", "not_ready"), ("d", "ready")]
    expected = to_xyz(np.array([place(m)[0] for m in (0, 900, 300)]), np.full(3, ORIGIN[1]))
    assert np.allclose(after.aed_xyz, expected, rtol=0, atol=1e-6)
    assert [a.id for a in before.aeds] == ["a", "b", "c"]
    assert np.allclose(before.aed_xyz[1], to_xyz(*place(100)), rtol=0, atol=1e-6)
    assert after.responders is before.responders and after.cell_m == before.cell_m


def test_the_model_takes_travel_from_the_dispatch_policy_and_the_zone_from_the_settings(
        ) -> None:
    settings = Settings(dispatch=DispatchPolicy(speed_mps=2.0, turnout_s=20.0),
                        coverage=CoverageSettings(target_s=300.0, alarm_delay_s=40.0,
                                                  aed_access=AedAccessPolicy.ALWAYS_OPEN))

    model = coverage_model(settings)

    assert model.reach_m == pytest.approx((300 - 40 - 20) * 2.0)
    assert model.seconds(np.array([100.0])).tolist() == pytest.approx([40 + 20 + 50])
    assert model.policy.aed_access is AedAccessPolicy.ALWAYS_OPEN
    assert model.tz_name == "Europe/Amsterdam"


def test_advancing_the_clock_opens_and_closes_shop_aeds_as_a_fresh_build_would() -> None:
    cells = street_cells()
    aeds = [aed("street", -475), aed("shop", 525, opening_hours=OFFICE_HOURS),
            aed("office", 1525, opening_hours="Mo-Fr 09:00-17:00")]
    live = coverage(cells, aeds, STREET_RESPONDERS, at=WEDNESDAY_03H, n_areas=2)

    assert live.advance(WEDNESDAY_14H) == 2
    assert live.at == WEDNESDAY_14H
    assert live.deployable.tolist() == [True, True, True]
    assert_same_map(live, coverage(cells, aeds, STREET_RESPONDERS, at=WEDNESDAY_14H, n_areas=2))

    assert live.advance(datetime(2026, 6, 17, 17, 30, tzinfo=AMSTERDAM)) == 1
    assert live.deployable.tolist() == [True, True, False]

    assert live.advance(WEDNESDAY_20H) == 1
    assert live.advance(WEDNESDAY_20H) == 0
    assert_same_map(live, coverage(cells, aeds, STREET_RESPONDERS, at=WEDNESDAY_20H, n_areas=2))


def test_advancing_the_clock_over_hundreds_of_shops_opening_at_once_equals_a_fresh_build(
        ) -> None:
    cells = street_cells()
    shops = [aed(f"shop-{i}", -990 + 13.0 * i, opening_hours=OFFICE_HOURS) for i in range(300)]
    aeds = [aed("street", -475), *shops]
    live = coverage(cells, aeds, STREET_RESPONDERS, at=WEDNESDAY_03H, n_areas=2)
    live.remove_aed("shop-7")
    live.set_aed(aed("shop-8", 2990, opening_hours=OFFICE_HOURS))
    now_there = [a for a in aeds if a.id != "shop-7"]
    now_there[now_there.index(shops[8])] = aed("shop-8", 2990, opening_hours=OFFICE_HOURS)

    assert live.advance(WEDNESDAY_14H) == 299
    assert_same_map(live, coverage(cells, now_there, STREET_RESPONDERS, at=WEDNESDAY_14H,
                                   n_areas=2))
    assert live.deployable.sum() == 300

    assert live.advance(WEDNESDAY_20H) == 299
    assert_same_map(live, coverage(cells, now_there, STREET_RESPONDERS, at=WEDNESDAY_20H,
                                   n_areas=2))
    # Changes after the bulk pass still land on the right slots.
    live.set_aed(aed("shop-9", 1000))
    live.remove_aed("street")
    now_there = [a for a in now_there if a.id not in ("shop-9", "street")] + [aed("shop-9", 1000)]
    assert_same_map(live, coverage(cells, now_there, STREET_RESPONDERS, at=WEDNESDAY_20H,
                                   n_areas=2))


# -- the day, municipalities and the grid ---------------------------------------------------------

@pytest.mark.parametrize(("day", "hours"), [
    pytest.param(date(2026, 6, 17), 24, id="summer-day"),
    pytest.param(date(2026, 3, 29), 23, id="clocks-go-forward"),
    pytest.param(date(2026, 10, 25), 25, id="clocks-go-back"),
])
def test_a_local_day_has_an_hour_for_every_hour_on_the_clock(day: date, hours: int) -> None:
    at = datetime.combine(day, time(12, 0), tzinfo=AMSTERDAM)

    found = day_hours(at.astimezone(UTC), MODEL)

    assert len(found) == hours
    assert found[0] == datetime.combine(day, time(0), tzinfo=AMSTERDAM)
    assert all((b - a).total_seconds() == 3600 for a, b in zip(found, found[1:], strict=False))
    assert {h.astimezone(AMSTERDAM).date() for h in found} == {day}
    assert all(h.tzinfo is not None for h in found)


def test_the_local_day_of_a_moment_just_after_midnight_utc_is_the_amsterdam_one() -> None:
    # 23:30 UTC on 16 June is 01:30 on 17 June in Amsterdam.
    found = day_hours(datetime(2026, 6, 16, 23, 30, tzinfo=UTC), MODEL)

    assert found[0] == datetime(2026, 6, 17, 0, 0, tzinfo=AMSTERDAM)
    assert len(found) == 24


@pytest.mark.parametrize("name", ["Utrecht", "utrecht", "UTRECHT", "  Utrecht  "])
def test_a_municipality_is_found_whatever_its_case_and_surrounding_spaces(name: str) -> None:
    assert find_municipality(load_pc4(), name) == "Utrecht"


def test_a_municipality_name_with_inner_spaces_is_found_in_any_case() -> None:
    areas = load_pc4()
    spaced = next(m for m in sorted(set(areas.municipalities)) if " " in m)

    assert find_municipality(areas, spaced.upper().replace(" ", "  ")) == spaced


def test_a_misspelt_municipality_is_refused_with_suggestions() -> None:
    with pytest.raises(UnknownMunicipality, match=r"Utreht.*did you mean .*Utrecht"):
        find_municipality(load_pc4(), "Utreht")


@pytest.mark.parametrize(("typed", "meant"), [("UTREHT", "Utrecht"), ("amsterdm", "Amsterdam"),
                                             ("s-hertogenbosh", "'s-Hertogenbosch")])
def test_a_misspelt_municipality_in_any_case_gets_a_suggestion(typed: str, meant: str) -> None:
    with pytest.raises(UnknownMunicipality, match="did you mean") as caught:
        find_municipality(load_pc4(), typed)

    assert meant in str(caught.value)


def test_a_name_that_begins_two_municipalities_names_suggests_both() -> None:
    with pytest.raises(UnknownMunicipality) as caught:
        find_municipality(load_pc4(), "Bergen")

    assert "Bergen (NH.)" in str(caught.value) and "Bergen (L.)" in str(caught.value)


def test_the_hague_is_found_by_the_name_people_use() -> None:
    assert find_municipality(load_pc4(), "Den Haag") == "'s-Gravenhage"


def test_a_name_like_no_municipality_is_refused_without_suggestions() -> None:
    with pytest.raises(UnknownMunicipality) as caught:
        find_municipality(load_pc4(), "Atlantis")

    assert "Atlantis" in str(caught.value)
    assert "did you mean" not in str(caught.value)


@pytest.mark.parametrize("municipality", ["Vaals", "Schiermonnikoog"])
@pytest.mark.parametrize("cell_m", [150.0, 5000.0])
def test_cells_over_a_municipality_carry_exactly_its_inhabitants_and_every_area_has_one(
        municipality: str, cell_m: float) -> None:
    areas = load_pc4()
    chosen = [i for i, m in enumerate(areas.municipalities) if m == municipality]

    cells = lay_cells(areas, cell_m, only=np.array(chosen))

    assert set(cells.area.tolist()) == set(chosen)
    for index in chosen:
        mine = cells.area == index
        assert mine.sum() >= 1
        assert cells.population[mine].sum() == pytest.approx(areas.population[index])
        assert np.allclose(cells.population[mine], cells.population[mine][0])
    assert cells.population.sum() == pytest.approx(areas.population[chosen].sum())
    assert cells.cell_m == cell_m


def test_neighbouring_cells_lie_one_cell_size_apart() -> None:
    areas = load_pc4()
    vaals = [i for i, m in enumerate(areas.municipalities) if m == "Vaals"]

    cells = lay_cells(areas, 150.0, only=np.array(vaals))

    lattice = cells.lattice
    assert lattice is not None
    lat, lon = float(cells.lat[0]), float(cells.lon[0])
    north = great_circle_m(lat, lon, lat + lattice.dlat, lon)
    east = great_circle_m(lat, lon, lat, lon + lattice.dlon)
    assert north == pytest.approx(150.0, rel=1e-9)
    # East-west spacing is set at the middle latitude of all areas (52.13 N); at Vaals
    # (50.77 N) a cell is cos(50.77) / cos(52.13) = 3.1 % wider.
    middle = 52.13390
    assert east == pytest.approx(150.0 * np.cos(np.radians(lat)) / np.cos(np.radians(middle)),
                                 rel=1e-4)
    assert east == pytest.approx(150.0, rel=0.035)
    assert len(cells) > 1000
    keys = set(zip(np.rint((cells.lat - lattice.lat0) / lattice.dlat).tolist(),
                   np.rint((cells.lon - lattice.lon0) / lattice.dlon).tolist(), strict=True))
    assert len(keys) == len(cells)


@pytest.mark.parametrize("municipality", [None, "Vaals"])
def test_laying_cells_reports_progress_for_every_area_once(municipality: str | None) -> None:
    areas = load_pc4()
    chosen = None if municipality is None else np.array(
        [i for i, m in enumerate(areas.municipalities) if m == municipality])
    steps: list[int] = []

    cells = lay_cells(areas, 5000.0, only=chosen, progress=steps.append)

    assert sum(steps) == (len(areas) if chosen is None else len(chosen))
    assert all(0 < step <= 64 for step in steps)
    assert cells.population.sum() == pytest.approx(
        areas.population.sum() if chosen is None else areas.population[chosen].sum())
