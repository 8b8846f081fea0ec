"""A registered fleet, a running ingest worker and a publisher speaking as cabinets, for tests."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiomqtt
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from device_agents.tasks import cancel_and_wait
from fleet.db import session_scope
from fleet.ingest.worker import IngestWorker
from fleet.models import (
    Aed,
    AedReadiness,
    AppliedMessage,
    Cabinet,
    DeadLetter,
    DeviceEvent,
    Manager,
    Notification,
    ReadinessDeclaration,
    ReadinessTransition,
    TelemetryState,
)
from fleet.settings import IngestSettings, Settings

from .mqtt_support import Mosquitto

MANAGER_EMAIL = "beheer@example.org"


def register_fleet(engine: Engine, count: int, prefix: str = "cab",
                   now: datetime | None = None) -> list[str]:
    """`count` 24/7 AEDs, each in a cabinet `{prefix}-{i}`, declared ready a month ago."""
    now = now or datetime.now(UTC)
    devices = [f"{prefix}-{i}" for i in range(count)]
    with session_scope(engine) as session:
        manager = session.exec(select(Manager).where(Manager.name == "Beheer")).first()
        if manager is None:
            manager = Manager(name="Beheer", email=MANAGER_EMAIL)
            session.add(manager)
            session.flush()
        for i, device in enumerate(devices):
            aed_id = f"aed-{device}"
            session.add(Aed(id=aed_id, lat=52.09 + i * 1e-4, lon=5.12, access="public",
                            opening_hours="24/7", manager_id=manager.id,
                            name=f"AED {i}", address=f"Straat {i}, Utrecht"))
            session.flush()
            session.add(Cabinet(device_id=device, aed_id=aed_id))
            session.add(ReadinessDeclaration(aed_id=aed_id, declared_at=now - timedelta(days=30),
                                             declared_by="Beheer"))
    return devices


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def telemetry(device: str, seq: int, ts: datetime | None = None, **fields: Any) -> bytes:
    """A healthy contract v1 telemetry snapshot, with `fields` overriding."""
    ts = ts or datetime.now(UTC)
    body: dict[str, Any] = {
        "v": 1, "device_id": device, "seq": seq, "ts": stamp(ts), "battery_pct": 90,
        "pads_expiry": (date.today() + timedelta(days=400)).isoformat(), "self_test": "pass",
        "self_test_ts": stamp(ts), "door_open": False, "aed_present": True,
        "temperature_c": 15.5, "heater_on": False, "power": "mains"}
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def event(device: str, seq: int, kind: str, ts: datetime | None = None) -> bytes:
    return json.dumps({"v": 1, "device_id": device, "seq": seq,
                       "ts": stamp(ts or datetime.now(UTC)), "type": kind}).encode()


def status(device: str, state: str, ts: datetime | None = None) -> bytes:
    return json.dumps({"v": 1, "device_id": device, "state": state,
                       "ts": stamp(ts or datetime.now(UTC))}).encode()


def ingest_settings(broker: Mosquitto, database_url: str, **ingest: Any) -> Settings:
    # Acks at once, whatever the seqs: the gap grace of acks has tests of its own.
    options: dict[str, Any] = {"sweep_interval_s": 3600, "batch_wait_ms": 10,
                               "ack_gap_grace_s": 0}
    options.update(ingest)
    return Settings(database_url=database_url, mqtt_url=broker.url("fleet"),
                    ingest=IngestSettings(**options))


class RunningWorker:
    """An `IngestWorker` running as a task in the test's event loop."""

    def __init__(self, worker: IngestWorker) -> None:
        self.worker = worker
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> IngestWorker:
        self.task = asyncio.create_task(self.worker.run(self.stop))
        async with asyncio.timeout(15):
            await self.worker.connected.wait()
        return self.worker

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        async with asyncio.timeout(20):
            await self.task


class CabinetPublisher:
    """Publishes as the fleet service account on cabinets' topics and records their acks."""

    def __init__(self, broker: Mosquitto) -> None:
        self.broker = broker
        self.acks: dict[str, list[int]] = defaultdict(list)
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> CabinetPublisher:
        self._client = aiomqtt.Client("127.0.0.1", self.broker.port, username="fleet",
                                      password=self.broker.credentials["fleet"],
                                      identifier="test-cabinets", max_inflight_messages=1000)
        await self._client.__aenter__()
        self._client.pending_calls_threshold = 100_000
        await self._client.subscribe("aed/+/ack", qos=1)
        self._task = asyncio.create_task(self._collect())
        return self

    async def _collect(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            device = message.topic.value.split("/")[1]
            self.acks[device].append(json.loads(message.payload)["seq"])  # type: ignore[arg-type]

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])  # type: ignore[list-item]
        if self._client is not None:
            await self._client.__aexit__(None, None, None)

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        assert self._client is not None
        await self._client.publish(topic, payload, qos=1, retain=retain)

    async def publish_many(self, messages: list[tuple[str, bytes]]) -> None:
        await asyncio.gather(*(self.publish(topic, payload) for topic, payload in messages))

    def acked(self, device: str) -> int:
        return max(self.acks.get(device, [0]))


def count_rows(engine: Engine, model: Any, *where: Any) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(model)
        for clause in where:
            query = query.where(clause)
        return int(session.exec(query).one())


def ledger_count(engine: Engine) -> int:
    return count_rows(engine, AppliedMessage)


def dead_letter_reasons(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.exec(select(DeadLetter.reason, func.count())
                            .group_by(col(DeadLetter.reason))).all()
    return {reason: int(n) for reason, n in rows}


def event_count(engine: Engine, device: str) -> int:
    return count_rows(engine, DeviceEvent, col(DeviceEvent.device_id) == device)


def ack_count(publisher: CabinetPublisher, device: str, seq: int) -> int:
    """How many acks of exactly `seq` the device has received."""
    return publisher.acks.get(device, []).count(seq)


def telemetry_state(engine: Engine, device: str) -> TelemetryState | None:
    with Session(engine) as session:
        return session.get(TelemetryState, device)


def current_readiness(engine: Engine, aed_id: str) -> AedReadiness | None:
    with Session(engine) as session:
        return session.get(AedReadiness, aed_id)


def transitions_of(engine: Engine, aed_id: str) -> list[ReadinessTransition]:
    """The AED's recorded readiness transitions, oldest first."""
    with Session(engine) as session:
        return list(session.exec(select(ReadinessTransition)
                                 .where(ReadinessTransition.aed_id == aed_id)
                                 .order_by(col(ReadinessTransition.id))).all())


def notice_kinds(engine: Engine, aed_id: str) -> list[str]:
    """The kinds of the notices queued for the AED, oldest first."""
    with Session(engine) as session:
        return list(session.exec(select(Notification.kind)
                                 .where(Notification.aed_id == aed_id)
                                 .order_by(col(Notification.id))).all())


def dead_letters(engine: Engine) -> list[DeadLetter]:
    with Session(engine) as session:
        return list(session.exec(select(DeadLetter).order_by(col(DeadLetter.id))).all())


def all_counted(worker: IngestWorker) -> bool:
    """Whether every message the worker received is counted: applied, duplicate or dead letter.

    The worker counts a batch just after publishing its acks, so an ack can arrive first.
    """
    totals: Counter[str] = Counter()
    for family in worker.metrics.registry.collect():
        for sample in family.samples:
            totals[sample.name] += sample.value
    return totals["aedfleet_ingest_received_total"] == (
        totals["aedfleet_ingest_applied_total"] + totals["aedfleet_ingest_duplicates_total"]
        + totals["aedfleet_ingest_dead_letters_total"])
