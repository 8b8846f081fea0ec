"""The alarm core service: incident intake, alerts through the outbox, answers, and what follows.

Decisions are the pure functions of `selection.py` and `responders.py`; this module stores them.
Every change and the messages it causes are written in one transaction (the outbox pattern), so
a crash never loses or doubles an alert: the relay (`relay.py`) publishes what was committed.
The in-memory pools are a fast pre-filter; what a plan chooses is checked against the database
inside the transaction before anyone is alerted, so a stale pool never sends a not-ready AED.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
from dateutil.relativedelta import relativedelta
from sqlalchemy import delete, func, insert, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from alarm_core import inbox, loading
from alarm_core.aftercall import answer_questionnaire
from alarm_core.errors import Conflict, NotFound, Refused
from alarm_core.geo import chord_to_arc
from alarm_core.models import (
    Incident,
    IncidentAed,
    IncidentResponder,
    OutboxMessage,
    Questionnaire,
    Responder,
    ResponderLocation,
)
from alarm_core.policy import DispatchPolicy
from alarm_core.pools import AedPool, ResponderEntry, ResponderPool
from alarm_core.responders import (
    NOT_ALERTABLE,
    certificate_reminder_due,
    certificate_valid_until,
    not_alertable_reason,
)
from alarm_core.selection import (
    CallNeeds,
    Plan,
    Role,
    call_needs,
    infant_call,
    not_deployable_reason,
    select_plan,
)
from alarm_core.wire import (
    IncidentRequest,
    alert_payload,
    cancel_payload,
    rfc3339,
)
from fleet.db import session_scope
from fleet.ingest.readiness import ReadinessRecorder
from fleet.models import Aed, Cabinet, DeviceEvent, ReadinessDeclaration, TelemetryState, utcnow
from fleet.municipalities import MunicipalityLocator
from fleet.region_store import home_regions, region_map
from fleet.regions import Region, RegionMap, everywhere
from fleet.registry import municipality_locator, readiness_of
from fleet.settings import Settings

logger = logging.getLogger(__name__)

OPEN_STATES = ("dispatched", "no_responders")
PICK_UP_EVENTS = ("door_opened", "aed_removed")
MAX_REPLANS = 8
URGENT = ("alert", "cancel")
REMINDERS_PER_RUN = 5_000
REMINDER_CHUNK = 100
REMINDER_PAUSE_S = 0.05
FULL_REFRESH_ABOVE = 2_000
"""More changes than this at once: the pool is rebuilt rather than updated entry by entry."""


class Committed(NamedTuple):
    """An MQTT message of the outbox, committed, with its id: what the relay sends."""

    id: int
    topic: str
    payload: str


@dataclass
class IntakeResult:
    incident: Incident
    created: bool
    plan: Plan | None


@dataclass
class AnswerResult:
    status: str
    """The responder's status after the answer: accepted, declined or cancelled."""
    role: str
    aed_id: str | None
    cancelled: list[str] = field(default_factory=list)
    """Responders told to stand down because enough are on their way."""


