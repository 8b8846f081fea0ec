"""The inbox over a real Mosquitto with the generated ACL: pushes, region news and read receipts.

Responder apps log in as themselves (user name = responder id), so the broker's access control
is the production one: an app reads its own inbox and its region's news, nobody else's inbox.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from alarm_core import inbox
from alarm_core.metrics import AlarmMetrics
from alarm_core.models import InboxMessage, InboxRead
from alarm_core.runner import AlarmRunner
from alarm_core.service import AlarmCore
from fleet.db import session_scope
from fleet.models import DeadLetter
from fleet.settings import Settings

from .alarm_support import STREET, alarm_settings, build_street, call
from .mqtt_support import Mosquitto, eventually
from .test_alarm_mqtt import RunningAlarm, unsent
from .test_responder_inbox import UTRECHT, add_region, set_responder

APPS = ("r-1", "r-2")


@dataclass
class App:
    """One responder's phone: logged in as the responder, subscribed to what it may read."""

    broker: Mosquitto
    responder_id: str
    topics: tuple[str, ...]
    received: list[tuple[str, dict[str, Any], bool]] = field(default_factory=list)
    client: aiomqtt.Client | None = None
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> App:
        subscribed = asyncio.Event()
        self._task = asyncio.create_task(self._listen(subscribed))
        async with asyncio.timeout(15):
            await subscribed.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _listen(self, subscribed: asyncio.Event) -> None:
        async with aiomqtt.Client("127.0.0.1", self.broker.port, username=self.responder_id,
                                  password=self.broker.credentials[self.responder_id],
                                  identifier=f"app-{self.responder_id}") as client:
            self.client = client
            for topic in self.topics:
                await client.subscribe(topic, qos=1)
            subscribed.set()
            async for message in client.messages:
                self.received.append((message.topic.value,
                                      json.loads(message.payload),  # type: ignore[arg-type]
                                      message.retain))

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [payload for received, payload, _ in self.received if received == topic]

    async def publish(self, topic: str, payload: bytes) -> None:
        assert self.client is not None
        await self.client.publish(topic, payload, qos=1)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """Mosquitto with accounts for two responder apps besides the fleet's."""
    mosquitto = Mosquitto(tmp_path / "broker", list(APPS))
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def core(engine: Engine, settings: Settings, broker: Mosquitto) -> AlarmCore:
    now = datetime.now(UTC)
    build_street(engine, now)
    add_region(engine, UTRECHT, "nl,en", (4.9, 51.95, 5.3, 52.2))
    for responder_id in STREET:
        set_responder(engine, responder_id, region=UTRECHT)
    alarm = alarm_settings(settings).model_copy(update={"mqtt_url": broker.url("fleet")})
    alarm = alarm.model_copy(update={"alarm": alarm.alarm.model_copy(
        update={"client_id": "alarm-core-inbox-test"})})
    found = AlarmCore(engine, alarm)
    found.load(now)
    return found


@pytest.fixture
async def running(core: AlarmCore) -> AsyncIterator[AlarmRunner]:
    async with RunningAlarm(AlarmRunner(core, core.settings, AlarmMetrics())) as runner:
        yield runner


async def closed_call(core: AlarmCore) -> None:
    """A call nobody answered, closed: every responder of the street gets a questionnaire."""
    now = datetime.now(UTC)
    incident = await asyncio.to_thread(core.intake, "112-utrecht", call("ref-inbox"), now)
    await asyncio.to_thread(core.close, incident.incident.id, "closed_by_dispatch",
                            datetime.now(UTC))


def own_message(engine: Engine, responder_id: str) -> int:
    with Session(engine) as session:
        return session.exec(select(InboxMessage.id).where(
            InboxMessage.responder_id == responder_id)).one()  # type: ignore[return-value]


def reads(engine: Engine) -> set[tuple[int, str]]:
    with Session(engine) as session:
        return {(r.message_id, r.responder_id) for r in session.exec(select(InboxRead)).all()}


