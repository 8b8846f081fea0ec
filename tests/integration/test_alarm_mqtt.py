"""The alarm core's MQTT side against a real Mosquitto: the outbox relay and the answer consumer.

The `AlarmRunner` runs in the test's event loop (its database work in worker threads, as in
production); responder apps are a persistent QoS 1 subscriber on their topics and a client that
publishes their answers. Both engines: the relay and the consumer write from those threads.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from alarm_core.metrics import AlarmMetrics
from alarm_core.models import OutboxMessage, ResponderLocation
from alarm_core.runner import AlarmRunner
from alarm_core.service import AlarmCore
from device_agents.tasks import cancel_and_wait
from fleet.models import DeadLetter
from fleet.settings import Settings

from .alarm_support import (
    AED_1,
    STREET,
    VICTIM,
    aed_links,
    alarm_settings,
    alerts,
    build_street,
    call,
    near,
    outbox,
)
from .ingest_support import count_rows
from .mqtt_support import Mosquitto, eventually

CALLER = "112-utrecht"
LISTENED = ("alert", "cancel", "questionnaire")


@dataclass
class Received:
    responder_id: str
    kind: str
    payload: dict[str, Any]
    qos: int


@dataclass
class ResponderApps:
    """Every responder app at once: one persistent QoS 1 subscription to their topics.

    Like a phone, it keeps its broker session (clean_session=False), so what is published while
    it is away is delivered when it is back; it reconnects on its own.
    """

    broker: Mosquitto
    received: list[Received] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ResponderApps:
        self._task = asyncio.create_task(self._run())
        async with asyncio.timeout(15):
            await self.connected.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        assert not await cancel_and_wait([self._task])  # type: ignore[list-item]

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", self.broker.port, username="fleet",
                                          password=self.broker.credentials["fleet"],
                                          identifier="responder-apps",
                                          clean_session=False) as client:
                    for kind in LISTENED:
                        await client.subscribe(f"responders/+/{kind}", qos=1)
                    self.connected.set()
                    async for message in client.messages:
                        _root, responder_id, kind = message.topic.value.split("/")
                        self.received.append(Received(
                            responder_id, kind, json.loads(message.payload),  # type: ignore[arg-type]
                            message.qos))
            except aiomqtt.MqttError:
                self.connected.clear()
                await asyncio.sleep(0.2)

    def of(self, kind: str) -> list[Received]:
        return [r for r in self.received if r.kind == kind]

    def count(self, kind: str) -> Counter[str]:
        """How many `kind` messages each responder received."""
        return Counter(r.responder_id for r in self.of(kind))


@dataclass
class RunningAlarm:
    """An `AlarmRunner` running as a task in the test's event loop."""

    runner: AlarmRunner
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AlarmRunner:
        self.task = asyncio.create_task(self.runner.run(self.stop))
        await eventually(self.runner.connected.is_set, 15, "the alarm core to connect")
        return self.runner

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        async with asyncio.timeout(20):
            await self.task


@dataclass
class Scene:
    core: AlarmCore
    engine: Engine
    now: datetime

    async def intake(self, reference: str = "ref-1", **fields: Any) -> str:
        """A call taken in as the HTTP API takes it: in a worker thread."""
        result = await asyncio.to_thread(self.core.intake, CALLER, call(reference, **fields),
                                         datetime.now(UTC))
        return result.incident.id


@pytest.fixture
def scene(engine: Engine, settings: Settings, broker: Mosquitto) -> Scene:
    """The standard street, registered just now, and a core that talks to the test's broker."""
    now = datetime.now(UTC)
    build_street(engine, now)
    alarm = alarm_settings(settings).model_copy(update={"mqtt_url": broker.url("fleet")})
    alarm = alarm.model_copy(update={"alarm": alarm.alarm.model_copy(
        update={"client_id": "alarm-core-test"})})
    core = AlarmCore(engine, alarm)
    core.load(now)
    return Scene(core, engine, now)


@pytest.fixture
async def apps(broker: Mosquitto) -> AsyncIterator[ResponderApps]:
    async with ResponderApps(broker) as subscribed:
        yield subscribed


def runner_of(scene: Scene) -> RunningAlarm:
    return RunningAlarm(AlarmRunner(scene.core, scene.core.settings, AlarmMetrics()))


def unsent(engine: Engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(OutboxMessage.id)
                                .where(OutboxMessage.sent_at == None)).all())  # noqa: E711


