"""Who is sent where: the dispatch plan for one cardiac arrest, as a pure function.

`select_plan` takes the victim's position, the time of the call, the responder and AED pools and
the policy, and returns a `Plan`; it reads no clock, database or network.

1. Responders: the alertable ones within the search radius, which widens step by step up to the
   largest radius while fewer than `min_responders` are found; at most `max_alerted`, nearest first.
2. AEDs: up to `max_aeds` nearest within `aed_search_radius_m` that are deployable at the time of
   the call: readiness `ready` (or `unverified` when the policy allows it, flagged), not in use,
   public, and open day and night (or open at that moment when the policy allows it).
   In a deployment with several regions: only AEDs of the call's region or of a region that
   shares AEDs with it, each AED's opening hours read in its own region's time zone.
3. Roles: the nearest responder always goes straight to the victim. For the AEDs, the responders
   who would bring each one fastest (responder -> AED -> victim) are chosen by an optimal
   assignment (`scipy.optimize.linear_sum_assignment`), so no AED's fetcher is taken greedily by
   another. Then the nearest remaining go to the victim until a `cpr_share` of the alerted do;
   everyone else is sent via the AED they would bring fastest, as backup fetchers.

Responders come from the call's region and from regions that share responders with it, and
must have what the call needs (`CallNeeds`: medical training for some incident types, the
paediatric competence for an infant where the region alerts for infants). Every assignment
says why the responder was chosen (`Assignment.reasons`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from scipy.optimize import linear_sum_assignment

from alarm_core.geo import TravelModel, chord_to_arc, to_xyz
from alarm_core.policy import PAEDIATRIC, UNDER_ONE, AedAccessPolicy, DispatchPolicy
from alarm_core.pools import AedPool, AedState, ResponderPool
from fleet.access import accessible_at, is_always_open
from fleet.regions import Region, RegionMap


class Role:
    CPR = "cpr"
    FETCH_AED = "fetch_aed"


class Why:
    """Codes of `Assignment.reasons`: why a responder was chosen for what."""

    NEAREST = "nearest"
    """The nearest suitable responder: always sent straight to the victim."""
    CPR_SHARE = "cpr_share"
    """Among the nearest, sent straight to the victim (the policy's `cpr_share`)."""
    CPR_NO_AED = "cpr_no_aed"
    """Sent straight to the victim: no AED can be fetched for this call."""
    FASTEST_WITH_AED = "fastest_with_aed"
    """The AED's designated fetcher: brings it to the victim fastest."""
    BACKUP_FETCHER = "backup_fetcher"
    """Sent via the AED they would bring fastest, in case its fetcher declines."""
    MEDICAL = "medical_training"
    """The call's incident type is one to which only medically trained responders go."""
    PAEDIATRIC = "paediatric_competence"
    """An infant: the region alerts only responders with paediatric life support."""
    CROSS_BORDER = "cross_border"
    """A responder of a neighbouring region that shares its responders with this one."""


@dataclass(frozen=True)
class CallNeeds:
    """What a call asks of every responder alerted for it."""

    medical: bool = False
    competence: str | None = None

    def met_by(self, medical: bool, competences: frozenset[str]) -> bool:
        """Whether a responder with this training and these competences may be alerted."""
        return (medical or not self.medical) and \
            (self.competence is None or self.competence in competences)

    def reasons(self) -> tuple[str, ...]:
        return ((Why.MEDICAL,) if self.medical else ()) + \
            ((Why.PAEDIATRIC,) if self.competence == PAEDIATRIC else ())


def infant_call(exclusions: tuple[str, ...] | list[str], policy: DispatchPolicy) -> bool:
    """Whether a call excluded only for the victim's age (under one year) still alerts, as
    an infant call, because the region alerts responders with paediatric life support."""
    return policy.paediatric_under_one and list(exclusions) == [UNDER_ONE]


def call_needs(policy: DispatchPolicy, incident_type: str | None, infant: bool) -> CallNeeds:
    """The needs of a call of this type (an infant call only where the policy alerts for it)."""
    return CallNeeds(medical=(incident_type or "cardiac_arrest")
                     in policy.medical_only_incident_types,
                     competence=PAEDIATRIC if infant else None)


@dataclass(frozen=True)
class Assignment:
    """One alerted responder: what they are asked to do and how long it should take."""

    responder_id: str
    role: str
    aed_id: str | None
    distance_m: float
    """Straight-line distance to the victim."""
    eta_s: float
    """Expected seconds from the alert to arriving at the victim (via the AED when fetching)."""
    designated: bool = False
    """The AED's chosen fetcher (the others sent via it are backups)."""
    reasons: tuple[str, ...] = ()
    """Why this responder, and why this role (`Why` codes; `cross_border:<region>`)."""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.responder_id, "role": self.role, "aed_id": self.aed_id,
                "distance_m": round(self.distance_m, 1), "eta_s": round(self.eta_s, 1),
                "designated_fetcher": self.designated, "why": list(self.reasons)}