def dead_letters(engine: Engine) -> Counter[str]:
    with Session(engine) as session:
        return Counter(session.exec(select(DeadLetter.reason)).all())


def receipt(message_id: Any) -> bytes:
    return json.dumps({"v": 1, "message_id": message_id,
                       "ts": datetime.now(UTC).isoformat()}).encode()


async def test_an_app_gets_its_own_inbox_messages_only_and_its_read_receipt_is_stored(
        core: AlarmCore, running: AlarmRunner, broker: Mosquitto) -> None:
    async with App(broker, "r-1", ("responders/+/inbox",)) as app:
        await closed_call(core)
        await eventually(lambda: app.on("responders/r-1/inbox"), 10, "r-1's inbox message")
        await eventually(lambda: unsent(core.engine) == 0, 10, "the outbox sent")
        [pushed] = app.on("responders/r-1/inbox")

        await app.publish("responders/r-1/inbox/read", receipt(pushed["message_id"]))
        await eventually(lambda: reads(core.engine), 10, "the read receipt stored")

    # The ACL kept every other responder's inbox from r-1's app.
    assert {topic for topic, _, _ in app.received} == {"responders/r-1/inbox"}
    assert pushed["message_id"] == own_message(core.engine, "r-1")
    assert (pushed["v"], pushed["kind"]) == (1, "questionnaire")
    assert set(pushed) == {"v", "message_id", "kind", "subject", "body", "sent_at",
                           "expires_at", "url"}
    assert reads(core.engine) == {(pushed["message_id"], "r-1")}
    assert dead_letters(core.engine) == Counter()


async def test_region_news_is_published_once_retained_and_reaches_an_app_that_connects_later(
        core: AlarmCore, running: AlarmRunner, broker: Mosquitto) -> None:
    with session_scope(core.engine) as session:
        message_id = inbox.post_news(session, UTRECHT, "Course", "On Friday at 19:00.",
                                     "Regio Utrecht", datetime.now(UTC)).id
    await eventually(lambda: unsent(core.engine) == 0, 10, "the news sent")

    async with App(broker, "r-2", ("regions/NL-UT/news",)) as app:
        await eventually(lambda: app.received, 10, "the retained news")
        await app.publish("responders/r-2/inbox/read", receipt(message_id))
        await eventually(lambda: reads(core.engine), 10, "the read receipt stored")

    [(topic, payload, retained)] = app.received
    assert (topic, retained) == ("regions/NL-UT/news", True)
    assert (payload["message_id"], payload["kind"], payload["subject"]) == (
        message_id, "news", "Course")
    assert reads(core.engine) == {(message_id, "r-2")}


async def test_malformed_and_foreign_read_receipts_are_dead_lettered_and_the_next_good_one_counts(
        core: AlarmCore, running: AlarmRunner, broker: Mosquitto) -> None:
    await closed_call(core)
    foreign, own = own_message(core.engine, "r-2"), own_message(core.engine, "r-1")
    bad = [
        ("invalid_json", b"{not json"),
        ("invalid_body", b"[1]"),
        ("invalid_field", receipt("seven")),
        ("invalid_field", json.dumps({"v": 1}).encode()),
        ("unknown_message", receipt(foreign)),
        ("unknown_message", receipt(own + 1000)),
    ]
    async with App(broker, "r-1", ()) as app:
        for _reason, payload in bad:
            await app.publish("responders/r-1/inbox/read", payload)
        await app.publish("responders/r-1/inbox/read", receipt(own))
        await eventually(lambda: reads(core.engine), 10, "the good receipt stored")
        await eventually(lambda: sum(dead_letters(core.engine).values()) == len(bad), 10,
                         "every bad receipt dead-lettered")

    assert dead_letters(core.engine) == Counter(reason for reason, _ in bad)
    assert reads(core.engine) == {(own, "r-1")}
    assert running.metrics.registry.get_sample_value(
        "aedfleet_alarm_rejected_total", {"reason": "unknown_message"}) == 2