def dead_letter_reasons(engine: Engine) -> Counter[str]:
    with Session(engine) as session:
        return Counter(session.exec(select(DeadLetter.reason)).all())


async def publish_as_app(broker: Mosquitto, messages: list[tuple[str, bytes]]) -> None:
    """A responder app's answers and positions, in order (QoS 1, as the contract has it)."""
    async with aiomqtt.Client("127.0.0.1", broker.port, username="fleet",
                              password=broker.credentials["fleet"],
                              identifier="responder-app-publisher") as app:
        for topic, payload in messages:
            await app.publish(topic, payload, qos=1)


def answer(incident_id: str, what: str) -> bytes:
    return json.dumps({"v": 1, "incident_id": incident_id, "answer": what,
                       "ts": datetime.now(UTC).isoformat()}).encode()


# -- the outbox relay -----------------------------------------------------------------------------

async def test_every_alert_of_an_intake_reaches_the_broker_at_qos_1_and_is_marked_sent(
        scene: Scene, apps: ResponderApps) -> None:
    async with runner_of(scene):
        incident_id = await scene.intake()
        await eventually(lambda: set(apps.count("alert")) == set(STREET), 10,
                         "every responder's alert")
        await eventually(lambda: unsent(scene.engine) == 0, 10, "the outbox marked sent")

    stored = {m.responder_id: m for m in outbox(scene.engine, "alert")}
    for received in apps.of("alert"):
        assert received.qos == 1
        assert received.payload == stored[received.responder_id].payload
        assert received.payload["incident_id"] == incident_id
    assert all(m.sent_at is not None for m in stored.values())
    fetcher = next(r for r in apps.of("alert") if r.responder_id == "r-2")
    assert fetcher.payload["aed"]["aed_id"] == AED_1


async def test_no_outbox_message_is_published_twice(scene: Scene, apps: ResponderApps) -> None:
    async with runner_of(scene) as runner:
        first = await scene.intake("ref-1")
        second = await scene.intake("ref-2", at=near(-20))  # everyone busy: nobody alerted
        await eventually(lambda: unsent(scene.engine) == 0, 10, "the alerts marked sent")
        await asyncio.to_thread(scene.core.close, first, "closed_by_dispatch",
                                datetime.now(UTC))
        # The cancels come after the alerts from the same relay: once they are in, any
        # second copy of an alert would have arrived before them.
        await eventually(lambda: set(apps.count("cancel")) == set(STREET)
                         and set(apps.count("questionnaire")) == set(STREET), 10,
                         "every cancel and questionnaire")
        await eventually(lambda: unsent(scene.engine) == 0, 10, "the outbox marked sent")
        published = runner.metrics.registry.get_sample_value(
            "aedfleet_alarm_messages_sent_total", {"channel": "mqtt"})

    assert alerts(scene.engine, second) == {}
    assert apps.count("alert") == Counter(dict.fromkeys(STREET, 1))
    assert apps.count("cancel") == Counter(dict.fromkeys(STREET, 1))
    assert apps.count("questionnaire") == Counter(dict.fromkeys(STREET, 1))
    # alert, cancel, questionnaire and its inbox message for each
    assert published == count_rows(scene.engine, OutboxMessage) == 4 * len(STREET)


async def test_alerts_written_while_the_broker_is_down_are_delivered_once_it_is_back(
        scene: Scene, apps: ResponderApps, broker: Mosquitto) -> None:
    async with runner_of(scene) as runner:
        broker.stop()
        await eventually(lambda: not runner.connected.is_set(), 10,
                         "the alarm core to notice the broker is gone")

        await scene.intake()
        assert unsent(scene.engine) == len(STREET)

        broker.start()
        await eventually(lambda: set(apps.count("alert")) == set(STREET), 20,
                         "every alert after the restart")
        await eventually(lambda: unsent(scene.engine) == 0, 10, "the outbox marked sent")

    assert apps.count("alert") == Counter(dict.fromkeys(STREET, 1))


# -- responders' answers and positions ------------------------------------------------------------

