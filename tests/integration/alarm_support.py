"""A small scene for alarm core tests: ready AEDs around a victim, responders, and readers.

Places are given in metres north and east of the victim, so a test reads as a sketch of the
street: `add_responder(engine, "r-1", near(40, 10), NOW)`. Every time is passed in explicitly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiomqtt
from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from alarm_core.models import (
    Incident,
    IncidentAed,
    IncidentResponder,
    OutboxMessage,
    Responder,
)
from alarm_core.policy import DispatchPolicy
from alarm_core.registry import register_responder
from alarm_core.wire import IncidentRequest
from device_agents.tasks import cancel_and_wait
from fleet.db import session_scope
from fleet.models import Aed, Cabinet, DeviceEvent, ReadinessDeclaration, TelemetryState
from fleet.settings import Settings

from .mqtt_support import Mosquitto

NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
"""A Wednesday afternoon: every test's clock starts here."""
VICTIM = (52.0907, 5.1214)  # Utrecht, inside the default service area
OUTSIDE = (48.8566, 2.3522)  # Paris
ACCESS_CODE = "4711"
METRES_PER_DEGREE = 111_320.0

Place = tuple[float, float]


def near(north_m: float, east_m: float = 0.0, origin: Place = VICTIM) -> Place:
    """The point `north_m` metres north and `east_m` metres east of `origin`."""
    lat, lon = origin
    return (lat + north_m / METRES_PER_DEGREE,
            lon + east_m / (METRES_PER_DEGREE * math.cos(math.radians(lat))))


# -- settings -------------------------------------------------------------------------------------

def alarm_settings(settings: Settings, sms_gateway_url: str = "", **dispatch: Any) -> Settings:
    """The test's settings with dispatch policy changes (and an SMS gateway, if given)."""
    return settings.model_copy(update={
        "dispatch": dataclasses.replace(DispatchPolicy(), **dispatch),
        "alarm": settings.alarm.model_copy(update={"sms_gateway_url": sms_gateway_url}),
    })


# -- the registry ---------------------------------------------------------------------------------

def add_monitored_aed(engine: Engine, aed_id: str, at: Place, now: datetime,
                      **aed_fields: Any) -> str:
    """A public 24/7 AED in a cabinet that reported all well two minutes ago, declared ready
    a month ago: `ready`. Returns the cabinet's device id."""
    device_id = f"cab-{aed_id}"
    with session_scope(engine) as session:
        session.add(_aed(aed_id, at, now, **aed_fields))
        session.flush()
        session.add(Cabinet(device_id=device_id, aed_id=aed_id, created_at=now))
        session.add(_declaration(aed_id, now - timedelta(days=30)))
        session.flush()
        session.add(TelemetryState(**_healthy_state(device_id, 1, now - timedelta(minutes=2))))
    return device_id


def add_unmonitored_aed(engine: Engine, aed_id: str, at: Place, now: datetime,
                        **aed_fields: Any) -> None:
    """A public 24/7 AED without a cabinet agent, declared ready a month ago: `unverified`,
    dispatched only under `allow_unverified_aeds`."""
    with session_scope(engine) as session:
        session.add(_aed(aed_id, at, now, **aed_fields))
        session.flush()
        session.add(_declaration(aed_id, now - timedelta(days=30)))


def _aed(aed_id: str, at: Place, now: datetime, **fields: Any) -> Aed:
    values: dict[str, Any] = {
        "lat": at[0], "lon": at[1], "access": "public", "opening_hours": "24/7",
        "name": f"AED {aed_id}", "address": f"Oudegracht {len(aed_id)}, Utrecht",
        "location_hint": f"next to the entrance of {aed_id}", "cabinet_code": ACCESS_CODE,
        "pads_expiry": now.date() + timedelta(days=400), "created_at": now, "updated_at": now}
    values.update(fields)
    return Aed(id=aed_id, **values)


def _declaration(aed_id: str, declared_at: datetime) -> ReadinessDeclaration:
    return ReadinessDeclaration(aed_id=aed_id, declared_at=declared_at, declared_by="Beheer",
                                recorded_at=declared_at)


def _healthy_state(device_id: str, seq: int, at: datetime) -> dict[str, Any]:
    return {"device_id": device_id, "seq": seq, "ts": at, "received_at": at, "online": True,
            "status_ts": at, "battery_pct": 90, "pads_expiry": at.date() + timedelta(days=400),
            "self_test": "pass", "self_test_ts": at - timedelta(hours=6), "door_open": False,
            "aed_present": True, "temperature_c": 15.5, "heater_on": False, "power": "mains"}


