"""Dispatch selection on small hand-made fleets: who is alerted, which AEDs, who fetches them."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from alarm_core.geo import EARTH_RADIUS_M, TravelModel, great_circle_m
from alarm_core.policy import AedAccessPolicy, DispatchPolicy
from alarm_core.pools import AedEntry, AedPool, ResponderEntry, ResponderPool
from alarm_core.selection import Plan, Role, assign_roles, choose_aeds, select_plan
from fleet.settings import Settings

VICTIM = (52.37, 4.89)
# Wednesday 17 June 2026 (no Dutch public holiday): 12:00 and 03:00 in Amsterdam (CEST, UTC+2).
NOON = datetime(2026, 6, 17, 10, 0, tzinfo=UTC)
NIGHT = datetime(2026, 6, 17, 1, 0, tzinfo=UTC)
SATURDAY_NOON = datetime(2026, 6, 20, 10, 0, tzinfo=UTC)
POLICY = DispatchPolicy()
OFFICE_HOURS = "Mo-Fr 08:00-18:00"


def at(north_m: float, east_m: float = 0.0) -> tuple[float, float]:
    """The point `north_m` north and `east_m` east of the victim (metres, locally flat)."""
    metres_per_degree = math.pi * EARTH_RADIUS_M / 180
    return (VICTIM[0] + north_m / metres_per_degree,
            VICTIM[1] + east_m / (metres_per_degree * math.cos(math.radians(VICTIM[0]))))


def distance(point: tuple[float, float], other: tuple[float, float] = VICTIM) -> float:
    return great_circle_m(point[0], point[1], other[0], other[1])


def responder(rid: str, north_m: float, east_m: float = 0.0, **changes: Any) -> ResponderEntry:
    """An alertable adult with a current certificate, `north_m`/`east_m` from the victim."""
    lat, lon = at(north_m, east_m)
    entry = ResponderEntry(id=rid, lat=lat, lon=lon, date_of_birth=date(1985, 3, 1),
                           certificate_date=date(2026, 1, 15))
    return replace(entry, **changes)


def aed(aid: str, north_m: float, east_m: float = 0.0, **changes: Any) -> AedEntry:
    """A ready, public AED open 24/7, `north_m`/`east_m` from the victim."""
    lat, lon = at(north_m, east_m)
    return replace(AedEntry(id=aid, lat=lat, lon=lon, readiness="ready", opening_hours="24/7"),
                   **changes)


def pools(responders: list[ResponderEntry], aeds: list[AedEntry],
          policy: DispatchPolicy = POLICY,
          include_sms: bool = True) -> tuple[ResponderPool, AedPool]:
    responder_pool = ResponderPool(policy, include_sms=include_sms)
    responder_pool.load(responders)
    aed_pool = AedPool()
    aed_pool.load(aeds)
    return responder_pool, aed_pool


def plan_for(responders: list[ResponderEntry], aeds: list[AedEntry],
             policy: DispatchPolicy = POLICY, now: datetime = NOON,
             include_sms: bool = True) -> Plan:
    responder_pool, aed_pool = pools(responders, aeds, policy, include_sms)
    return select_plan(*VICTIM, now, responder_pool, aed_pool, policy)


def alerted(plan: Plan) -> list[str]:
    return [a.responder_id for a in plan.responders]


def sent_aeds(plan: Plan) -> list[str]:
    return [a.id for a in plan.aeds]


def chosen_ids(aeds: list[AedEntry], policy: DispatchPolicy = POLICY,
               now: datetime = NOON) -> tuple[list[str], dict[str, str]]:
    """The AEDs `choose_aeds` picks, nearest first, and those it skipped with the reason."""
    aed_pool = AedPool()
    aed_pool.load(aeds)
    chosen, skipped = choose_aeds(*VICTIM, now, aed_pool, policy, "Europe/Amsterdam", "NL")
    return [aed_pool.entries[slot].id for slot, _d, _a in chosen], skipped


# Enough responders for every AED to get a designated fetcher.
CROWD = [responder(f"r{i}", 40.0 * i, 15.0 * (i % 3)) for i in range(1, 10)]


# --- Responders -------------------------------------------------------------------------------

def test_the_nearest_responder_always_gets_role_cpr() -> None:
    # The nearest stands right next to the only AED: still sent to the victim, not to fetch.
    plan = plan_for([responder("far", 400), responder("near", 50, 0), responder("mid", 200)],
                    [aed("a1", 55)])
    assert plan.responders[0].responder_id == "near"
    assert plan.responders[0].role == Role.CPR
    assert plan.responders[0].aed_id is None and not plan.responders[0].designated
    assert plan.aeds[0].fetcher_id != "near"


def test_responders_are_alerted_nearest_first_up_to_max_alerted() -> None:
    crowd = [responder(f"r{i}", 900 - 80 * i) for i in range(10)]
    plan = plan_for(crowd, [], replace(POLICY, max_alerted=4, min_responders=1))
    assert alerted(plan) == ["r9", "r8", "r7", "r6"]
    distances = [a.distance_m for a in plan.responders]
    assert distances == sorted(distances)
    assert distances[0] == pytest.approx(180, abs=0.01)


WIDENING = replace(POLICY, search_radius_m=1000, max_search_radius_m=2000, radius_step_m=250,
                   min_responders=3)
RADII = [
    # (name, north offsets of alertable responders, alerted, radius)
    ("enough within the first radius: it stays", [100, 500, 900, 1100, 1300],
     ["n100", "n500", "n900"], 1000),
    ("too few within the first radius: one step wider", [500, 900, 1100, 1400, 1900],
     ["n500", "n900", "n1100"], 1250),
    ("too few within two steps: two steps wider", [500, 900, 1400, 1900],
     ["n500", "n900", "n1400"], 1500),
    ("never enough: the largest radius", [500, 1900, 2100],
     ["n500", "n1900"], 2000),
    ("nobody at all: the largest radius", [], [], 2000),
]


@pytest.mark.parametrize(("offsets", "expected", "radius"), [r[1:] for r in RADII],
                         ids=[r[0] for r in RADII])
def test_the_search_radius_widens_in_steps_while_too_few_responders_are_found(
        offsets: list[int], expected: list[str], radius: float) -> None:
    assert WIDENING.radius_steps() == [1000, 1250, 1500, 1750, 2000]
    plan = plan_for([responder(f"n{n}", n) for n in offsets], [], WIDENING)
    assert alerted(plan) == expected
    assert plan.radius_m == radius


def test_a_radius_step_that_would_never_reach_the_largest_radius_is_refused() -> None:
    with pytest.raises(ValueError):
        Settings.model_validate({"dispatch": {"radius_step_m": 0}})


def test_responders_who_may_not_be_alerted_do_not_count_towards_the_minimum() -> None:
    crowd = [responder("n500", 500), responder("n900", 900),
             responder("busy", 950, busy=True), responder("n1100", 1100)]
    plan = plan_for(crowd, [], WIDENING)
    assert alerted(plan) == ["n500", "n900", "n1100"]
    assert plan.radius_m == 1250


def test_a_responder_just_inside_the_first_radius_counts_towards_it() -> None:
    plan = plan_for([responder("n300", 300), responder("n600", 600), responder("n1000", 999.99)],
                    [], WIDENING)
    assert alerted(plan) == ["n300", "n600", "n1000"]
    assert plan.radius_m == 1000


def test_expected_first_cpr_is_turnout_plus_walking_time_of_the_nearest() -> None:
    policy = replace(POLICY, speed_mps=2.0, turnout_s=45.0)
    nearest = responder("nearest", 120, 90)
    plan = plan_for([responder("other", 700), nearest], [aed("a1", 300)], policy)
    walk = distance(at(120, 90))
    assert walk == pytest.approx(150, abs=0.01)
    assert plan.first_cpr_s == pytest.approx(45.0 + walk / 2.0, abs=1e-3)
    assert plan.responders[0].eta_s == plan.first_cpr_s


def test_roles_split_about_one_third_cpr_and_the_rest_fetch_an_aed() -> None:
    plan = plan_for(CROWD, [aed("a1", 100, 100), aed("a2", -150), aed("a3", 0, -200)])
    roles = [a.role for a in plan.responders]
    assert len(roles) == 9
    assert roles.count(Role.CPR) == round(9 * POLICY.cpr_share) == 3
    assert roles.count(Role.FETCH_AED) == 6
    assert sum(a.designated for a in plan.responders) == 3
    assert all(a.aed_id in set(sent_aeds(plan)) for a in plan.responders
               if a.role == Role.FETCH_AED)
    assert all(a.aed_id is None for a in plan.responders if a.role == Role.CPR)


@pytest.mark.parametrize(("share", "cpr"), [(0.0, 1), (0.5, 5), (1.0, 7)],
                         ids=["no share still one", "half", "all but the fetchers"])
def test_the_cpr_share_is_taken_from_the_policy(share: float, cpr: int) -> None:
    crowd = CROWD + [responder("r10", 420)]
    plan = plan_for(crowd, [aed("a1", 100, 100), aed("a2", -150), aed("a3", 0, -200)],
                    replace(POLICY, cpr_share=share))
    roles = [a.role for a in plan.responders]
    assert roles.count(Role.CPR) == cpr
    assert roles.count(Role.FETCH_AED) == 10 - cpr


def test_backup_fetchers_go_via_the_aed_they_bring_fastest() -> None:
    plan = plan_for(CROWD, [aed("a1", 100, 100), aed("a2", -150), aed("a3", 0, -200)])
    by_id = {a.id: a for a in plan.aeds}
    for assignment in plan.responders:
        if assignment.role != Role.FETCH_AED or assignment.designated:
            continue
        entry = next(r for r in CROWD if r.id == assignment.responder_id)
        assert entry.lat is not None and entry.lon is not None
        via = {aid: POLICY.turnout_s + (distance((entry.lat, entry.lon), (a.lat, a.lon))
                                        + a.distance_m) / POLICY.speed_mps
               for aid, a in by_id.items()}
        assert assignment.aed_id == min(via, key=lambda aid: via[aid])
        assert assignment.eta_s == pytest.approx(min(via.values()), abs=1e-3)


def test_a_plan_without_responders_sends_no_aeds() -> None:
    plan = plan_for([responder("far", 2500)], [aed("a1", 50), aed("a2", 80)])
    assert plan.responders == () and plan.aeds == ()
    assert plan.first_cpr_s is None and plan.first_aed_s is None


def test_a_single_responder_only_does_cpr_and_no_aed_is_chosen() -> None:
    plan = plan_for([responder("only", 300)], [aed("a1", 50), aed("a2", 80)])
    assert [(a.responder_id, a.role, a.aed_id, a.designated) for a in plan.responders] \
        == [("only", Role.CPR, None, False)]
    assert plan.aeds == () and plan.first_aed_s is None


def test_two_responders_bring_the_one_aed_that_is_fastest_via() -> None:
    plan = plan_for([responder("near", 20), responder("second", 400)],
                    [aed("a-near-victim", -60), aed("a-on-the-way", 350)])
    assert sent_aeds(plan) == ["a-on-the-way"]
    assert [(a.role, a.aed_id, a.designated) for a in plan.responders] \
        == [(Role.CPR, None, False), (Role.FETCH_AED, "a-on-the-way", True)]


# --- Ineligible responders --------------------------------------------------------------------

INELIGIBLE = [
    # (name, changes that make the responder ineligible, the same responder eligible, now)
    ("under 18 at the call date", {"date_of_birth": date(2008, 6, 18)},
     {"date_of_birth": date(2008, 6, 17)}, NOON),
    ("no certificate", {"certificate_date": None}, {"certificate_date": date(2026, 6, 17)}, NOON),
    ("certificate older than 12 months", {"certificate_date": date(2025, 6, 17)},
     {"certificate_date": date(2025, 6, 18)}, NOON),
    ("unavailable", {"available": False}, {"available": True}, NOON),
    ("inactive", {"active": False}, {"active": True}, NOON),
    ("busy on another incident", {"busy": True}, {"busy": False}, NOON),
    ("in daytime quiet hours", {"quiet_from": time(11, 30), "quiet_until": time(12, 30)},
     {"quiet_from": time(12, 1), "quiet_until": time(12, 30)}, NOON),
    ("in quiet hours wrapping midnight", {"quiet_from": time(22), "quiet_until": time(7)},
     {"quiet_from": time(22), "quiet_until": time(3)}, NIGHT),
    ("without a known location", {"lat": None, "lon": None}, {}, NOON),
]


@pytest.mark.parametrize(("ineligible", "eligible", "now"), [c[1:] for c in INELIGIBLE],
                         ids=[c[0] for c in INELIGIBLE])
def test_an_ineligible_responder_is_never_in_the_plan(
        ineligible: dict[str, Any], eligible: dict[str, Any], now: datetime) -> None:
    others = [responder("r1", 300), responder("r2", 500, 100)]
    subject = responder("subject", 50)
    aeds = [aed("a1", 60), aed("a2", -200)]
    assert "subject" in alerted(plan_for([replace(subject, **eligible), *others], aeds, now=now))
    plan = plan_for([replace(subject, **ineligible), *others], aeds, now=now)
    assert "subject" not in alerted(plan)
    assert "subject" not in {a.fetcher_id for a in plan.aeds}
    assert alerted(plan) == ["r1", "r2"]


def test_an_sms_responder_is_never_in_the_plan_when_the_pool_excludes_sms() -> None:
    crowd = [responder("sms", 50, app=False), responder("app", 300)]
    assert alerted(plan_for(crowd, [], include_sms=True)) == ["sms", "app"]
    assert alerted(plan_for(crowd, [], include_sms=False)) == ["app"]


def test_a_responder_who_turns_18_at_local_midnight_counts_before_utc_midnight() -> None:
    # 23:30 UTC on 16 June is 01:30 on 17 June in Amsterdam: the 18th birthday.
    late = datetime(2026, 6, 16, 23, 30, tzinfo=UTC)
    crowd = [responder("birthday", 50, date_of_birth=date(2008, 6, 17))]
    assert alerted(plan_for(crowd, [], now=late)) == ["birthday"]


# --- AEDs -------------------------------------------------------------------------------------

DEPLOYABILITY = [
    # (name, AED changes, policy, now, chosen, skip reason)
    ("ready, public and 24/7", {}, POLICY, NOON, True, None),
    ("not ready", {"readiness": "not_ready"}, POLICY, NOON, False, "not_ready"),
    ("an unknown readiness", {"readiness": "broken"}, POLICY, NOON, False, "not_ready"),
    ("unverified under the default policy", {"readiness": "unverified"}, POLICY, NOON, False,
     "unverified"),
    ("unverified when the policy allows it", {"readiness": "unverified"},
     replace(POLICY, allow_unverified_aeds=True), NOON, True, None),
    ("not ready even when unverified ones are allowed", {"readiness": "not_ready"},
     replace(POLICY, allow_unverified_aeds=True), NOON, False, "not_ready"),
    ("in use", {"in_use": True}, POLICY, NOON, False, "in_use"),
    ("private", {"public": False}, POLICY, NOON, False, "private_access"),
    ("private even when open now is allowed", {"public": False},
     replace(POLICY, aed_access=AedAccessPolicy.OPEN_NOW), NOON, False, "private_access"),
    ("office hours under the default policy", {"opening_hours": OFFICE_HOURS}, POLICY, NOON,
     False, "not_always_open"),
    ("office hours, open now, on Wednesday at noon", {"opening_hours": OFFICE_HOURS},
     replace(POLICY, aed_access=AedAccessPolicy.OPEN_NOW), NOON, True, None),
    ("office hours, open now, on Wednesday at 03:00", {"opening_hours": OFFICE_HOURS},
     replace(POLICY, aed_access=AedAccessPolicy.OPEN_NOW), NIGHT, False, "closed"),
    ("office hours, open now, on Saturday at noon", {"opening_hours": OFFICE_HOURS},
     replace(POLICY, aed_access=AedAccessPolicy.OPEN_NOW), SATURDAY_NOON, False, "closed"),
    ("no hours under the default policy", {"opening_hours": None}, POLICY, NOON, False,
     "not_always_open"),
    ("no hours, open now", {"opening_hours": None},
     replace(POLICY, aed_access=AedAccessPolicy.OPEN_NOW), NOON, False, "hours_unknown"),
    ("unreadable hours, open now", {"opening_hours": "werktijden"},
     replace(POLICY, aed_access=AedAccessPolicy.OPEN_NOW), NOON, False, "hours_unparseable"),
    ("24/7 with spaces around it", {"opening_hours": " 24/7 "}, POLICY, NIGHT, True, None),
]


@pytest.mark.parametrize(("changes", "policy", "now", "chosen", "reason"),
                         [c[1:] for c in DEPLOYABILITY], ids=[c[0] for c in DEPLOYABILITY])
def test_only_deployable_aeds_are_chosen(changes: dict[str, Any], policy: DispatchPolicy,
                                         now: datetime, chosen: bool, reason: str | None) -> None:
    subject = aed("subject", 80, **changes)
    ids, skipped = chosen_ids([subject, aed("backup", 600)], policy, now)
    assert ("subject" in ids) is chosen
    assert skipped.get("subject") == reason
    plan = plan_for(CROWD, [subject, aed("backup", 600)], policy, now)
    assert ("subject" in sent_aeds(plan)) is chosen
    assert "backup" in sent_aeds(plan)


def test_an_unverified_aed_is_flagged_in_the_plan() -> None:
    policy = replace(POLICY, allow_unverified_aeds=True)
    plan = plan_for(CROWD, [aed("doubt", 80, readiness="unverified"), aed("sure", 150)], policy)
    flags = {a.id: (a.readiness, a.unverified, a.to_json()["unverified"]) for a in plan.aeds}
    assert flags == {"doubt": ("unverified", True, True), "sure": ("ready", False, False)}


def test_the_access_reason_of_a_chosen_aed_is_given() -> None:
    policy = replace(POLICY, aed_access=AedAccessPolicy.OPEN_NOW)
    plan = plan_for(CROWD, [aed("office", 80, opening_hours=OFFICE_HOURS), aed("street", 150)],
                    policy)
    assert {a.id: a.access for a in plan.aeds} == {"office": "open", "street": "always_open"}


def test_at_most_max_aeds_are_sent_and_they_are_the_nearest_deployable() -> None:
    aeds = [aed("d100", 100, readiness="not_ready"), aed("d200", 0, 200),
            aed("d300", -300), aed("d400", 0, -400, in_use=True), aed("d500", 500),
            aed("d600", 600), aed("d700", 700)]
    assert chosen_ids(aeds)[0] == ["d200", "d300", "d500"]
    plan = plan_for(CROWD, aeds)
    assert sorted(sent_aeds(plan)) == ["d200", "d300", "d500"]
    assert len(plan.aeds) == POLICY.max_aeds == 3
    assert plan.skipped_aeds == {"d100": "not_ready", "d400": "in_use"}


def test_aeds_beyond_the_aed_search_radius_are_not_sent() -> None:
    aeds = [aed("d200", 200), aed("d1400", 0, 1400), aed("d1600", -1600)]
    assert chosen_ids(aeds)[0] == ["d200", "d1400"]
    assert sorted(sent_aeds(plan_for(CROWD, aeds))) == ["d1400", "d200"]
    assert chosen_ids(aeds, replace(POLICY, aed_search_radius_m=1000))[0] == ["d200"]


def test_max_aeds_is_taken_from_the_policy() -> None:
    aeds = [aed(f"d{i}", 100 * i) for i in range(1, 6)]
    assert len(plan_for(CROWD, aeds, replace(POLICY, max_aeds=1)).aeds) == 1
    assert len(plan_for(CROWD, aeds, replace(POLICY, max_aeds=5)).aeds) == 5
    assert plan_for(CROWD, aeds, replace(POLICY, max_aeds=0)).aeds == ()


# --- Designated fetchers and the optimal assignment -------------------------------------------

def test_each_sent_aed_has_exactly_one_designated_fetcher() -> None:
    plan = plan_for(CROWD, [aed("a1", 100, 100), aed("a2", -150), aed("a3", 0, -200)])
    designated = [a for a in plan.responders if a.designated]
    assert sorted(a.aed_id or "" for a in designated) == sorted(sent_aeds(plan))
    for chosen in plan.aeds:
        fetcher = next(a for a in plan.responders if a.responder_id == chosen.fetcher_id)
        assert (fetcher.role, fetcher.aed_id, fetcher.designated) \
            == (Role.FETCH_AED, chosen.id, True)
        assert chosen.eta_s == pytest.approx(fetcher.eta_s)
    assert plan.first_aed_s == min(a.eta_s for a in plan.aeds if a.eta_s is not None)


# Two AEDs on either side of the victim. `quick` is nearest to both and fastest with `east`;
# taken greedily by `east`, it leaves `west` to `slow`, who is far from it.
OPTIMAL_RESPONDERS = [responder("first", 5), responder("quick", 200, 100),
                      responder("slow", 300, 350)]
OPTIMAL_AEDS = [aed("east", 0, 190), aed("west", 0, -200)]


def via_seconds(entry: ResponderEntry, device: AedEntry, policy: DispatchPolicy = POLICY) -> float:
    """Responder -> AED -> victim, as the travel model times it."""
    assert entry.lat is not None and entry.lon is not None
    leg = distance((entry.lat, entry.lon), (device.lat, device.lon))
    return policy.turnout_s + (leg + distance((device.lat, device.lon))) / policy.speed_mps


def greedy_total(fetchers: list[ResponderEntry], aeds: list[AedEntry]) -> float:
    """Each AED, nearest to the victim first, takes its fastest free responder."""
    free, total = list(fetchers), 0.0
    for device in sorted(aeds, key=lambda a: distance((a.lat, a.lon))):
        best = min(free, key=lambda r: via_seconds(r, device))
        free.remove(best)
        total += via_seconds(best, device)
    return total


def optimal_total(fetchers: list[ResponderEntry], aeds: list[AedEntry]) -> float:
    """The best total over every way to give each AED its own responder (brute force)."""
    return min(sum(via_seconds(r, a) for r, a in zip(chosen, aeds, strict=True))
               for chosen in itertools.permutations(fetchers, len(aeds)))


@pytest.mark.parametrize(
    ("responders", "aeds"),
    [
        (OPTIMAL_RESPONDERS, OPTIMAL_AEDS),
        (OPTIMAL_RESPONDERS + [responder("extra", -500, 500), responder("spare", 600, -100)],
         OPTIMAL_AEDS + [aed("north", 250, 50)]),
    ],
    ids=["two aeds, two fetchers", "three aeds, four candidates"],
)
def test_designated_fetchers_are_an_optimal_not_a_greedy_assignment(
        responders: list[ResponderEntry], aeds: list[AedEntry]) -> None:
    candidates = [r for r in responders if r.id != "first"]
    greedy, optimal = greedy_total(candidates, aeds), optimal_total(candidates, aeds)
    assert greedy > optimal + 30  # the case tells the two apart by far more than rounding
    plan = plan_for(responders, aeds)
    assert sorted(sent_aeds(plan)) == sorted(a.id for a in aeds)
    designated = [a for a in plan.responders if a.designated]
    assert len(designated) == len(aeds)
    assert sum(a.eta_s for a in designated) == pytest.approx(optimal, abs=1e-2)
    assert sum(a.eta_s or 0.0 for a in plan.aeds) == pytest.approx(optimal, abs=1e-2)
    assert {a.id: a.fetcher_id for a in plan.aeds}["east"] == "slow"


def test_assign_roles_on_its_own_matches_the_plan_of_select_plan() -> None:
    responder_pool, aed_pool = pools(OPTIMAL_RESPONDERS, OPTIMAL_AEDS)
    chosen, skipped = choose_aeds(*VICTIM, NOON, aed_pool, POLICY, "Europe/Amsterdam", "NL")
    slots, distances = responder_pool.near(*VICTIM, POLICY.max_search_radius_m,
                                           NOON.astimezone(ZoneInfo("Europe/Amsterdam")))
    positions = np.array([responder_pool.index.position(int(s)) for s in slots])
    plan = assign_roles(*VICTIM, NOON, 2000.0, [responder_pool.ids[int(s)] for s in slots],
                        positions, distances, chosen, aed_pool,
                        TravelModel(POLICY.speed_mps, POLICY.turnout_s), POLICY, skipped)
    expected = select_plan(*VICTIM, NOON, responder_pool, aed_pool, POLICY)
    assert plan.responders == expected.responders
    assert plan.aeds == expected.aeds


def test_assign_roles_without_responders_keeps_no_aeds() -> None:
    _, aed_pool = pools([], [aed("a1", 50)])
    chosen, _ = choose_aeds(*VICTIM, NOON, aed_pool, POLICY, "Europe/Amsterdam", "NL")
    assert len(chosen) == 1
    plan = assign_roles(*VICTIM, NOON, 1000.0, [], np.zeros((0, 3)), np.zeros(0), chosen,
                        aed_pool, TravelModel(), POLICY)
    assert plan.responders == () and plan.aeds == () and plan.first_cpr_s is None