async def test_answers_published_by_responder_apps_are_applied(
        scene: Scene, apps: ResponderApps, broker: Mosquitto) -> None:
    async with runner_of(scene):
        incident_id = await scene.intake()
        await eventually(lambda: set(apps.count("alert")) == set(STREET), 10, "the alerts")

        position = near(100)
        await publish_as_app(broker, [
            ("responders/r-2/response", answer(incident_id, "accept")),
            ("responders/r-3/response", answer(incident_id, "decline")),
            ("responders/r-2/location", json.dumps(
                {"v": 1, "incident_id": incident_id, "lat": position[0], "lon": position[1],
                 "ts": datetime.now(UTC).isoformat()}).encode()),
        ])
        await eventually(lambda: count_rows(scene.engine, ResponderLocation) == 1, 10,
                         "the answers and the position to be applied")

    alerted = alerts(scene.engine, incident_id)
    assert (alerted["r-2"].status, alerted["r-3"].status) == ("accepted", "declined")
    assert aed_links(scene.engine, incident_id)[AED_1].fetcher_accepted
    with Session(scene.engine) as session:
        [stored] = session.exec(select(ResponderLocation)).all()
    assert (stored.responder_id, (stored.lat, stored.lon)) == ("r-2", position)
    assert dead_letter_reasons(scene.engine) == Counter()


async def test_bad_responder_messages_become_dead_letters_and_the_next_good_one_is_applied(
        scene: Scene, apps: ResponderApps, broker: Mosquitto) -> None:
    async with runner_of(scene):
        incident_id = await scene.intake()
        await eventually(lambda: set(apps.count("alert")) == set(STREET), 10, "the alerts")
        bad = [
            ("invalid_json", "responders/r-1/response", b"{not json"),
            ("invalid_json", "responders/r-1/response", b"\xff\xfe"),
            ("payload_too_large", "responders/r-1/response", b"{" + b" " * 5000 + b"}"),
            ("invalid_body", "responders/r-1/response", b"[1, 2]"),
            ("invalid_field", "responders/r-1/response", answer(incident_id, "maybe")),
            ("unknown_incident", "responders/r-1/response",
             answer("inc-000000000000", "accept")),
            ("not_alerted", "responders/stranger/response", answer(incident_id, "accept")),
            ("not_accepted", "responders/r-1/location", json.dumps(
                {"v": 1, "incident_id": incident_id, "lat": VICTIM[0], "lon": VICTIM[1],
                 "ts": datetime.now(UTC).isoformat()}).encode()),
        ]
        await publish_as_app(broker, [(topic, payload) for _r, topic, payload in bad]
                             + [("responders/r-1/response", answer(incident_id, "accept"))])
        await eventually(lambda: alerts(scene.engine, incident_id)["r-1"].status == "accepted",
                         10, "the good answer after the bad ones")
        await eventually(lambda: sum(dead_letter_reasons(scene.engine).values()) == len(bad),
                         10, "every bad message dead-lettered")

    assert dead_letter_reasons(scene.engine) == Counter(reason for reason, _t, _p in bad)
    with Session(scene.engine) as session:
        letters = session.exec(select(DeadLetter)).all()
    kept = {(letter.reason, letter.topic, bytes(letter.payload)) for letter in letters}
    assert ("invalid_json", "responders/r-1/response", b"{not json") in kept
    assert ("unknown_incident", "responders/r-1/response", bad[5][2]) in kept
    assert ("not_alerted", "responders/stranger/response", bad[6][2]) in kept
    too_large = next(letter for letter in letters if letter.reason == "payload_too_large")
    assert too_large.payload_size == 5002 and len(too_large.payload) == 4096
    assert all(letter.device_id is None for letter in letters)
    assert count_rows(scene.engine, ResponderLocation) == 0


async def test_a_late_answer_to_a_closed_incident_is_dead_lettered(
        scene: Scene, apps: ResponderApps, broker: Mosquitto) -> None:
    async with runner_of(scene):
        incident_id = await scene.intake()
        await eventually(lambda: set(apps.count("alert")) == set(STREET), 10, "the alerts")
        await asyncio.to_thread(scene.core.close, incident_id, "closed_by_dispatch",
                                datetime.now(UTC) + timedelta(seconds=1))

        await publish_as_app(broker, [("responders/r-1/response",
                                       answer(incident_id, "accept"))])
        await eventually(lambda: sum(dead_letter_reasons(scene.engine).values()) == 1, 10,
                         "the late answer dead-lettered")

    assert dead_letter_reasons(scene.engine) == Counter({"incident_closed": 1})
    assert alerts(scene.engine, incident_id)["r-1"].status == "cancelled"
