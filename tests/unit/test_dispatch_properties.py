"""Dispatch properties over random fleets: what a plan never contains; agreement with brute force.

Positions lie on a grid of 1e-4 degrees (7-11 m) within a few kilometres of a victim who is off
the grid, so no two different responders are exactly as far from the victim, while several
responders can share one position (then the one loaded first is nearer in both orders).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from alarm_core.geo import great_circle_m, to_xyz
from alarm_core.policy import AedAccessPolicy, DispatchPolicy
from alarm_core.pools import AedEntry, AedPool, PointIndex, ResponderEntry, ResponderPool
from alarm_core.responders import ResponderFacts, not_alertable_reason
from alarm_core.selection import Plan, Role, select_plan

ZONE = ZoneInfo("Europe/Amsterdam")
VICTIM = (52.370037, 4.890071)
GRID = 1e-4
OFFICE_HOURS = "Mo-Fr 08:00-18:00"
EDGE_M = 1e-3
"""Distances this close to a radius may round either side of it; such draws are skipped."""

utc_moments = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31),
                           timezones=st.just(UTC))
mostly_true = st.sampled_from([True, True, True, False])
mostly_false = st.sampled_from([False, False, False, True])


def grid_point(north: int, east: int) -> tuple[float, float]:
    return round(52.37 + north * GRID, 6), round(4.89 + east * GRID, 6)


grid_points = st.builds(grid_point, st.integers(-300, 300), st.integers(-450, 450))


def facts_of(entry: ResponderEntry) -> ResponderFacts:
    return ResponderFacts(entry.date_of_birth, entry.certificate_date, entry.available,
                          entry.quiet_from, entry.quiet_until, entry.active, entry.busy)


@st.composite
def responder_entries(draw: st.DrawFn, rid: str, local: datetime,
                      policy: DispatchPolicy) -> ResponderEntry:
    """A responder whose age, certificate and quiet hours often fall near their limits."""
    today = local.date()
    near_days = st.integers(-2, 2).map(lambda days: timedelta(days=days))
    born = draw(st.one_of(
        near_days.map(lambda d: today - relativedelta(years=policy.min_age_years) + d),
        st.dates(date(1940, 1, 1), date(2000, 12, 31))))
    certified = draw(st.one_of(
        st.none(),
        near_days.map(lambda d: today - relativedelta(months=policy.certificate_valid_months)
                      + d),
        st.integers(0, 300).map(lambda days: today - timedelta(days=days))))
    minute = local.hour * 60 + local.minute
    around = [time((minute + shift) % 1440 // 60, (minute + shift) % 60) for shift in (-1, 0, 1)]
    quiet_times = st.sampled_from([None, time(22), time(7), time(12), *around])
    position = draw(grid_points) if draw(mostly_true) else None
    return ResponderEntry(
        id=rid, lat=None if position is None else position[0],
        lon=None if position is None else position[1], date_of_birth=born,
        certificate_date=certified, available=draw(mostly_true), active=draw(mostly_true),
        busy=draw(mostly_false), quiet_from=draw(quiet_times), quiet_until=draw(quiet_times),
        app=draw(mostly_true))


@st.composite
def aed_entries(draw: st.DrawFn, aid: str) -> AedEntry:
    lat, lon = draw(grid_points)
    return AedEntry(id=aid, lat=lat, lon=lon,
                    readiness=draw(st.sampled_from(["ready", "ready", "unverified", "not_ready"])),
                    in_use=draw(mostly_false), public=draw(mostly_true),
                    opening_hours=draw(st.sampled_from(["24/7", OFFICE_HOURS, None])))


policies = st.builds(
    DispatchPolicy,
    search_radius_m=st.sampled_from([300.0, 500.0, 1000.0]),
    max_search_radius_m=st.sampled_from([1000.0, 1500.0, 2500.0]),
    radius_step_m=st.sampled_from([100.0, 250.0, 400.0]),
    min_responders=st.integers(1, 8),
    max_alerted=st.integers(1, 12),
    max_aeds=st.integers(0, 4),
    aed_search_radius_m=st.sampled_from([500.0, 1000.0, 1500.0]),
    cpr_share=st.sampled_from([0.0, 1 / 3, 0.5, 1.0]),
    aed_access=st.sampled_from(list(AedAccessPolicy)),
    allow_unverified_aeds=st.booleans(),
)


@dataclass(frozen=True)
class Fleet:
    now: datetime
    policy: DispatchPolicy
    include_sms: bool
    responders: list[ResponderEntry]
    aeds: list[AedEntry]

    @property
    def local(self) -> datetime:
        return self.now.astimezone(ZONE)

    def plan(self) -> Plan:
        responder_pool = ResponderPool(self.policy, include_sms=self.include_sms)
        responder_pool.load(self.responders)
        aed_pool = AedPool()
        aed_pool.load(self.aeds)
        return select_plan(*VICTIM, self.now, responder_pool, aed_pool, self.policy)


@st.composite
def fleets(draw: st.DrawFn) -> Fleet:
    now = draw(utc_moments)
    policy = draw(policies)
    local = now.astimezone(ZONE)
    responders = [draw(responder_entries(f"r{i}", local, policy))
                  for i in range(draw(st.integers(0, 25)))]
    aeds = [draw(aed_entries(f"a{i}")) for i in range(draw(st.integers(0, 10)))]
    return Fleet(now, policy, draw(st.booleans()), responders, aeds)


def to_victim(lat: float, lon: float) -> float:
    return great_circle_m(VICTIM[0], VICTIM[1], lat, lon)


# --- Independent statements of the rules ------------------------------------------------------

def may_be_alerted(entry: ResponderEntry, fleet: Fleet) -> bool:
    """The alertability rules, written out again from the policy."""
    today, clock = fleet.local.date(), fleet.local.time()
    policy = fleet.policy
    if today < entry.date_of_birth + relativedelta(years=policy.min_age_years):
        return False
    if entry.certificate_date is None or today >= entry.certificate_date + relativedelta(
            months=policy.certificate_valid_months):
        return False
    if not entry.available or not entry.active or entry.busy:
        return False
    if not entry.app and not fleet.include_sms:
        return False
    start, end = entry.quiet_from, entry.quiet_until
    if start is not None and end is not None and start != end:
        quiet = start <= clock < end if start < end else (clock >= start or clock < end)
        if quiet:
            return False
    return entry.lat is not None and entry.lon is not None


def deployable(entry: AedEntry, fleet: Fleet) -> bool:
    """The AED rules, written out again: ready, free, public and open when it must be."""
    allowed = {"ready", "unverified"} if fleet.policy.allow_unverified_aeds else {"ready"}
    if entry.readiness not in allowed or entry.in_use or not entry.public:
        return False
    if entry.opening_hours == "24/7":
        return True
    if fleet.policy.aed_access is AedAccessPolicy.ALWAYS_OPEN or entry.opening_hours is None:
        return False
    local = fleet.local
    return local.weekday() < 5 and time(8) <= local.time() < time(18)


def reference_alerted(fleet: Fleet) -> tuple[list[tuple[float, int, str]], float]:
    """Brute force: every alertable responder by distance, the widening rule, then the cap."""
    policy = fleet.policy
    everyone = []
    for index, entry in enumerate(fleet.responders):
        if entry.lat is None or entry.lon is None:
            continue
        d = to_victim(entry.lat, entry.lon)
        assume(all(abs(d - r) > EDGE_M for r in policy.radius_steps()))
        reason = not_alertable_reason(facts_of(entry), fleet.local, policy)
        if reason is None and (entry.app or fleet.include_sms) \
                and d <= policy.max_search_radius_m:
            everyone.append((d, index, entry.id))
    everyone.sort()
    radius = policy.max_search_radius_m
    for step in policy.radius_steps():
        if sum(d <= step for d, _i, _r in everyone) >= policy.min_responders:
            radius = step
            break
    inside = [c for c in everyone if c[0] <= radius]
    if len(inside) > policy.max_alerted:
        cut = policy.max_alerted
        assume(inside[cut][0] - inside[cut - 1][0] > 1e-6 or inside[cut][0] == inside[cut - 1][0])
    return inside[:policy.max_alerted], radius


def reference_aeds(fleet: Fleet) -> list[str]:
    """Brute force: the nearest deployable AEDs within the AED radius, at most `max_aeds`."""
    found = []
    for entry in fleet.aeds:
        d = to_victim(entry.lat, entry.lon)
        assume(abs(d - fleet.policy.aed_search_radius_m) > EDGE_M)
        if d <= fleet.policy.aed_search_radius_m and deployable(entry, fleet):
            found.append((d, entry.id))
    return [aid for _d, aid in sorted(found)[:fleet.policy.max_aeds]]


# --- Plans ------------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(fleets())
def test_a_plan_never_sends_an_aed_that_cannot_be_fetched(fleet: Fleet) -> None:
    plan = fleet.plan()
    by_id = {entry.id: entry for entry in fleet.aeds}
    assert len(plan.aeds) <= fleet.policy.max_aeds
    for chosen in plan.aeds:
        entry = by_id[chosen.id]
        assert deployable(entry, fleet), (entry, fleet.local)
        assert chosen.readiness == entry.readiness
        assert chosen.unverified == (entry.readiness == "unverified")
        assert chosen.distance_m <= fleet.policy.aed_search_radius_m + EDGE_M
        assert chosen.access == ("always_open" if entry.opening_hours == "24/7" else "open")


@settings(max_examples=100, deadline=None)
@given(fleets())
def test_a_plan_never_alerts_a_responder_who_may_not_be_alerted(fleet: Fleet) -> None:
    plan = fleet.plan()
    by_id = {entry.id: entry for entry in fleet.responders}
    assert len(plan.responders) <= fleet.policy.max_alerted
    assert len({a.responder_id for a in plan.responders}) == len(plan.responders)
    for assignment in plan.responders:
        assert may_be_alerted(by_id[assignment.responder_id], fleet)
        assert assignment.distance_m <= plan.radius_m + EDGE_M


@settings(max_examples=100, deadline=None)
@given(fleets())
def test_every_aed_in_a_plan_has_one_designated_fetcher_and_fetchers_go_to_plan_aeds(
        fleet: Fleet) -> None:
    plan = fleet.plan()
    sent = {chosen.id for chosen in plan.aeds}
    by_id = {a.responder_id: a for a in plan.responders}
    if plan.responders:
        assert plan.responders[0].role == Role.CPR
        assert plan.first_cpr_s == plan.responders[0].eta_s
    for assignment in plan.responders:
        if assignment.role == Role.FETCH_AED:
            assert assignment.aed_id in sent
        else:
            assert assignment.role == Role.CPR
            assert assignment.aed_id is None and not assignment.designated
    for chosen in plan.aeds:
        fetcher = by_id[chosen.fetcher_id or ""]
        assert (fetcher.role, fetcher.aed_id, fetcher.designated) \
            == (Role.FETCH_AED, chosen.id, True)
    assert sum(a.designated for a in plan.responders) == len(plan.aeds)
    assert len(plan.aeds) <= max(0, len(plan.responders) - 1)


@settings(max_examples=200, deadline=None)
@given(fleets())
def test_the_alerted_responders_are_the_brute_force_nearest_alertable_ones(fleet: Fleet) -> None:
    expected, radius = reference_alerted(fleet)
    plan = fleet.plan()
    assert plan.radius_m == radius
    assert [a.responder_id for a in plan.responders] == [rid for _d, _i, rid in expected]
    for assignment, (d, _i, _rid) in zip(plan.responders, expected, strict=True):
        assert abs(assignment.distance_m - d) < EDGE_M


@settings(max_examples=100, deadline=None)
@given(fleets())
def test_with_enough_fetchers_the_plan_sends_the_nearest_deployable_aeds(fleet: Fleet) -> None:
    expected = reference_aeds(fleet)
    plan = fleet.plan()
    if len(plan.responders) - 1 >= len(expected):
        assert sorted(chosen.id for chosen in plan.aeds) == sorted(expected)
    else:
        assert {chosen.id for chosen in plan.aeds} <= set(expected)


# --- The vectorised rules agree with the scalar ones ------------------------------------------

whole_minutes = st.none() | st.builds(time, st.integers(0, 23), st.integers(0, 59))


@st.composite
def pools_and_moments(draw: st.DrawFn) -> tuple[DispatchPolicy, bool, list[ResponderEntry],
                                                datetime]:
    policy = DispatchPolicy(min_age_years=draw(st.integers(16, 21)),
                            certificate_valid_months=draw(st.integers(1, 24)))
    local = draw(utc_moments).astimezone(ZONE)
    today = local.date()
    near_days = st.integers(-2, 2).map(lambda days: timedelta(days=days))
    minute = local.hour * 60 + local.minute
    around = [time((minute + shift) % 1440 // 60, (minute + shift) % 60) for shift in (-1, 0, 1)]
    quiet_times = whole_minutes | st.sampled_from(around)
    entries = []
    for i in range(draw(st.integers(1, 20))):
        born = draw(near_days.map(
            lambda d: today - relativedelta(years=policy.min_age_years) + d)
            | st.dates(date(1940, 1, 1), date(2015, 12, 31)))
        certified = draw(st.none()
                         | near_days.map(lambda d: today - relativedelta(
                             months=policy.certificate_valid_months) + d)
                         | st.dates(date(2022, 1, 1), date(2028, 12, 31)))
        entries.append(ResponderEntry(
            id=f"r{i}", lat=52.37, lon=4.89, date_of_birth=born, certificate_date=certified,
            available=draw(mostly_true), active=draw(mostly_true), busy=draw(mostly_false),
            quiet_from=draw(quiet_times), quiet_until=draw(quiet_times),
            app=draw(st.booleans())))
    return policy, draw(st.booleans()), entries, local


@settings(max_examples=200, deadline=None)
@given(pools_and_moments())
def test_the_vectorised_alertable_mask_agrees_with_the_scalar_rule(
        case: tuple[DispatchPolicy, bool, list[ResponderEntry], datetime]) -> None:
    policy, include_sms, entries, local = case
    pool = ResponderPool(policy, include_sms=include_sms)
    pool.load(entries)
    mask = pool.alertable_mask(np.arange(len(entries)), local)
    expected = [not_alertable_reason(facts_of(e), local, policy) is None
                and (e.app or include_sms) for e in entries]
    assert mask.tolist() == expected


@pytest.mark.parametrize(("quiet_from", "quiet_until"), [(time(22, 15), time(6, 45)),
                                                        (time(6, 45), time(22, 15))],
                         ids=["wrapping midnight", "daytime"])
def test_the_alertable_mask_applies_quiet_hours_to_the_minute(
        quiet_from: time, quiet_until: time) -> None:
    entry = ResponderEntry(id="r", lat=52.37, lon=4.89, date_of_birth=date(1980, 1, 1),
                           certificate_date=date(2026, 1, 1), quiet_from=quiet_from,
                           quiet_until=quiet_until)
    pool = ResponderPool(DispatchPolicy())
    pool.load([entry])
    moments = [(22, 14, 59), (22, 15, 0), (22, 15, 30), (6, 44, 59), (6, 45, 0), (6, 45, 59),
               (0, 0, 0), (12, 0, 0)]
    answers = []
    for hour, minute, second in moments:
        local = datetime(2026, 6, 17, hour, minute, second, tzinfo=ZONE)
        scalar = not_alertable_reason(facts_of(entry), local, pool.policy) is None
        assert pool.alertable_mask(np.array([0]), local).tolist() == [scalar]
        answers.append(scalar)
    assert True in answers and False in answers


# --- PointIndex -------------------------------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 10**6), grid_points),
        st.tuples(st.just("move"), st.integers(0, 10**6), grid_points),
        st.tuples(st.just("remove"), st.integers(0, 10**6), st.just((0.0, 0.0))),
    ),
    max_size=60,
)
radii = [0.0, 30.0, 300.0, 1_000.0, 3_000.0, 50_000.0]


def check_within(index: PointIndex, present: dict[int, tuple[float, float]],
                 center: tuple[float, float]) -> None:
    """`within` returns exactly the present slots inside each radius, nearest first."""
    truth = {slot: great_circle_m(center[0], center[1], *point)
             for slot, point in present.items()}
    for radius in radii:
        slots, distances = index.within(to_xyz(*center), radius)
        found = slots.tolist()
        assert len(found) == len(set(found))
        assert {s for s, d in truth.items() if d <= radius - EDGE_M} <= set(found)
        assert set(found) <= {s for s, d in truth.items() if d <= radius + EDGE_M}
        for slot, d in zip(found, distances.tolist(), strict=True):
            assert abs(d - truth[slot]) < EDGE_M
        pairs = list(zip(distances.tolist(), found, strict=True))
        assert pairs == sorted(pairs)


@settings(max_examples=150, deadline=None)
@given(st.lists(grid_points, max_size=12), operations, st.integers(1, 4), grid_points)
def test_the_point_index_finds_exactly_the_present_points_after_any_updates(
        initial: list[tuple[float, float]], ops: list[tuple[str, int, tuple[float, float]]],
        min_overlay: int, center: tuple[float, float]) -> None:
    index = PointIndex(capacity=16, min_overlay=min_overlay)
    index.bulk_load(to_xyz(np.array([p[0] for p in initial]), np.array([p[1] for p in initial]))
                    if initial else np.zeros((0, 3)))
    present = dict(enumerate(initial))
    slots_made = len(initial)
    for op, pick, point in ops:
        if op == "add":
            slot = index.add(to_xyz(*point))
            assert slot == slots_made
            slots_made += 1
            present[slot] = point
        elif slots_made == 0:
            continue
        elif op == "move":
            slot = pick % slots_made
            index.move(slot, to_xyz(*point))
            present[slot] = point  # moving a removed slot brings it back
        else:
            slot = pick % slots_made
            index.remove(slot)
            present.pop(slot, None)
        assert len(index) == len(present)
        check_within(index, present, VICTIM)
    check_within(index, present, center)


def test_the_point_index_rebuilds_its_tree_once_the_overlay_grows() -> None:
    index = PointIndex(capacity=16, min_overlay=2)
    points = [grid_point(n, -n) for n in range(10)]
    index.bulk_load(to_xyz(np.array([p[0] for p in points]), np.array([p[1] for p in points])))
    assert index.rebuilds == 1
    present = dict(enumerate(points))
    for slot in range(6):
        present[slot] = grid_point(100 + slot, 7)
        index.move(slot, to_xyz(*present[slot]))
    for _ in range(20):
        slot = index.add(to_xyz(*grid_point(-50, 3)))
        present[slot] = grid_point(-50, 3)
    assert index.rebuilds >= 3
    check_within(index, present, VICTIM)