class AlarmCore:
    """One alarm core: its pools, and every operation that changes an incident."""

    def __init__(self, engine: Any, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.policy = settings.dispatch
        self.responders = self._new_responder_pool([])
        self.aeds = AedPool()
        self._lock = threading.RLock()
        self._locator: MunicipalityLocator | None = None
        self.regions = RegionMap([everywhere(settings.dispatch, settings.readiness,
                                             settings.timezone, settings.country)])
        self._refreshed_at: datetime | None = None
        self._full_at: datetime | None = None
        self.outbox_written: Callable[[list[Committed]], None] = lambda _fresh: None
        """Called after a commit that wrote outbox messages: the relay wakes up, and takes the
        alerts handed to it at once instead of reading them back."""

    def writing(self) -> threading.RLock:
        """Held around every write transaction of this process.

        One writer at a time: the pools change with the transactions that change the
        database, and on SQLite no thread sleeps in the busy handler behind another's commit
        (which made some intakes wait hundreds of milliseconds).
        """
        return self._lock

    # -- pools --------------------------------------------------------------------------------

    def load(self, now: datetime) -> tuple[int, int]:
        """Build both pools from the database; returns (responders, AEDs)."""
        with Session(self.engine) as session:
            regions = region_map(session, self.settings)
            responders = self._new_responder_pool(loading.responder_entries(
                session, self.settings, now))
            aeds = AedPool()
            aeds.load(loading.aed_entries(session, self.settings, now))
            locator = municipality_locator(session)
        with self._lock:
            self.responders, self.aeds, self._locator = responders, aeds, locator
            self.regions = regions
        self._refreshed_at = self._full_at = now
        logger.info("alarm core loaded %d responders and %d AEDs", len(responders), len(aeds))
        return len(responders), len(aeds)

    def _new_responder_pool(self, entries: list[ResponderEntry]) -> ResponderPool:
        pool = ResponderPool(self.policy, include_sms=bool(self.settings.alarm.sms_gateway_url))
        pool.load(entries)
        return pool

    def refresh(self, now: datetime) -> None:
        """Take in what changed since the last refresh; every few minutes re-evaluate all AEDs
        (expiries and declarations run out with time) and re-place responders.

        Reading and building happen outside the lock; only applying the result holds it, so
        an incident never waits for a refresh. Whatever changes meanwhile is caught by the
        checks of the intake transaction and by the next refresh.
        """
        since = (self._refreshed_at or now) - timedelta(seconds=5)  # clock skew between writers
        full = self._full_at is None or (now - self._full_at) >= timedelta(
            minutes=self.settings.alarm.full_refresh_minutes)
        with Session(self.engine) as session:
            regions = region_map(session, self.settings)
            if regions is not self.regions:
                # Areas or rules changed: every AED and responder may now be in another region.
                logger.info("regions changed: %s", ", ".join(r.code for r in regions))
                session.close()
                self.load(now)
                return
            changed = loading.changed_aed_ids(session, since)
            all_aeds = full or len(changed) > FULL_REFRESH_ABOVE
            aed_list = loading.aed_entries(session, self.settings, now,
                                           None if all_aeds else changed)
            responder_list = loading.responder_entries(session, self.settings, now, since,
                                                       reposition=full)
            all_responders = len(responder_list) > max(FULL_REFRESH_ABOVE,
                                                       len(self.responders) // 10)
            if all_responders:
                responder_list = loading.responder_entries(session, self.settings, now)
        fresh_aeds = AedPool() if all_aeds else None
        if fresh_aeds is not None:
            fresh_aeds.load(aed_list)
        fresh_responders = self._new_responder_pool(responder_list) if all_responders else None
        with self._lock:
            if fresh_aeds is not None:
                self.aeds = fresh_aeds
            else:
                for entry in aed_list:
                    self.aeds.upsert(entry)
                for gone in set(changed) - {e.id for e in aed_list}:
                    self.aeds.remove(gone)
            if fresh_responders is not None:
                self.responders = fresh_responders
            else:
                for responder in responder_list:
                    self.responders.upsert(responder)
        if full:
            self._full_at = now
        self._refreshed_at = now

    # -- intake -------------------------------------------------------------------------------

    def check_location(self, lat: float, lon: float) -> Region:
        """The region of a victim position; refused outside the service area."""
        region = self.regions.region_at(lat, lon)
        if region is None:
            raise Refused("outside_service_area",
                          f"{lat:.5f},{lon:.5f} is in none of the served regions")
        if not self.regions.single:
            return region
        if self._locator is not None and len(self._locator):
            if self._locator.locate(lat, lon) is None:
                raise Refused("outside_service_area",
                              f"{lat:.5f},{lon:.5f} is in none of the served municipalities")
            return region
        west, south, east, north = self.settings.alarm.service_area
        if not (west <= lon <= east and south <= lat <= north):
            raise Refused("outside_service_area",
                          f"{lat:.5f},{lon:.5f} is outside the service area")
        return region

    def policy_of(self, incident: Incident) -> DispatchPolicy:
        """The dispatch policy an incident is handled under: its region's."""
        region = self.regions.get(incident.region)
        return self.policy if region is None else region.dispatch

    def known_exclusions(self) -> dict[str, str]:
        """Exclusion codes any region takes (each call is checked against its own region's)."""
        known: dict[str, str] = {}
        for region in self.regions:
            known.update(region.dispatch.exclusions())
        return known

    def plan(self, lat: float, lon: float, at: datetime, incident_type: str | None = None,
             infant: bool = False) -> Plan:
        """The plan for a call at `at`, from the pools alone (the dry run)."""
        region = self.regions.region_at(lat, lon)
        with self._lock:
            if region is None:
                return select_plan(lat, lon, at, self.responders, self.aeds, self.policy,
                                   self.settings.timezone, self.settings.country)
            return select_plan(lat, lon, at, self.responders, self.aeds, self.policy,
                               regions=self.regions, region=region,
                               needs=call_needs(region.dispatch, incident_type, infant))

    def intake(self, caller: str, request: IncidentRequest, now: datetime,
               caller_region: str | None = None) -> IntakeResult:
        """Take a cardiac-arrest call: store it, choose, alert; idempotent on the reference.

        `caller_region`: the dispatch centre's region (from its token); its calls must lie
        there."""
        if request.lat is None or request.lon is None:
            raise Refused("address_not_geocoded",
                          "this alarm core has no geocoder: send the victim's lat and lon")
        called_at = request.called_at or now
        if called_at > now + timedelta(minutes=5):
            raise Refused("invalid_field", "called_at is in the future")
        fingerprint = request.fingerprint()
        started = time.perf_counter()
        with self.writing(), session_scope(self.engine) as session:
            existing = session.execute(
                sa_select(Incident).where(col(Incident.caller) == caller,
                                          col(Incident.reference) == request.reference)
            ).scalar_one_or_none()
            if existing is not None:
                if existing.request_sha256 != fingerprint:
                    raise Conflict("reference_conflict",
                                   f"reference {request.reference} was already used for a "
                                   "different incident")
                return IntakeResult(existing, False, None)
            region = self.check_location(request.lat, request.lon)
            if caller_region is not None and caller_region != region.code:
                raise Refused("outside_caller_region",
                              f"{request.lat:.5f},{request.lon:.5f} lies in {region.code}, not "
                              f"in {caller_region}: the dispatch centre of {region.code} "
                              "takes this call")
            if now - called_at > timedelta(minutes=self.policy.incident_timeout_minutes):
                raise Refused("call_too_old", "called_at is older than the incident timeout")
            policy = region.dispatch
            unknown = sorted(set(request.exclusions) - set(policy.exclusions()))
            if unknown:
                raise Refused("unknown_exclusion",
                              f"{region.code} knows no exclusion {', '.join(unknown)}; known: "
                              f"{', '.join(policy.exclusions())}")
            incident = Incident(
                id=f"inc-{secrets.token_hex(6)}", caller=caller, reference=request.reference,
                request_sha256=fingerprint, lat=request.lat, lon=request.lon,
                address=request.address, called_at=called_at, received_at=now,
                source=request.source, exclusions=" ".join(request.exclusions),
                incident_type=request.incident_type,
                region=None if self.regions.single else region.code,
                state="excluded", outcome="excluded")
            infant = infant_call(request.exclusions, policy)
            if request.exclusions and not infant:
                session.add(incident)
                return IntakeResult(incident, True, None)
            needs = call_needs(policy, request.incident_type, infant)
            plan = self._checked_plan(session, incident.id, request.lat, request.lon, now,
                                      region, needs)
            incident.state = incident.outcome = "dispatched" if plan.responders else \
                "no_responders"
            incident.plan = json.dumps(plan.to_json())
            incident.expected_first_cpr_s = plan.first_cpr_s
            incident.expected_first_aed_s = plan.first_aed_s
            session.add(incident)
            session.flush()
            fresh = self._store_plan(session, incident, plan, now)
        for chosen in plan.aeds:
            self.aeds.set_in_use(chosen.id, True)
        for assignment in plan.responders:
            self.responders.set_flag(assignment.responder_id, "busy", True)
        self.outbox_written(fresh)
        if plan.aeds:
            # After the alerts are on their way: the AEDs' readiness now says `in_use`. The
            # call is dispatched whatever happens here; the sweep records it otherwise.
            try:
                with self.writing(), session_scope(self.engine) as session:
                    ReadinessRecorder(session, self.settings, now).refresh(
                        [a.id for a in plan.aeds], "dispatched")
            except Exception:
                logger.exception("incident %s: readiness of its AEDs not recorded", incident.id)
        logger.info("incident %s (%s): %d responders, %d AEDs alerted (%.1f ms)", incident.id,
                    request.reference, len(plan.responders), len(plan.aeds),
                    (time.perf_counter() - started) * 1000)
        return IntakeResult(incident, True, plan)

    def _checked_plan(self, session: Session, incident_id: str, lat: float, lon: float,
                      now: datetime, region: Region, needs: CallNeeds) -> Plan:
        """A plan whose every AED and responder the database confirms, claimed for this incident.

        The pools may be seconds behind the database. What they got wrong is corrected in
        them, whoever the database refutes is left out, and the plan is made again; claims are
        compare-and-sets, so an AED or a responder taken meanwhile is left out in the same way.
        """
        left_out_aeds: set[str] = set()
        left_out_responders: set[str] = set()
        for _attempt in range(MAX_REPLANS):
            plan = select_plan(lat, lon, now, self.responders, self.aeds, self.policy,
                               exclude_responders=frozenset(left_out_responders),
                               exclude_aeds=frozenset(left_out_aeds),
                               regions=self.regions, region=region, needs=needs)
            stale_aeds, refuted_aeds = self._check_aeds(session, plan, now, region)
            refuted_responders = self._check_responders(session, plan, now, region, needs)
            left_out_aeds |= refuted_aeds
            left_out_responders |= refuted_responders
            if stale_aeds or refuted_aeds or refuted_responders:
                continue
            taken_aeds, taken_responders = self._claim(session, plan, incident_id, now)
            if not taken_aeds and not taken_responders:
                return plan
            left_out_aeds |= taken_aeds
            left_out_responders |= taken_responders
        raise Refused("dispatch_unstable", "the registry kept changing while planning; "
                      "try again", status=503)

    def _claim(self, session: Session, plan: Plan, incident_id: str,
               now: datetime) -> tuple[set[str], set[str]]:
        """Mark the plan's AEDs in use and its responders busy, each only if still free;
        returns what was taken meanwhile (and then releases this attempt's claims)."""
        taken_aeds = set()
        for chosen in plan.aeds:
            claimed = session.execute(
                update(Aed).where(col(Aed.id) == chosen.id, col(Aed.in_use_incident).is_(None))
                .values(in_use_incident=incident_id, updated_at=now))
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                taken_aeds.add(chosen.id)
                self.aeds.set_in_use(chosen.id, True)
        ids = [a.responder_id for a in plan.responders]
        if ids:
            # coalesce(): the planner must find the rows by id, not by the index on
            # busy_incident, where "IS NULL" matches nearly the whole register.
            session.execute(update(Responder).where(
                col(Responder.id).in_(ids), func.coalesce(col(Responder.busy_incident), "") == "")
                .values(busy_incident=incident_id, updated_at=now))
            mine = set(session.execute(sa_select(col(Responder.id)).where(
                col(Responder.id).in_(ids),
                col(Responder.busy_incident) == incident_id)).scalars())
            taken_responders = set(ids) - mine
        else:
            taken_responders = set()
        for responder_id in taken_responders:
            self.responders.set_flag(responder_id, "busy", True)
        if taken_aeds or taken_responders:
            session.execute(update(Aed).where(col(Aed.in_use_incident) == incident_id)
                            .values(in_use_incident=None))
            session.execute(update(Responder).where(col(Responder.busy_incident) == incident_id)
                            .values(busy_incident=None))
        return taken_aeds, taken_responders

    def _check_aeds(self, session: Session, plan: Plan, now: datetime,
                    region: Region) -> tuple[set[str], set[str]]:
        """AEDs whose pool entry was stale (corrected), and those the database refutes."""
        if not plan.aeds:
            return set(), set()
        fresh = readiness_of(session, self.settings, now, [a.id for a in plan.aeds])
        allowed = self.regions.aed_regions_for(region)
        stale, refuted = set(), set()
        for chosen in plan.aeds:
            if chosen.id not in fresh:
                self.aeds.remove(chosen.id)
                refuted.add(chosen.id)
                continue
            aed, readiness = fresh[chosen.id]
            state = readiness.state.value
            home = self.regions.region_at(aed.lat, aed.lon)
            if home is None or home.code not in allowed or not_deployable_reason(
                    state, aed.in_use_incident is not None, aed.access == "public",
                    aed.opening_hours, now, region.dispatch, home.timezone,
                    home.country) is not None:
                refuted.add(chosen.id)
            elif state != chosen.readiness:
                # Deployable, but the alert must say what the database says (`unverified`).
                stale.add(chosen.id)
            if chosen.id in refuted or chosen.id in stale:
                self.aeds.upsert(loading.aed_entry(aed, state,
                                                   None if home is None else home.code))
        return stale, refuted

    def _check_responders(self, session: Session, plan: Plan, now: datetime, region: Region,
                          needs: CallNeeds) -> set[str]:
        """Responders the database says must not be alerted (their pool entries corrected):
        not alertable now, or no longer of a region or with the training the call needs."""
        if not plan.responders:
            return set()
        ids = [a.responder_id for a in plan.responders]
        rows = {row.id: row for row in session.execute(
            sa_select(*loading.RESPONDER_COLUMNS).where(col(Responder.id).in_(ids)))}
        local = now.astimezone(ZoneInfo(region.timezone))
        present = list(rows.values())
        homes = dict(zip([row.id for row in present],
                         home_regions(present, self.regions), strict=True))
        allowed = None if self.regions.single else self.regions.responder_regions_for(region)
        refuted = set()
        for responder_id in ids:
            row = rows.get(responder_id)
            if row is None:
                self.responders.remove(responder_id)
                refuted.add(responder_id)
            elif not_alertable_reason(loading.responder_facts(row), local, self.policy) \
                    or (row.channel != "app" and not self.responders.include_sms) \
                    or not needs.met_by(row.training == "medical",
                                        loading.competences_of(row.competences)) \
                    or (allowed is not None and homes[responder_id] not in allowed):
                home = homes[responder_id]
                work = loading.at_work(self.settings, now, self.regions.get(home))
                self.responders.upsert(loading.responder_entry(row, now, work, self.policy,
                                                               home))
                refuted.add(responder_id)
        return refuted

    def _store_plan(self, session: Session, incident: Incident, plan: Plan,
                    now: datetime) -> list[Committed]:
        """The plan's rows and one alert per responder, as a few multi-row inserts."""
        channels = self._channels(session, [a.responder_id for a in plan.responders])
        for chosen in plan.aeds:
            session.add(IncidentAed(incident_id=incident.id, aed_id=chosen.id,
                                    distance_m=chosen.distance_m, unverified=chosen.unverified,
                                    fetcher_id=chosen.fetcher_id, fetcher_since=now))
        session.flush()
        parts = self._aed_parts(session, incident.id)
        if not plan.responders:
            return []
        session.execute(insert(IncidentResponder), [
            {"incident_id": incident.id, "responder_id": a.responder_id, "role": a.role,
             "aed_id": a.aed_id, "designated": a.designated, "distance_m": a.distance_m,
             "eta_s": a.eta_s, "status": "alerted", "alerted_at": now}
            for a in plan.responders])
        victim = {"lat": incident.lat, "lon": incident.lon, "address": incident.address}
        rows = []
        for a in plan.responders:
            channel = channels.get(a.responder_id, "app")
            rows.append(self._outbox_row(a.responder_id, "alert", alert_payload(
                incident.id, a.role, victim, None if a.aed_id is None else parts[a.aed_id],
                now, channel == "app"), channel))
        inserted = session.execute(
            insert(OutboxMessage).returning(col(OutboxMessage.id), sort_by_parameter_order=True),
            rows)
        return [Committed(row_id, row["topic"], row["payload"])
                for (row_id,), row in zip(inserted, rows, strict=True)
                if row["channel"] == "mqtt"]

    # -- messages -----------------------------------------------------------------------------

    def _topic(self, responder_id: str, kind: str) -> str:
        return f"{self.settings.alarm.topic_root}/{responder_id}/{kind}"

    def _outbox_row(self, responder_id: str, kind: str, payload: dict[str, Any],
                    channel: str) -> dict[str, Any]:
        return {"channel": "mqtt" if channel == "app" else "sms",
                "topic": self._topic(responder_id, kind),
                "incident_id": payload.get("incident_id"),
                "payload": json.dumps(payload, separators=(",", ":")),
                "urgent": kind in URGENT, "created_at": utcnow(), "attempts": 0}

    def _send(self, session: Session, responder_id: str, kind: str, payload: dict[str, Any],
              channel: str) -> None:
        session.execute(insert(OutboxMessage),
                        [self._outbox_row(responder_id, kind, payload, channel)])

    def _aed_parts(self, session: Session, incident_id: str) -> dict[str, dict[str, Any]]:
        """The `aed` part of an alert for each AED sent to the incident."""
        rows = session.execute(sa_select(Aed, col(IncidentAed.unverified)).join(
            IncidentAed, col(IncidentAed.aed_id) == Aed.id).where(
            col(IncidentAed.incident_id) == incident_id)).all()
        return {aed.id: {"aed_id": aed.id, "lat": aed.lat, "lon": aed.lon,
                         "access_code": aed.cabinet_code, "location_hint": aed.location_hint,
                         "unverified": bool(unverified)} for aed, unverified in rows}

    def _send_alert(self, session: Session, incident: Incident, responder_id: str, role: str,
                    aed_part: dict[str, Any] | None, channel: str, now: datetime) -> None:
        victim = {"lat": incident.lat, "lon": incident.lon, "address": incident.address}
        self._send(session, responder_id, "alert",
                   alert_payload(incident.id, role, victim, aed_part, now, channel == "app"),
                   channel)

    def _channel(self, session: Session, responder_id: str) -> str:
        responder = session.get(Responder, responder_id)
        return "app" if responder is None else responder.channel

    def _cancel(self, session: Session, incident_id: str, alerts: Iterable[IncidentResponder],
                reason: str, now: datetime, status: str = "cancelled") -> list[str]:
        alerts = list(alerts)
        told = [alert.responder_id for alert in alerts]
        # An alert still waiting to be sent (its SMS backing off, say) must never arrive after
        # its cancel: it is withdrawn.
        session.execute(update(OutboxMessage).where(
            col(OutboxMessage.sent_at).is_(None), col(OutboxMessage.incident_id) == incident_id,
            col(OutboxMessage.topic).in_([self._topic(r, "alert") for r in told]))
            .values(sent_at=now, last_error="withdrawn: cancelled before it could be sent"))
        channels = self._channels(session, told)
        rows = [self._outbox_row(alert.responder_id, "cancel",
                                 cancel_payload(incident_id, reason),
                                 channels.get(alert.responder_id, "app")) for alert in alerts]
        if rows:
            session.execute(insert(OutboxMessage), rows)
        for alert in alerts:
            if alert.status == "alerted":
                alert.status = status
                alert.cancelled_at = now
            session.add(alert)
        return told

    def _channels(self, session: Session, responder_ids: list[str]) -> dict[str, str]:
        return dict(session.execute(  # type: ignore[arg-type]
            sa_select(col(Responder.id), col(Responder.channel)).where(
                col(Responder.id).in_(responder_ids))).all())

    # -- answers ------------------------------------------------------------------------------

    def answer(self, incident_id: str, responder_id: str, answer: str,
               now: datetime) -> AnswerResult:
        """A responder accepts or declines; enough acceptances stand the others down."""
        with self.writing(), session_scope(self.engine) as session:
            incident = self._open_incident(session, incident_id)
            alert = self._alert_of(session, incident_id, responder_id)
            responder = session.get(Responder, responder_id)
            assert responder is not None
            responder.ignored_in_row = 0  # any answer shows the profile is alive
            session.add(responder)
            if alert.status == "cancelled":
                return AnswerResult("cancelled", alert.role, alert.aed_id)
            if answer == "accept":
                result = self._accept(session, incident, alert, now)
            else:
                result = self._decline(session, incident, alert, now)
        if result.status in ("declined", "accepted"):
            self.responders.set_flag(responder_id, "busy", result.status == "accepted")
        for cancelled in result.cancelled:
            self.responders.set_flag(cancelled, "busy", False)
        self.outbox_written([])
        return result

    def _open_incident(self, session: Session, incident_id: str) -> Incident:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound("unknown_incident", f"no incident {incident_id}")
        if incident.state not in OPEN_STATES:
            raise Conflict("incident_closed", f"incident {incident_id} is {incident.state}")
        return incident

    def _alert_of(self, session: Session, incident_id: str,
                  responder_id: str) -> IncidentResponder:
        alert = session.execute(sa_select(IncidentResponder).where(
            col(IncidentResponder.incident_id) == incident_id,
            col(IncidentResponder.responder_id) == responder_id)).scalar_one_or_none()
        if alert is None:
            raise NotFound("not_alerted", f"responder {responder_id} was not alerted for "
                                          f"incident {incident_id}")
        return alert

    def _links(self, session: Session, incident_id: str) -> list[IncidentAed]:
        return list(session.execute(sa_select(IncidentAed).where(
            col(IncidentAed.incident_id) == incident_id).order_by(col(IncidentAed.id))).scalars())

    def _alerts(self, session: Session, incident_id: str) -> list[IncidentResponder]:
        return list(session.execute(sa_select(IncidentResponder).where(
            col(IncidentResponder.incident_id) == incident_id)
            .order_by(col(IncidentResponder.eta_s))).scalars())

    def _accept(self, session: Session, incident: Incident, alert: IncidentResponder,
                now: datetime) -> AnswerResult:
        if alert.status != "accepted":
            alert.status, alert.answered_at = "accepted", now
            session.add(alert)
            # On the way to this incident, whatever they answered before.
            session.execute(update(Responder).where(col(Responder.id) == alert.responder_id)
                            .values(busy_incident=incident.id, updated_at=now))
        if alert.role == Role.FETCH_AED and alert.aed_id is not None:
            link = next(li for li in self._links(session, incident.id)
                        if li.aed_id == alert.aed_id)
            if not link.fetcher_accepted:
                if link.fetcher_id != alert.responder_id:
                    self._designate(session, link, alert, now)
                link.fetcher_accepted = True
                session.add(link)
        session.flush()
        cancelled = self._stand_down_if_enough(session, incident, now)
        return AnswerResult("accepted", alert.role, alert.aed_id, cancelled)

    def _designate(self, session: Session, link: IncidentAed, alert: IncidentResponder,
                   now: datetime) -> None:
        """Make `alert`'s responder the fetcher of `link`'s AED (the former one is a backup)."""
        if link.fetcher_id is not None:
            former = self._alert_of(session, link.incident_id, link.fetcher_id)
            former.designated = False
            session.add(former)
        link.fetcher_id, link.fetcher_since, link.fetcher_accepted = alert.responder_id, now, False
        alert.designated = True
        session.add_all([link, alert])

    def _decline(self, session: Session, incident: Incident, alert: IncidentResponder,
                 now: datetime) -> AnswerResult:
        alert.status, alert.answered_at = "declined", now
        session.add(alert)
        session.execute(update(Responder).where(col(Responder.id) == alert.responder_id,
                                                col(Responder.busy_incident) == incident.id)
                        .values(busy_incident=None, updated_at=now))
        for link in self._links(session, incident.id):
            if link.fetcher_id == alert.responder_id:
                self._reassign(session, incident, link, now)
        return AnswerResult("declined", alert.role, alert.aed_id)

    def _reassign(self, session: Session, incident: Incident, link: IncidentAed,
                  now: datetime) -> None:
        """Give an AED whose fetcher declined or did not answer to the next best responder.

        First choice: someone already sent via this AED (accepted ones first, then by expected
        time); otherwise the responder who would bring it fastest (responder -> AED ->
        victim), who gets a new alert naming it. Never someone who already held it and let it
        go, and never the nearest responder, who is doing CPR.
        """
        if link.fetcher_id is not None:
            link.tried = " ".join([*link.tried.split(), link.fetcher_id])[-2000:]
        tried = set(link.tried.split())
        alerts = self._alerts(session, incident.id)
        nearest = min(alerts, key=lambda a: a.distance_m).responder_id if alerts else None
        fetchers = {li.fetcher_id for li in self._links(session, incident.id)}
        candidates = [a for a in alerts if a.status in ("alerted", "accepted")
                      and a.responder_id not in tried and a.responder_id not in fetchers
                      and not (a.responder_id == nearest and len(alerts) > 1)]
        same = sorted((a for a in candidates if a.role == Role.FETCH_AED
                       and a.aed_id == link.aed_id),
                      key=lambda a: (a.status != "accepted", a.eta_s))
        if same:
            chosen = same[0]
        elif candidates:
            chosen = min(candidates, key=lambda a: (a.status != "alerted",
                                                    self._via_metres(a.responder_id, link)))
            chosen.role, chosen.aed_id = Role.FETCH_AED, link.aed_id
            self._send_alert(session, incident, chosen.responder_id, Role.FETCH_AED,
                             self._aed_parts(session, incident.id)[link.aed_id],
                             self._channel(session, chosen.responder_id), now)
        else:
            logger.warning("incident %s: nobody left to fetch AED %s", incident.id,
                           link.aed_id)
            if link.fetcher_id is not None:
                former = self._alert_of(session, incident.id, link.fetcher_id)
                former.designated = False
                session.add(former)
            link.fetcher_id, link.fetcher_accepted = None, False
            session.add(link)
            return
        self._designate(session, link, chosen, now)
        if chosen.status == "accepted":
            link.fetcher_accepted = True
            session.add(link)
        logger.info("incident %s: AED %s reassigned to %s", incident.id, link.aed_id,
                    chosen.responder_id)

    def _via_metres(self, responder_id: str, link: IncidentAed) -> float:
        """Responder -> AED -> victim, from the responder's place in the pool."""
        slot = self.responders.slot_of.get(responder_id)
        aed_slot = self.aeds.slot_of.get(link.aed_id)
        if slot is None or aed_slot is None:
            return float("inf")
        leg = chord_to_arc(float(np.linalg.norm(self.responders.index.position(slot)
                                                - self.aeds.index.position(aed_slot))))
        return float(leg) + link.distance_m

    def _stand_down_if_enough(self, session: Session, incident: Incident,
                              now: datetime) -> list[str]:
        if incident.enough_at is not None:
            return []
        alerts = self._alerts(session, incident.id)
        links = self._links(session, incident.id)
        fetchers = {li.fetcher_id for li in links}
        cpr = sum(a.status == "accepted" and a.responder_id not in fetchers for a in alerts)
        if cpr < self.policy_of(incident).accept_target_cpr \
                or not all(li.fetcher_accepted for li in links):
            return []
        incident.enough_at = now
        session.add(incident)
        waiting = [a for a in alerts if a.status == "alerted"]
        session.execute(update(Responder).where(
            col(Responder.id).in_([a.responder_id for a in waiting]),
            col(Responder.busy_incident) == incident.id).values(busy_incident=None, updated_at=now))
        return self._cancel(session, incident.id, waiting, "enough_responders", now)

    # -- locations ----------------------------------------------------------------------------

    def record_location(self, incident_id: str, responder_id: str, lat: float, lon: float,
                        ts: datetime, now: datetime) -> None:
        """Keep an accepted responder's position on the way, at most the retention period."""
        with self.writing(), session_scope(self.engine) as session:
            self._open_incident(session, incident_id)
            alert = self._alert_of(session, incident_id, responder_id)
            if alert.status != "accepted" or alert.answered_at is None:
                raise Conflict("not_accepted", "only accepted responders are followed")
            expires = alert.answered_at + timedelta(
                minutes=self.policy.location_retention_minutes)
            if now >= expires:
                raise Conflict("tracking_ended", "a responder is followed for at most "
                               f"{self.policy.location_retention_minutes:g} minutes")
            session.add(ResponderLocation(incident_id=incident_id, responder_id=responder_id,
                                          lat=lat, lon=lon, ts=min(ts, now),
                                          expires_at=expires))

    # -- closing ------------------------------------------------------------------------------

    def close(self, incident_id: str, reason: str, now: datetime) -> Incident:
        """End an incident: everyone stands down, questionnaires go out, AEDs await return."""
        with self.writing(), session_scope(self.engine) as session:
            incident = session.get(Incident, incident_id)
            if incident is None:
                raise NotFound("unknown_incident", f"no incident {incident_id}")
            if incident.state == "closed":
                return incident
            if incident.state == "excluded":
                incident.state, incident.closed_at, incident.close_reason = "closed", now, reason
                session.add(incident)
                return incident
            alerts = self._alerts(session, incident_id)
            self._count_ignored(session, alerts, now)
            self._cancel(session, incident_id,
                         [a for a in alerts if a.status in ("alerted", "accepted")],
                         "incident_closed", now)
            session.execute(update(Responder).where(col(Responder.busy_incident) == incident_id)
                            .values(busy_incident=None, updated_at=now))
            self._send_questionnaires(session, incident_id, alerts, now)
            incident.state, incident.closed_at, incident.close_reason = "closed", now, reason
            session.add(incident)
            responders = [a.responder_id for a in alerts]
        for responder_id in responders:
            self.responders.set_flag(responder_id, "busy", False)
        self.outbox_written([])
        self._confirm_pickups(now)  # a pick-up not yet seen must hold the AED back
        self.release_aeds(now)
        return incident

    def _count_ignored(self, session: Session, alerts: list[IncidentResponder],
                       now: datetime) -> None:
        """An alarm left unanswered for longer than the fetcher timeout counts as ignored."""
        grace = timedelta(seconds=self.policy.fetcher_timeout_s)
        for alert in alerts:
            if alert.answered_at is not None:
                continue
            ended = alert.cancelled_at or now
            if ended - alert.alerted_at < grace:
                continue
            responder = session.get(Responder, alert.responder_id)
            if responder is None:
                continue
            responder.ignored_in_row += 1
            if responder.active and responder.ignored_in_row >= self.policy.inactive_after_ignored:
                responder.active = False
                responder.inactive_since = now
                responder.updated_at = now
                logger.info("responder %s flagged inactive after %d unanswered alarms",
                            responder.id, responder.ignored_in_row)
            session.add(responder)

    def _send_questionnaires(self, session: Session, incident_id: str,
                             alerts: list[IncidentResponder], now: datetime) -> None:
        expires = now + timedelta(hours=self.policy.questionnaire_open_hours)
        channels = self._channels(session, [a.responder_id for a in alerts])
        rows, posts = [], []
        for alert in alerts:
            token = secrets.token_urlsafe(24)
            session.add(Questionnaire(token=token, incident_id=incident_id,
                                      responder_id=alert.responder_id, sent_at=now,
                                      expires_at=expires))
            url = self.settings.alarm.questionnaire_url.replace("{token}", token)
            rows.append(self._outbox_row(alert.responder_id, "questionnaire",
                                         {"v": 1, "incident_id": incident_id, "url": url,
                                          "expires_at": rfc3339(expires)},
                                         channels.get(alert.responder_id, "app")))
            posts.append(inbox.Post(alert.responder_id, {"token": token, "url": url,
                                                         "expires_at": rfc3339(expires)},
                                    expires))
        if rows:
            session.execute(insert(OutboxMessage), rows)
        inbox.post_personal(session, self.settings, inbox.QUESTIONNAIRE, posts, now)

    def answer_questionnaire(self, token: str, answers: dict[str, Any], aftercare: bool,
                             now: datetime) -> Questionnaire:
        """Store a responder's answers; asking for aftercare creates a task due within 24 h."""
        with self.writing():
            return answer_questionnaire(self.engine, self.policy, token, answers, aftercare, now)

    # -- time ---------------------------------------------------------------------------------

    def tick(self, now: datetime) -> None:
        """What time does: fetchers who did not answer, pick-ups, timeouts, retention."""
        self._fetcher_timeouts(now)
        self._confirm_pickups(now)
        self._close_timed_out(now)
        self.release_aeds(now)
        self.purge_locations(now)

    def remind_certificates(self, now: datetime, limit: int = REMINDERS_PER_RUN) -> int:
        """Tell responders whose certificate runs out within the reminder window (or has run
        out) to renew it: once per certificate, on `responders/{id}/notice`.

        At most `limit` per run, in short transactions, so that a first run over a whole
        register never holds up an incident; the rest follow in the next runs.
        """
        policy = self.policy
        today = loading.local(self.settings, now).date()
        # valid_until - today <= reminder days, with valid_until = date + months - 1 day
        latest = today + relativedelta(days=policy.certificate_reminder_days + 1,
                                       months=-policy.certificate_valid_months)
        # A bound a few days wide for the database, the reminder rule itself in Python (month
        # arithmetic does not invert exactly around 29 February).
        due = (sa_select(Responder).where(
            col(Responder.certificate_date).is_not(None),
            col(Responder.certificate_date) <= latest + timedelta(days=3),
            or_(col(Responder.certificate_reminded_for).is_(None),
                col(Responder.certificate_reminded_for) != col(Responder.certificate_date))))
        if not self.responders.include_sms:  # no way to reach them yet
            due = due.where(col(Responder.channel) == "app")
        sent = 0
        after = ""
        while sent < limit:
            with self.writing(), session_scope(self.engine) as session:
                chunk = session.execute(due.where(col(Responder.id) > after)
                                        .order_by(col(Responder.id))
                                        .limit(REMINDER_CHUNK)).scalars().all()
                for responder in chunk:
                    if sent < limit and certificate_reminder_due(responder.certificate_date,
                                                                 today, policy):
                        self._remind(session, responder, today, now)
                        sent += 1
            if len(chunk) < REMINDER_CHUNK or sent >= limit:
                break
            after = chunk[-1].id
            time.sleep(REMINDER_PAUSE_S)  # let intake and the relay write in between
        if sent:
            logger.info("%d certificate reminders sent", sent)
            self.outbox_written([])
        return sent

    def _remind(self, session: Session, responder: Responder, today: date,
                now: datetime) -> None:
        assert responder.certificate_date is not None
        until = certificate_valid_until(responder.certificate_date, self.policy)
        expired = until < today
        self._send(session, responder.id, "notice",
                   {"v": 1, "kind": "certificate_expired" if expired else
                    "certificate_expiring", "valid_until": until.isoformat(),
                    "message": NOT_ALERTABLE["certificate_expired"] if expired else
                    f"your CPR/AED certificate is valid until {until.isoformat()}; renew it "
                    "to keep receiving alarms"},
                   responder.channel)
        inbox.post_personal(session, self.settings, inbox.CERTIFICATE, [inbox.Post(
            responder.id, {"valid_until": until.isoformat(), "expired": expired},
            now + inbox.CERTIFICATE_NOTICE_LIFETIME)], now)
        responder.certificate_reminded_for = responder.certificate_date
        session.add(responder)

    def _fetcher_timeouts(self, now: datetime) -> None:
        limit = now - timedelta(seconds=self.policy.fetcher_timeout_s)
        with self.writing(), session_scope(self.engine) as session:
            stale = list(session.execute(sa_select(IncidentAed).join(
                Incident, col(Incident.id) == IncidentAed.incident_id).where(
                col(Incident.state).in_(OPEN_STATES), col(IncidentAed.fetcher_accepted).is_(False),
                col(IncidentAed.fetcher_id).is_not(None), col(IncidentAed.picked_up_at).is_(None),
                col(IncidentAed.fetcher_since) <= limit)).scalars())
            for link in stale:
                incident = session.get(Incident, link.incident_id)
                assert incident is not None
                logger.info("incident %s: fetcher %s of AED %s did not answer in time",
                            incident.id, link.fetcher_id, link.aed_id)
                self._reassign(session, incident, link, now)
        if stale:
            self.outbox_written([])

    def _confirm_pickups(self, now: datetime) -> None:
        with self.writing(), session_scope(self.engine) as session:
            waiting = session.execute(
                sa_select(IncidentAed, col(Incident.received_at), col(Cabinet.device_id))
                .join(Incident, col(Incident.id) == IncidentAed.incident_id)
                .join(Cabinet, col(Cabinet.aed_id) == IncidentAed.aed_id)
                .where(col(IncidentAed.picked_up_at).is_(None),
                       col(IncidentAed.released_at).is_(None))).all()
            for link, dispatched_at, device_id in waiting:
                event = session.execute(
                    sa_select(col(DeviceEvent.ts), col(DeviceEvent.seq)).where(
                        col(DeviceEvent.device_id) == device_id,
                        col(DeviceEvent.type).in_(PICK_UP_EVENTS),
                        col(DeviceEvent.received_at) >= dispatched_at)
                    .order_by(col(DeviceEvent.seq)).limit(1)).first()
                if event is not None:
                    link.picked_up_at, link.picked_up_seq = event.ts, event.seq
                    # Taken from its cabinet: someone is bringing it, whether or not they
                    # pressed accept; it is not offered to anyone else.
                    link.fetcher_accepted = True
                    session.add(link)
                    logger.info("incident %s: AED %s picked up", link.incident_id, link.aed_id)

    def _close_timed_out(self, now: datetime) -> None:
        limit = now - timedelta(minutes=self.policy.incident_timeout_minutes)
        with Session(self.engine) as session:
            expired = list(session.execute(sa_select(col(Incident.id)).where(
                col(Incident.state).in_((*OPEN_STATES, "excluded")),
                col(Incident.received_at) <= limit)).scalars())
        for incident_id in expired:
            self.close(incident_id, "timeout", now)

    def release_aeds(self, now: datetime) -> list[str]:
        """Return AEDs of closed incidents to service once they are back (see docs/alarm.md)."""
        released = []
        with self.writing(), session_scope(self.engine) as session:
            rows = session.execute(
                sa_select(IncidentAed, Incident, col(TelemetryState.aed_present),
                          col(TelemetryState.seq))
                .join(Incident, col(Incident.id) == IncidentAed.incident_id)
                .outerjoin(Cabinet, col(Cabinet.aed_id) == IncidentAed.aed_id)
                .outerjoin(TelemetryState, col(TelemetryState.device_id) == Cabinet.device_id)
                .where(col(Incident.state) == "closed", col(IncidentAed.released_at).is_(None))
            ).all()
            for link, incident, present, seq in rows:
                if self._is_back(session, link, incident, present, seq):
                    link.released_at = now
                    session.add(link)
                    session.execute(update(Aed).where(col(Aed.id) == link.aed_id,
                                                      col(Aed.in_use_incident) == incident.id)
                                    .values(in_use_incident=None, updated_at=now))
                    released.append(link.aed_id)
            if released:
                ReadinessRecorder(session, self.settings, now).refresh(released, "returned")
        for aed_id in released:
            self.aeds.set_in_use(aed_id, False)
        return released

    def _is_back(self, session: Session, link: IncidentAed, incident: Incident,
                 present: bool | None, seq: int | None) -> bool:
        """Whether an AED sent to a closed incident is back in service.

        A cabinet that reports whether its AED is present decides, by its own order of
        messages (seq), so a report sent before the pick-up never counts as the return.
        Otherwise: back at once if nobody went for it, else when its manager declares it
        ready again after the incident closed (a declaration while it may still be at the
        victim says nothing about its return).
        """
        if present is not None and seq is not None:
            if link.picked_up_seq is not None:
                return present and seq > link.picked_up_seq
            return present
        if not link.fetcher_accepted:
            return True
        declared = session.execute(sa_select(col(ReadinessDeclaration.id)).where(
            col(ReadinessDeclaration.aed_id) == link.aed_id,
            col(ReadinessDeclaration.declared_at) >= incident.closed_at)).first()
        return declared is not None

    def purge_locations(self, now: datetime) -> int:
        """Delete responder positions past their retention: on the way to an incident, 15
        minutes after acceptance; the app's last reported position, once it no longer counts
        for dispatch (then the home or work address does)."""
        stale = now - timedelta(minutes=self.policy.app_location_max_age_minutes)
        with self.writing(), session_scope(self.engine) as session:
            result = session.execute(delete(ResponderLocation).where(
                col(ResponderLocation.expires_at) <= now))
            session.execute(update(Responder).where(
                col(Responder.last_location_at).is_not(None),
                col(Responder.last_location_at) <= stale)
                .values(last_lat=None, last_lon=None, last_location_at=None, updated_at=now))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def report_position(self, responder_id: str, lat: float, lon: float, at: datetime,
                        now: datetime) -> None:
        """The app's current position of a responder: where they are looked for while it is
        fresh (`app_location_max_age_minutes`), then forgotten."""
        if at > now + timedelta(minutes=1):
            raise Refused("invalid_field", "ts is in the future")
        if now - at >= timedelta(minutes=self.policy.app_location_max_age_minutes):
            raise Refused("position_too_old", "this position is too old to count for dispatch")
        with self.writing(), session_scope(self.engine) as session:
            responder = session.get(Responder, responder_id)
            if responder is None:
                raise NotFound("unknown_responder", f"no responder {responder_id}")
            responder.last_lat, responder.last_lon, responder.last_location_at = lat, lon, at
            responder.updated_at = now
            session.add(responder)
        if responder_id in self.responders.slot_of:  # else the next refresh takes it in
            self.responders.move(responder_id, lat, lon)
