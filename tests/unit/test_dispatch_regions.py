"""Dispatch across regions, time zones and competences, on small hand-made maps.

Regions are boxes around real border places; times are chosen on both sides of the hours an
AED is open, in the AED's own zone, and across the changes to and from summer time.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from alarm_core.policy import AedAccessPolicy, DispatchPolicy
from alarm_core.pools import AedEntry, AedPool, ResponderEntry, ResponderPool
from alarm_core.selection import CallNeeds, Plan, Role, Why, call_needs, infant_call, select_plan
from fleet.readiness import ReadinessPolicy
from fleet.regions import Region, RegionMap, area_from_geojson

METRES_PER_DEGREE = 111_320.0
NO_NEEDS = CallNeeds()
OFFICE_HOURS = "Mo-Fr 08:00-18:00"


def box(west: float, south: float, east: float, north: float) -> Any:
    return area_from_geojson({"type": "Polygon", "coordinates": [[
        [west, south], [east, south], [east, north], [west, north], [west, south]]]})


def region(code: str, area: Any, timezone: str, country: str, **dispatch: Any) -> Region:
    return Region(code=code, name=code, timezone=timezone, country=country, languages=("en",),
                  dispatch=replace(DispatchPolicy(), **dispatch), readiness=ReadinessPolicy(),
                  area=area)


def near(origin: tuple[float, float], north_m: float,
         east_m: float = 0.0) -> tuple[float, float]:
    lat, lon = origin
    return (lat + north_m / METRES_PER_DEGREE,
            lon + east_m / (METRES_PER_DEGREE * math.cos(math.radians(lat))))


def responder(rid: str, at: tuple[float, float], region_code: str | None,
              **changes: Any) -> ResponderEntry:
    return replace(ResponderEntry(id=rid, lat=at[0], lon=at[1], date_of_birth=date(1985, 3, 1),
                                  certificate_date=date(2026, 5, 15), region=region_code),
                   **changes)


def aed(aid: str, at: tuple[float, float], region_code: str | None,
        hours: str = "24/7") -> AedEntry:
    return AedEntry(id=aid, lat=at[0], lon=at[1], readiness="ready", opening_hours=hours,
                    region=region_code)


def plan(regions: RegionMap, victim: tuple[float, float], at: datetime,
         responders: list[ResponderEntry], aeds: list[AedEntry],
         needs: CallNeeds = NO_NEEDS) -> Plan:
    home = regions.region_at(*victim)
    assert home is not None
    responder_pool = ResponderPool(home.dispatch)
    responder_pool.load(responders)
    aed_pool = AedPool()
    aed_pool.load(aeds)
    # The server's own zone is deliberately none of the regions': only theirs may count.
    return select_plan(victim[0], victim[1], at, responder_pool, aed_pool, DispatchPolicy(),
                       "Asia/Tokyo", "JP", regions=regions, region=home, needs=needs)


def alerted(found: Plan) -> list[str]:
    return [a.responder_id for a in found.responders]


# -- time zones ------------------------------------------------------------------------------

# Elvas (Portugal, Europe/Lisbon) and Badajoz (Spain, Europe/Madrid): neighbours an hour
# apart. The border runs along the Caia river at about 7.03 W.
ELVAS = (38.8810, -7.1630)
PT = box(-7.40, 38.70, -7.03, 39.05)
ES = box(-7.03, 38.70, -6.80, 39.05)


def iberian(share: bool = True) -> RegionMap:
    shared: dict[str, Any] = {"aed_access": AedAccessPolicy.OPEN_NOW}
    return RegionMap([
        region("PT-ELVAS", PT, "Europe/Lisbon", "PT",
               share_aeds_with=("ES-BADAJOZ",) if share else (), **shared),
        region("ES-BADAJOZ", ES, "Europe/Madrid", "ES",
               share_aeds_with=("PT-ELVAS",) if share else (), **shared)])


# An AED on each side of the border, 900 m and 1,100 m from a victim 500 m west of it.
VICTIM_PT = (38.8810, -7.0360)
AED_PT_AT = near(VICTIM_PT, 0, -900)
AED_ES_AT = near(VICTIM_PT, 0, 1100)
# Monday 16 November 2026, 07:30 in Lisbon (UTC+0) is 08:30 in Badajoz (UTC+1).
MONDAY_0730_LISBON = datetime(2026, 11, 16, 7, 30, tzinfo=UTC)


def test_an_aed_open_mo_fr_08_18_is_read_in_its_own_regions_zone_not_the_incidents():
    regions = iberian()
    found = plan(regions, VICTIM_PT, MONDAY_0730_LISBON,
                 [responder(f"r{i}", near(VICTIM_PT, 50 * i), "PT-ELVAS") for i in range(6)],
                 [aed("pt", AED_PT_AT, "PT-ELVAS", OFFICE_HOURS),
                  aed("es", AED_ES_AT, "ES-BADAJOZ", OFFICE_HOURS)])
    # 07:30 in Elvas: the Portuguese AED has not opened; 08:30 in Badajoz: the Spanish one has.
    assert [a.id for a in found.aeds] == ["es"]
    assert found.skipped_aeds == {"pt": "closed"}


def test_an_hour_later_both_sides_of_the_border_are_open():
    found = plan(iberian(), VICTIM_PT, datetime(2026, 11, 16, 8, 30, tzinfo=UTC),
                 [responder(f"r{i}", near(VICTIM_PT, 50 * i), "PT-ELVAS") for i in range(6)],
                 [aed("pt", AED_PT_AT, "PT-ELVAS", OFFICE_HOURS),
                  aed("es", AED_ES_AT, "ES-BADAJOZ", OFFICE_HOURS)])
    assert sorted(a.id for a in found.aeds) == ["es", "pt"]


def test_at_17_30_in_elvas_the_spanish_aed_has_closed_at_18_30_its_time():
    found = plan(iberian(), VICTIM_PT, datetime(2026, 11, 16, 17, 30, tzinfo=UTC),
                 [responder(f"r{i}", near(VICTIM_PT, 50 * i), "PT-ELVAS") for i in range(6)],
                 [aed("pt", AED_PT_AT, "PT-ELVAS", OFFICE_HOURS),
                  aed("es", AED_ES_AT, "ES-BADAJOZ", OFFICE_HOURS)])
    assert [a.id for a in found.aeds] == ["pt"]
    assert found.skipped_aeds == {"es": "closed"}


def test_aeds_across_the_border_are_not_sent_unless_both_regions_share_them():
    found = plan(iberian(share=False), VICTIM_PT, datetime(2026, 11, 16, 10, 0, tzinfo=UTC),
                 [responder(f"r{i}", near(VICTIM_PT, 50 * i), "PT-ELVAS") for i in range(6)],
                 [aed("pt", AED_PT_AT, "PT-ELVAS"), aed("es", AED_ES_AT, "ES-BADAJOZ")])
    assert [a.id for a in found.aeds] == ["pt"]
    assert found.skipped_aeds == {"es": "other_region"}


def test_sharing_listed_by_one_region_only_is_not_sharing():
    regions = RegionMap([
        region("PT-ELVAS", PT, "Europe/Lisbon", "PT", share_aeds_with=("ES-BADAJOZ",)),
        region("ES-BADAJOZ", ES, "Europe/Madrid", "ES")])
    found = plan(regions, VICTIM_PT, datetime(2026, 11, 16, 10, 0, tzinfo=UTC),
                 [responder(f"r{i}", near(VICTIM_PT, 50 * i), "PT-ELVAS") for i in range(6)],
                 [aed("es", AED_ES_AT, "ES-BADAJOZ")])
    assert found.aeds == ()
    assert found.skipped_aeds == {"es": "other_region"}


# Amsterdam: summer time starts on Sunday 29 March 2026 at 01:00 UTC (02:00 -> 03:00) and ends
# on Sunday 25 October 2026 at 01:00 UTC (03:00 -> 02:00).
AMSTERDAM = (52.3700, 4.8900)
NL = box(3.3, 50.7, 7.2, 53.6)


@pytest.mark.parametrize(("utc", "sent"), [
    (datetime(2026, 3, 23, 6, 30, tzinfo=UTC), False),  # Monday before: 07:30 CET
    (datetime(2026, 3, 30, 6, 30, tzinfo=UTC), True),   # Monday after: 08:30 CEST
    (datetime(2026, 3, 30, 15, 30, tzinfo=UTC), True),  # 17:30 CEST
    (datetime(2026, 3, 30, 16, 30, tzinfo=UTC), False),  # 18:30 CEST
    (datetime(2026, 10, 26, 6, 30, tzinfo=UTC), False),  # Monday after the end: 07:30 CET
    (datetime(2026, 10, 26, 7, 30, tzinfo=UTC), True),   # 08:30 CET
    (datetime(2026, 10, 26, 16, 30, tzinfo=UTC), True),  # 17:30 CET
])
def test_office_hours_follow_the_change_to_and_from_summer_time(utc: datetime, sent: bool):
    regions = RegionMap([region("NL", NL, "Europe/Amsterdam", "NL",
                                aed_access=AedAccessPolicy.OPEN_NOW)])
    found = plan(regions, AMSTERDAM, utc,
                 [responder(f"r{i}", near(AMSTERDAM, 50 * i), "NL") for i in range(6)],
                 [aed("office", near(AMSTERDAM, 300), "NL", OFFICE_HOURS)])
    assert [a.id for a in found.aeds] == (["office"] if sent else [])


@pytest.mark.parametrize(("utc", "sent"), [
    (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), True),   # 02:30 CEST, the first time
    (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), True),   # 02:30 CET, the hour again
    (datetime(2026, 10, 25, 2, 30, tzinfo=UTC), False),  # 03:30 CET
    (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), False),   # 01:30 CET
    (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), False),   # 03:30 CEST: 02:xx never came
])
def test_hours_inside_the_repeated_and_the_skipped_night_hour(utc: datetime, sent: bool):
    regions = RegionMap([region("NL", NL, "Europe/Amsterdam", "NL",
                                aed_access=AedAccessPolicy.OPEN_NOW)])
    found = plan(regions, AMSTERDAM, utc,
                 [responder(f"r{i}", near(AMSTERDAM, 50 * i), "NL") for i in range(6)],
                 [aed("night", near(AMSTERDAM, 300), "NL", "Su 02:00-03:00")])
    assert [a.id for a in found.aeds] == (["night"] if sent else [])


def test_galway_is_an_hour_behind_leuven_for_the_same_opening_hours():
    galway, leuven = (53.2707, -9.0568), (50.8798, 4.7005)
    regions = RegionMap([
        region("IE-GALWAY", box(-9.3, 53.1, -8.8, 53.4), "Europe/Dublin", "IE",
               aed_access=AedAccessPolicy.OPEN_NOW),
        region("BE-VLG-LEUVEN", box(4.5, 50.75, 4.9, 50.98), "Europe/Brussels", "BE",
               aed_access=AedAccessPolicy.OPEN_NOW)])
    # Monday 16 November 2026 07:30 UTC: 07:30 in Galway, 08:30 in Leuven.
    at = datetime(2026, 11, 16, 7, 30, tzinfo=UTC)
    for victim, code, sent in ((galway, "IE-GALWAY", []), (leuven, "BE-VLG-LEUVEN", ["a"])):
        found = plan(regions, victim, at,
                     [responder(f"r{i}", near(victim, 50 * i), code) for i in range(6)],
                     [aed("a", near(victim, 300), code, OFFICE_HOURS)])
        assert [a.id for a in found.aeds] == sent, code


# -- responders across a border --------------------------------------------------------------

# Kerkrade (NL) and Herzogenrath (DE) share a street: the border runs at about 6.075 E.
KERKRADE = (50.8660, 6.0700)
NL_LIMBURG = box(5.6, 50.75, 6.075, 51.2)
DE_AACHEN = box(6.075, 50.6, 6.5, 51.0)


def limburg(share_nl: bool, share_de: bool) -> RegionMap:
    return RegionMap([
        region("NL-LI", NL_LIMBURG, "Europe/Amsterdam", "NL",
               share_responders_with=("DE-NW-AC",) if share_nl else ()),
        region("DE-NW-AC", DE_AACHEN, "Europe/Berlin", "DE",
               share_responders_with=("NL-LI",) if share_de else ())])


BORDER_STREET = [
    ("nl-1", near(KERKRADE, 150), "NL-LI"),
    ("de-1", near(KERKRADE, 0, 500), "DE-NW-AC"),   # east of the border, nearer than nl-2
    ("nl-2", near(KERKRADE, -700), "NL-LI"),
    ("de-2", near(KERKRADE, 300, 800), "DE-NW-AC"),
]


@pytest.mark.parametrize(("share_nl", "share_de", "expected"), [
    (True, True, ["nl-1", "de-1", "nl-2", "de-2"]),
    (True, False, ["nl-1", "nl-2"]),
    (False, True, ["nl-1", "nl-2"]),
    (False, False, ["nl-1", "nl-2"]),
])
def test_a_border_call_alerts_the_neighbours_responders_only_when_both_regions_agree(
        share_nl: bool, share_de: bool, expected: list[str]):
    found = plan(limburg(share_nl, share_de), KERKRADE, datetime(2026, 11, 16, 12, tzinfo=UTC),
                 [responder(rid, at, code) for rid, at, code in BORDER_STREET], [])
    assert alerted(found) == expected


def test_a_neighbours_responder_is_marked_cross_border_in_the_plan():
    found = plan(limburg(True, True), KERKRADE, datetime(2026, 11, 16, 12, tzinfo=UTC),
                 [responder(rid, at, code) for rid, at, code in BORDER_STREET], [])
    why = {a.responder_id: a.reasons for a in found.responders}
    assert why["de-1"] == (Why.CPR_NO_AED, "cross_border:DE-NW-AC")
    assert why["nl-1"] == (Why.NEAREST,)
    document = found.to_json()
    assert document["selection"] == {"region": "NL-LI", "needs": [],
                                     "responder_regions": ["DE-NW-AC", "NL-LI"],
                                     "aed_regions": ["NL-LI"]}
    assert document["responders"][1]["why"] == ["cpr_no_aed", "cross_border:DE-NW-AC"]
    json.dumps(document)


def test_the_calls_region_sets_the_counts_not_the_neighbours():
    regions = RegionMap([
        region("NL-LI", NL_LIMBURG, "Europe/Amsterdam", "NL", max_alerted=2,
               share_responders_with=("DE-NW-AC",)),
        region("DE-NW-AC", DE_AACHEN, "Europe/Berlin", "DE", max_alerted=100,
               share_responders_with=("NL-LI",))])
    found = plan(regions, KERKRADE, datetime(2026, 11, 16, 12, tzinfo=UTC),
                 [responder(rid, at, code) for rid, at, code in BORDER_STREET], [])
    assert alerted(found) == ["nl-1", "de-1"]


# -- competences ------------------------------------------------------------------------------

def street(**overrides: dict[str, Any]) -> list[ResponderEntry]:
    """Six responders 100 m apart going north; `overrides` change some of them."""
    return [responder(f"r{i}", near(AMSTERDAM, 100 * i), "NL", **overrides.get(f"r{i}", {}))
            for i in range(6)]


def test_a_medical_only_incident_type_alerts_only_medically_trained_responders():
    regions = RegionMap([region("NL", NL, "Europe/Amsterdam", "NL",
                                medical_only_incident_types=("overdose",))])
    people = street(r2={"medical": True}, r4={"medical": True})
    at = datetime(2026, 11, 16, 12, tzinfo=UTC)
    home = regions.regions[0]
    ordinary = plan(regions, AMSTERDAM, at, people, [],
                    call_needs(home.dispatch, "cardiac_arrest", False))
    overdose = plan(regions, AMSTERDAM, at, people, [],
                    call_needs(home.dispatch, "overdose", False))
    assert alerted(ordinary) == ["r0", "r1", "r2", "r3", "r4", "r5"]
    assert alerted(overdose) == ["r2", "r4"]
    assert all(Why.MEDICAL in a.reasons for a in overdose.responders)
    assert overdose.responders[0].reasons == (Why.NEAREST, Why.MEDICAL)


def test_an_infant_call_goes_only_to_paediatric_responders_where_the_region_allows_it():
    allows = DispatchPolicy(paediatric_under_one=True)
    assert infant_call(["victim_under_one_year"], allows)
    assert not infant_call(["victim_under_one_year"], DispatchPolicy())
    assert not infant_call(["victim_under_one_year", "unsafe_scene"], allows)
    assert not infant_call([], allows)

    regions = RegionMap([region("NL", NL, "Europe/Amsterdam", "NL", paediatric_under_one=True)])
    people = street(r1={"competences": frozenset({"paediatric_life_support"})},
                    r3={"competences": frozenset({"paediatric_life_support",
                                                  "advanced_life_support"})},
                    r4={"competences": frozenset({"advanced_life_support"})})
    found = plan(regions, AMSTERDAM, datetime(2026, 11, 16, 12, tzinfo=UTC), people,
                 [aed("a", near(AMSTERDAM, 250), "NL")],
                 call_needs(regions.regions[0].dispatch, None, infant=True))
    assert alerted(found) == ["r1", "r3"]
    assert {a.responder_id: a.role for a in found.responders} == {"r1": Role.CPR,
                                                                   "r3": Role.FETCH_AED}
    assert found.responders[0].reasons == (Why.NEAREST, Why.PAEDIATRIC)
    assert found.responders[1].reasons == (Why.FASTEST_WITH_AED, Why.PAEDIATRIC)
    assert found.to_json()["selection"]["needs"] == ["paediatric_competence"]


def test_reasons_name_each_role_of_an_ordinary_plan():
    regions = RegionMap([region("NL", NL, "Europe/Amsterdam", "NL", cpr_share=0.5)])
    found = plan(regions, AMSTERDAM, datetime(2026, 11, 16, 12, tzinfo=UTC), street(),
                 [aed("a", near(AMSTERDAM, 550), "NL")])
    why = [a.reasons[0] for a in found.responders]
    assert why[0] == Why.NEAREST
    assert why.count(Why.FASTEST_WITH_AED) == 1
    assert why.count(Why.CPR_SHARE) == 2  # half of six go straight, the nearest among them
    assert why.count(Why.BACKUP_FETCHER) == 2


def test_a_place_just_outside_a_simplified_outline_counts_to_the_nearest_region():
    regions = RegionMap([region("NL", NL, "Europe/Amsterdam", "NL")])
    inside_tolerance = (53.6 + 300 / METRES_PER_DEGREE, 5.0)
    far_out = (53.6 + 2_000 / METRES_PER_DEGREE, 5.0)
    found = regions.region_at(*inside_tolerance)
    assert found is not None and found.code == "NL"
    assert regions.region_at(*far_out) is None
    assert regions.codes_at(*zip(inside_tolerance, far_out, strict=True)) == ["NL", None]


def test_many_places_at_once_fall_in_the_same_regions_as_one_by_one():
    import numpy as np

    regions = limburg(True, True)
    rng = np.random.default_rng(7)
    # Around both areas and their edges, inside, just outside and far out.
    lats = rng.uniform(50.55, 51.25, 3000)
    lons = rng.uniform(5.55, 6.55, 3000)
    one_by_one = [None if (r := regions.region_at(a, b)) is None else r.code
                  for a, b in zip(lats.tolist(), lons.tolist(), strict=True)]
    assert regions.codes_at(lats, lons) == one_by_one
    assert {None, "NL-LI", "DE-NW-AC"} <= set(one_by_one)