@dataclass(frozen=True)
class ChosenAed:
    id: str
    lat: float
    lon: float
    distance_m: float
    readiness: str
    access: str
    """`always_open` or `open`: why it may be fetched at the time of the call."""
    fetcher_id: str | None
    eta_s: float | None
    """Expected seconds from the alert until its fetcher brings it to the victim."""

    @property
    def unverified(self) -> bool:
        return self.readiness == "unverified"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "lat": self.lat, "lon": self.lon,
                "distance_m": round(self.distance_m, 1), "readiness": self.readiness,
                "unverified": self.unverified, "access": self.access,
                "fetcher_id": self.fetcher_id,
                "eta_s": None if self.eta_s is None else round(self.eta_s, 1)}


@dataclass(frozen=True)
class Plan:
    """The dispatch decision for one incident."""

    lat: float
    lon: float
    at: datetime
    radius_m: float
    responders: tuple[Assignment, ...]
    aeds: tuple[ChosenAed, ...]
    first_cpr_s: float | None
    first_aed_s: float | None
    skipped_aeds: dict[str, str] = field(default_factory=dict)
    """Nearer AEDs that were passed over, with the reason (`not_ready`, `in_use`, `closed`, ...)."""
    selection: dict[str, Any] = field(default_factory=dict)
    """What the choice was made under: the call's region, its needs, the regions drawn on."""

    def to_json(self) -> dict[str, Any]:
        return {
            "victim": {"lat": self.lat, "lon": self.lon},
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "radius_m": self.radius_m,
            "responders": [a.to_json() for a in self.responders],
            "aeds": [a.to_json() for a in self.aeds],
            "counts": {"alerted": len(self.responders),
                       "cpr": sum(a.role == Role.CPR for a in self.responders),
                       "fetch_aed": sum(a.role == Role.FETCH_AED for a in self.responders),
                       "aeds": len(self.aeds)},
            "expected_first_cpr_s": _round(self.first_cpr_s),
            "expected_first_aed_s": _round(self.first_aed_s),
            "skipped_aeds": self.skipped_aeds,
            **({"selection": self.selection} if self.selection else {}),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def select_plan(lat: float, lon: float, at: datetime, responders: ResponderPool,
                aeds: AedPool, policy: DispatchPolicy, tz_name: str = "Europe/Amsterdam",
                country: str | None = "NL", *,
                exclude_responders: frozenset[str] = frozenset(),
                exclude_aeds: frozenset[str] = frozenset(),
                regions: RegionMap | None = None, region: Region | None = None,
                needs: CallNeeds = CallNeeds()) -> Plan:
    """The plan for a cardiac arrest at (lat, lon) called in at `at` (aware), leaving out the
    excluded responders and AEDs. With `regions` and the call's `region`, that region's
    policy and time zone hold (not `policy`, `tz_name`, `country`)."""
    responder_regions: frozenset[str] | None = None
    aed_regions: frozenset[str] | None = None
    if region is not None:
        policy, tz_name, country = region.dispatch, region.timezone, region.country
        if regions is not None and not regions.single:
            responder_regions = regions.responder_regions_for(region)
            aed_regions = regions.aed_regions_for(region)
    local = at.astimezone(ZoneInfo(tz_name))
    slots, distances = responders.near(lat, lon, policy.max_search_radius_m, local)
    if responder_regions is not None or needs.medical or needs.competence is not None:
        keep = responders.suited_mask(slots, responder_regions, needs.medical, needs.competence)
        slots, distances = slots[keep], distances[keep]
    if exclude_responders:
        keep = np.array([responders.ids[s] not in exclude_responders for s in slots.tolist()],
                        dtype=bool)
        slots, distances = slots[keep], distances[keep]
    radius, count = search_radius(distances, policy)
    slots, distances = slots[:count], distances[:count]

    chosen, skipped = choose_aeds(lat, lon, at, aeds, policy, tz_name, country, exclude_aeds,
                                  regions=regions if aed_regions is not None else None,
                                  allowed_regions=aed_regions)
    travel = TravelModel(policy.speed_mps, policy.turnout_s)
    ids = [responders.ids[int(s)] for s in slots]
    positions = np.array([responders.index.position(int(s)) for s in slots]).reshape(-1, 3)
    plan = assign_roles(lat, lon, at, radius, ids, positions, distances, chosen, aeds, travel,
                        policy, skipped)
    if region is None:
        return plan
    extra = needs.reasons()
    assignments = plan.responders
    if extra or responder_regions is not None:
        home = {rid: responders.region_of(int(s)) for rid, s in zip(ids, slots.tolist(),
                                                                     strict=True)}
        assignments = tuple(
            replace(a, reasons=a.reasons + extra + border)
            if (border := _border(home[a.responder_id], region)) or extra else a
            for a in plan.responders)
    return replace(plan, responders=assignments, selection={
        "region": region.code, "needs": list(extra),
        "responder_regions": sorted(responder_regions or {region.code}),
        "aed_regions": sorted(aed_regions or {region.code})})


def _border(home: str | None, region: Region | None) -> tuple[str, ...]:
    if region is None or home is None or home == region.code:
        return ()
    return (f"{Why.CROSS_BORDER}:{home}",)


def search_radius(distances: np.ndarray, policy: DispatchPolicy) -> tuple[float, int]:
    """The radius the search stops at, and how many of the candidates (distances ascending)
    are alerted: the first radius step with at least `min_responders`, else the largest;
    at most `max_alerted`."""
    radius = policy.max_search_radius_m
    for step in policy.radius_steps():
        if int(np.searchsorted(distances, step, side="right")) >= policy.min_responders:
            radius = step
            break
    return radius, min(int(np.searchsorted(distances, radius, side="right")),
                       policy.max_alerted)


def _aed_id(aed_ids: dict[int, str], column: int | None) -> str | None:
    return None if column is None else aed_ids[column]


def choose_aeds(lat: float, lon: float, at: datetime, aeds: AedPool, policy: DispatchPolicy,
                tz_name: str, country: str | None, exclude: frozenset[str] = frozenset(), *,
                regions: RegionMap | None = None, allowed_regions: frozenset[str] | None = None,
                ) -> tuple[list[tuple[int, float, str]], dict[str, str]]:
    """Up to `max_aeds` deployable AEDs nearest the victim: (slot, distance, access reason).

    With `regions`: only AEDs of the `allowed_regions`, each read in its region's time zone."""
    slots, distances = aeds.index.within(to_xyz(lat, lon), policy.aed_search_radius_m)
    chosen: list[tuple[int, float, str]] = []
    skipped: dict[str, str] = {}
    for slot, distance in zip(slots.tolist(), distances.tolist(), strict=True):
        if len(chosen) == policy.max_aeds:
            break
        entry = aeds.entries[slot]
        zone, holidays = tz_name, country
        home = None if regions is None else regions.get(entry.region)
        if home is not None:
            zone, holidays = home.timezone, home.country
        if entry.id in exclude:
            reason: str | None = "refuted"
        elif regions is not None and (home is None or home.code not in (allowed_regions or ())):
            reason = "other_region"
        else:
            reason = _not_deployable(slot, aeds, policy, at, zone, holidays)
        if reason is None:
            chosen.append((slot, distance, "always_open" if is_always_open(entry.opening_hours)
                           else "open"))
        elif len(skipped) < 20:
            skipped[entry.id] = reason
    return chosen, skipped


def _not_deployable(slot: int, aeds: AedPool, policy: DispatchPolicy, at: datetime,
                    tz_name: str, country: str | None) -> str | None:
    entry = aeds.entries[slot]
    return not_deployable_reason(AedState.NAMES[int(aeds.state[slot])], bool(aeds.in_use[slot]),
                                 entry.public, entry.opening_hours, at, policy, tz_name, country)


def not_deployable_reason(readiness: str, in_use: bool, public: bool,
                          opening_hours: str | None, at: datetime, policy: DispatchPolicy,
                          tz_name: str, country: str | None) -> str | None:
    """Why an AED must not be sent to a call at `at`, or None when it may: the one rule for
    the pools' choice and for the database's confirmation of it."""
    if readiness == "unverified":
        if not policy.allow_unverified_aeds:
            return "unverified"
    elif readiness != "ready":
        return "not_ready"
    if in_use:
        return "in_use"
    if not public:
        return "private_access"
    if is_always_open(opening_hours):
        return None
    if policy.aed_access is AedAccessPolicy.ALWAYS_OPEN:
        return "not_always_open"
    access = accessible_at("public", opening_hours, at, tz_name, country)
    return None if access.accessible else access.reason


def assign_roles(lat: float, lon: float, at: datetime, radius: float, ids: list[str],
                 positions: np.ndarray, distances: np.ndarray,
                 chosen: list[tuple[int, float, str]], aeds: AedPool, travel: TravelModel,
                 policy: DispatchPolicy, skipped: dict[str, str] | None = None) -> Plan:
    """Roles for responders sorted nearest first (see the module's description)."""
    n = len(ids)
    direct = travel.seconds(distances)
    roles: list[str] = [Role.CPR] * n
    why: list[str] = [Why.NEAREST] + [Why.CPR_NO_AED] * (n - 1)
    aed_of: list[int | None] = [None] * n
    designated = [False] * n
    eta = direct.copy()
    kept: list[ChosenAed] = []
    fetchers = n - 1  # the nearest responder always starts CPR
    if chosen and fetchers > 0:
        aed_xyz = np.array([aeds.index.position(slot) for slot, _d, _a in chosen])
        aed_to_victim = np.array([d for _s, d, _a in chosen])
        leg = chord_to_arc(np.linalg.norm(positions[:, None, :] - aed_xyz[None, :, :], axis=2))
        via = travel.seconds(leg + aed_to_victim[None, :])
        rows, cols = linear_sum_assignment(via[1:])
        usable = sorted(int(c) for c in cols)
        fetcher_of = {int(c): int(r) + 1 for r, c in zip(rows, cols, strict=True)}
        for c in usable:
            r = fetcher_of[c]
            roles[r], aed_of[r], designated[r], eta[r] = Role.FETCH_AED, c, True, via[r, c]
            why[r] = Why.FASTEST_WITH_AED
        n_cpr = max(1, round(n * policy.cpr_share))
        cpr = 0
        for r in range(n):
            if designated[r]:
                continue
            if cpr < n_cpr:
                cpr += 1
                if r:
                    why[r] = Why.CPR_SHARE
                continue
            best = min(usable, key=lambda c: (float(via[r, c]), c))  # noqa: B023
            roles[r], aed_of[r], eta[r] = Role.FETCH_AED, best, via[r, best]
            why[r] = Why.BACKUP_FETCHER
        for c in usable:
            slot, distance, access = chosen[c]
            entry = aeds.entries[slot]
            state = AedState.NAMES[int(aeds.state[slot])]
            r = fetcher_of[c]
            kept.append(ChosenAed(entry.id, entry.lat, entry.lon, distance, state, access,
                                  ids[r], float(via[r, c])))
    aed_ids = {c: aeds.entries[chosen[c][0]].id for c in range(len(chosen))}
    assignments = tuple(
        Assignment(ids[r], roles[r], _aed_id(aed_ids, aed_of[r]),
                   float(distances[r]), float(eta[r]), designated[r], (why[r],))
        for r in range(n))
    cpr_times = [a.eta_s for a in assignments if a.role == Role.CPR]
    return Plan(lat=lat, lon=lon, at=at, radius_m=radius, responders=assignments,
                aeds=tuple(kept), first_cpr_s=min(cpr_times) if cpr_times else None,
                first_aed_s=min((a.eta_s for a in kept if a.eta_s is not None), default=None),
                skipped_aeds=dict(skipped or {}))