def report_cabinet(engine: Engine, device_id: str, at: datetime, **changes: Any) -> None:
    """The cabinet's newest report, arrived at `at`: all well except `changes`."""
    with session_scope(engine) as session:
        state = session.get(TelemetryState, device_id)
        assert state is not None, f"cabinet {device_id} never reported"
        values = {**_healthy_state(device_id, _next_seq(session, device_id), at), **changes}
        for name, value in values.items():
            setattr(state, name, value)
        session.add(state)


def record_device_event(engine: Engine, device_id: str, kind: str, at: datetime) -> None:
    """A cabinet event (e.g. `door_opened`) that happened and arrived at `at`."""
    with session_scope(engine) as session:
        session.add(DeviceEvent(device_id=device_id, seq=_next_seq(session, device_id), ts=at,
                                type=kind, received_at=at))


def _next_seq(session: Session, device_id: str) -> int:
    """The device's next seq: one counter over its telemetry and events (contract §1)."""
    state = session.get(TelemetryState, device_id)
    events = session.exec(select(func.max(DeviceEvent.seq))
                          .where(DeviceEvent.device_id == device_id)).one()
    return max(state.seq if state is not None else 0, events or 0) + 1


def declare_ready(engine: Engine, aed_id: str, at: datetime) -> None:
    """A manager's declaration, made and recorded at `at`."""
    with session_scope(engine) as session:
        session.add(_declaration(aed_id, at))


def set_aed(engine: Engine, aed_id: str, **values: Any) -> None:
    """Change an AED row behind the alarm core's back (no `updated_at` change)."""
    with session_scope(engine) as session:
        session.execute(update(Aed).where(col(Aed.id) == aed_id).values(**values))


def responder_record(responder_id: str, at: Place, now: datetime, **fields: Any
                     ) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": responder_id, "name": f"Responder {responder_id}",
        "email": f"{responder_id}@example.org", "phone": "+31612345678",
        "date_of_birth": date(1985, 4, 12),
        "certificate_date": now.date() - timedelta(days=100),
        "home_lat": at[0], "home_lon": at[1]}
    record.update(fields)
    return record


def add_responder(engine: Engine, responder_id: str, at: Place, now: datetime,
                  **fields: Any) -> Responder:
    """An adult responder with a valid certificate who lives at `at` (app channel), registered
    a month before `now`."""
    return register_responder(engine, responder_record(responder_id, at, now, **fields),
                              now - timedelta(days=30), DispatchPolicy())


def add_responders(engine: Engine, places: dict[str, Place], now: datetime) -> list[str]:
    for responder_id, at in places.items():
        add_responder(engine, responder_id, at, now)
    return list(places)


def call(reference: str, at: Place = VICTIM, **fields: Any) -> IncidentRequest:
    """The 112 centre's notification of a cardiac arrest at `at`."""
    values: dict[str, Any] = {"reference": reference, "lat": at[0], "lon": at[1],
                              "address": "Domplein 29, Utrecht", "called_at": None,
                              "source": "112", "exclusions": ()}
    values.update(fields)
    return IncidentRequest(**values)


# -- reading what happened ------------------------------------------------------------------------

@dataclass(frozen=True)
class Message:
    """One outbox row, read back."""

    responder_id: str
    kind: str
    channel: str
    payload: dict[str, Any]
    sent_at: datetime | None


def outbox(engine: Engine, kind: str | None = None, responder_id: str | None = None
           ) -> list[Message]:
    """Outbox messages in the order they were written, optionally of one kind or responder."""
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    found = []
    for row in rows:
        _root, who, what = row.topic.split("/")
        if (kind is None or what == kind) and (responder_id is None or who == responder_id):
            found.append(Message(who, what, row.channel, json.loads(row.payload), row.sent_at))
    return found


def incident(engine: Engine, incident_id: str) -> Incident:
    with Session(engine) as session:
        found = session.get(Incident, incident_id)
    assert found is not None, f"no incident {incident_id}"
    return found


def alerts(engine: Engine, incident_id: str) -> dict[str, IncidentResponder]:
    """The incident's alerted responders by id."""
    with Session(engine) as session:
        rows = session.exec(select(IncidentResponder)
                            .where(IncidentResponder.incident_id == incident_id)).all()
    return {row.responder_id: row for row in rows}


