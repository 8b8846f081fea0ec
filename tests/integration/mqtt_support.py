"""A real Mosquitto broker for tests, and a fleet-side receiver that acks like the fleet does."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from device_agents.broker_config import TlsFiles
from device_agents.local_broker import LocalMosquitto, mosquitto_binary
from device_agents.tasks import cancel_and_wait


def wait_until(condition: Any, timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


async def eventually(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


class Mosquitto(LocalMosquitto):
    """The shared local Mosquitto; a test is skipped, not failed, where Mosquitto is missing."""

    def __init__(self, folder: Path, devices: list[str], tls: TlsFiles | None = None,
                 services: tuple[str, ...] = ("fleet",)) -> None:
        if mosquitto_binary() is None:
            pytest.skip("mosquitto is not installed (apt-get install mosquitto; .ci/run does)")
        super().__init__(folder, devices, services, tls=tls)


@dataclass
class Received:
    topic: str
    payload: dict[str, Any]
    at: float


@dataclass
class FleetReceiver:
    """Subscribes as the fleet, records every message and acks each device's highest seq.

    Like the fleet's ingest, it keeps a persistent session (clean_session=False, QoS 1), so the
    broker holds messages for it while it is disconnected; it reconnects on its own.
    """

    url_host: str
    port: int
    password: str
    ack: bool = True
    messages: list[Received] = field(default_factory=list)
    acks: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False

    async def start(self) -> None:
        connected = asyncio.Event()
        self._task = asyncio.create_task(self._run(connected))
        await asyncio.wait_for(connected.wait(), 15)

    async def _run(self, connected: asyncio.Event) -> None:
        while True:
            try:
                async with aiomqtt.Client(self.url_host, self.port, username="fleet",
                                          password=self.password, clean_session=False,
                                          identifier=f"fleet-test-{id(self)}") as client:
                    for leaf in ("telemetry", "event", "status"):
                        await client.subscribe(f"aed/+/{leaf}", qos=1)
                    connected.set()
                    async for message in client.messages:
                        payload = json.loads(message.payload)  # type: ignore[arg-type]
                        self.messages.append(Received(message.topic.value, payload,
                                                      time.monotonic()))
                        seq = payload.get("seq")
                        device = message.topic.value.split("/")[1]
                        if self.ack and isinstance(seq, int):
                            best = max([seq] + [s for s, _ in self.acks.get(device, [])])
                            self.acks.setdefault(device, []).append((best, time.monotonic()))
                            await client.publish(f"aed/{device}/ack",
                                                 json.dumps({"v": 1, "seq": best}), qos=1)
            except aiomqtt.MqttError:
                if self._stopping:  # aiomqtt reports a connect cut short by a cancel as an error
                    raise asyncio.CancelledError from None
                await asyncio.sleep(0.2)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            stuck = await cancel_and_wait([self._task])  # type: ignore[list-item]
            assert not stuck, "the fleet receiver did not stop"

    def of(self, device: str, leaf: str) -> list[dict[str, Any]]:
        return [m.payload for m in self.messages if m.topic == f"aed/{device}/{leaf}"]

    def seqs(self, device: str) -> list[int]:
        """Every seq received from the device, in arrival order (duplicates included)."""
        return [m.payload["seq"] for m in self.messages
                if m.topic.startswith(f"aed/{device}/") and "seq" in m.payload]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running Mosquitto with the generated configuration (services only, no cabinets)."""
    mosquitto = Mosquitto(tmp_path / "broker", [])
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()
