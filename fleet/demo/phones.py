"""The responders' phones, played: an alert is accepted, declined or left unanswered.

One MQTT connection reads every responder's `alert` and `cancel` topic and answers on the
responder's `response` topic after a human delay (contract §1, responder app).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from datetime import UTC, datetime
from typing import Any

import aiomqtt

from alarm_core.wire import rfc3339
from device_agents.config import parse_mqtt_url

ACCEPT_SHARE = 0.4
DECLINE_SHARE = 0.3


def choose_answer(rng: random.Random) -> tuple[str, float] | None:
    """How a responder reacts to an alert: (answer, seconds until it is given), or None."""
    roll = rng.random()
    if roll < ACCEPT_SHARE:
        return "accept", rng.uniform(4.0, 20.0)
    if roll < ACCEPT_SHARE + DECLINE_SHARE:
        return "decline", rng.uniform(2.0, 12.0)
    return None


def answer_payload(incident_id: str, answer: str, now: datetime) -> bytes:
    return json.dumps({"v": 1, "incident_id": incident_id, "answer": answer,
                       "ts": rfc3339(now)}).encode()


async def play_phones(mqtt_url: str, topic_root: str, seed: int, connected: asyncio.Event,
                      stop: asyncio.Event) -> None:
    """Answer alerts until `stop`; `connected` is set once the alerts are subscribed."""
    endpoint = parse_mqtt_url(mqtt_url)
    rng = random.Random(seed)
    pending: dict[tuple[str, str], asyncio.Task[None]] = {}
    async with aiomqtt.Client(endpoint.host, endpoint.port,
                              identifier="aedfleet-demo-phones") as client:
        await client.subscribe(f"{topic_root}/+/alert", qos=1)
        await client.subscribe(f"{topic_root}/+/cancel", qos=1)
        connected.set()
        reader = asyncio.create_task(_read(client, topic_root, rng, pending))
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([reader, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in [reader, stopped, *pending.values()]:
                task.cancel()
            await asyncio.gather(reader, stopped, *pending.values(), return_exceptions=True)
        if reader.done() and not reader.cancelled() and reader.exception() is not None:
            raise reader.exception()  # type: ignore[misc]


async def _read(client: aiomqtt.Client, topic_root: str, rng: random.Random,
                pending: dict[tuple[str, str], asyncio.Task[None]]) -> None:
    async for message in client.messages:
        parts = str(message.topic).split("/")
        document = _json(message.payload)
        incident_id = document.get("incident_id")
        if len(parts) != 3 or not isinstance(incident_id, str):
            continue
        key = (parts[1], incident_id)
        if parts[2] == "cancel":
            task = pending.pop(key, None)
            if task is not None:
                task.cancel()
            continue
        choice = choose_answer(rng)
        if choice is not None:
            pending[key] = asyncio.create_task(_answer(client, topic_root, key, *choice,
                                                       pending))


async def _answer(client: aiomqtt.Client, topic_root: str, key: tuple[str, str], answer: str,
                  delay_s: float, pending: dict[tuple[str, str], asyncio.Task[None]]) -> None:
    await asyncio.sleep(delay_s)
    responder_id, incident_id = key
    pending.pop(key, None)
    await client.publish(f"{topic_root}/{responder_id}/response",
                         answer_payload(incident_id, answer, datetime.now(UTC)), qos=1)


def _json(payload: Any) -> dict[str, Any]:
    with contextlib.suppress(ValueError, TypeError):
        document = json.loads(payload)
        if isinstance(document, dict):
            return document
    return {}