def aed_links(engine: Engine, incident_id: str) -> dict[str, IncidentAed]:
    """The AEDs sent to the incident by id."""
    with Session(engine) as session:
        rows = session.exec(select(IncidentAed)
                            .where(IncidentAed.incident_id == incident_id)).all()
    return {row.aed_id: row for row in rows}


def responder(engine: Engine, responder_id: str) -> Responder:
    with Session(engine) as session:
        found = session.get(Responder, responder_id)
    assert found is not None, f"no responder {responder_id}"
    return found


def aed(engine: Engine, aed_id: str) -> Aed:
    with Session(engine) as session:
        found = session.get(Aed, aed_id)
    assert found is not None, f"no AED {aed_id}"
    return found


def busy_responders(engine: Engine) -> dict[str, str]:
    """Responder id -> the incident they are busy with."""
    with Session(engine) as session:
        rows = session.exec(select(Responder.id, Responder.busy_incident)
                            .where(col(Responder.busy_incident).is_not(None))).all()
    return {rid: str(busy) for rid, busy in rows}


def by_role(engine: Engine, incident_id: str) -> dict[str, list[str]]:
    """The incident's responders by role, designated fetchers apart: `cpr`, `fetcher`, `backup`."""
    roles: dict[str, list[str]] = {"cpr": [], "fetcher": [], "backup": []}
    for rid, alert in sorted(alerts(engine, incident_id).items(), key=lambda i: i[1].eta_s):
        key = "cpr" if alert.role == "cpr" else "fetcher" if alert.designated else "backup"
        roles[key].append(rid)
    return roles


# -- the standard scene ---------------------------------------------------------------------------

AED_1 = "aed-1"
AED_1_AT = near(150)
STREET: dict[str, Place] = {
    "r-1": near(0, 20),  # nearest the victim: always starts CPR
    "r-2": near(160),  # next to aed-1: its designated fetcher
    "r-3": near(-300),  # CPR
    "r-4": near(0, -400),  # backups sent via aed-1 (r-5 the fastest of them)
    "r-5": near(250, 250),
    "r-6": near(-500, 100),
}


def build_street(engine: Engine, now: datetime = NOW, monitored: bool = True) -> str | None:
    """One ready AED 150 m north of the victim and the six `STREET` responders.

    Returns the AED's cabinet, or None for an unmonitored AED (needs `allow_unverified_aeds`).
    """
    device = add_monitored_aed(engine, AED_1, AED_1_AT, now) if monitored else None
    if not monitored:
        add_unmonitored_aed(engine, AED_1, AED_1_AT, now)
    add_responders(engine, STREET, now)
    return device


# -- the responder apps' side of the broker -------------------------------------------------------

@dataclass(frozen=True)
class Heard:
    """One message a responder app received."""

    responder_id: str
    kind: str
    payload: dict[str, Any]
    at: float
    """`time.monotonic()` on arrival"""


@dataclass
class ResponderApps:
    """Every responder app: one MQTT subscriber on their alert, cancel and questionnaire
    topics (as the broker configuration's `fleet` service user)."""

    broker: Mosquitto
    identifier: str = "responder-apps"
    heard: list[Heard] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ResponderApps:
        subscribed = asyncio.Event()
        self._task = asyncio.create_task(self._listen(subscribed))
        async with asyncio.timeout(15):
            await subscribed.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        assert not await cancel_and_wait([self._task])  # type: ignore[list-item]

    async def _listen(self, subscribed: asyncio.Event) -> None:
        async with aiomqtt.Client("127.0.0.1", self.broker.port, username="fleet",
                                  password=self.broker.credentials["fleet"],
                                  identifier=self.identifier) as client:
            for kind in ("alert", "cancel", "questionnaire"):
                await client.subscribe(f"responders/+/{kind}", qos=1)
            subscribed.set()
            async for message in client.messages:
                _root, responder_id, kind = message.topic.value.split("/")
                payload = json.loads(message.payload)  # type: ignore[arg-type]
                self.heard.append(Heard(responder_id, kind, payload, time.monotonic()))

    def of(self, kind: str, incident_id: str | None = None) -> dict[str, dict[str, Any]]:
        """What each responder received of `kind` (for the incident; the last one)."""
        return {h.responder_id: h.payload for h in self.heard if h.kind == kind
                and (incident_id is None or h.payload["incident_id"] == incident_id)}

    def arrival(self, responder_id: str, kind: str) -> float | None:
        return next((h.at for h in self.heard
                     if h.responder_id == responder_id and h.kind == kind), None)
