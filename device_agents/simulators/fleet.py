"""Many simulated cabinets in one process: a load generator speaking contract v1 over MQTT.

Each virtual cabinet keeps its own state and seq; doors open and close, AEDs are taken and
returned at random, and every change is published as events plus a telemetry snapshot, with
heartbeat snapshots in between. All cabinets share one MQTT connection under a service account,
so one process can drive a national fleet's worth of traffic into an ingest.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

import aiomqtt

from device_agents import payloads
from device_agents.config import parse_mqtt_url
from device_agents.publishing import PublishWindow
from device_agents.reading import ControllerReading

BATCH = 200


@dataclass
class VirtualCabinet:
    device_id: str
    reading: ControllerReading
    seq: int = 0

    def next_messages(self, rng: random.Random, now: datetime) -> list[tuple[str, bytes]]:
        """One step: usually a heartbeat, sometimes a door or AED change with its events."""
        messages: list[tuple[str, bytes]] = []
        roll = rng.random()
        if roll < 0.1:
            opened = not self.reading.door_open
            self.reading = replace(self.reading, door_open=opened)
            messages.append(("event", self._event(now, "door_opened" if opened else "door_closed")))
        elif roll < 0.12:
            present = not self.reading.aed_present
            self.reading = replace(self.reading, aed_present=present)
            messages.append(("event", self._event(now, "aed_returned" if present
                                                  else "aed_removed")))
        self.seq += 1
        messages.append(("telemetry", payloads.encode(
            payloads.telemetry(self.device_id, self.seq, now, self.reading))))
        return messages

    def _event(self, now: datetime, event_type: str) -> bytes:
        self.seq += 1
        return payloads.encode(payloads.event(self.device_id, self.seq, now, event_type))


def virtual_fleet(count: int, prefix: str = "sim", seed: int = 1) -> list[VirtualCabinet]:
    rng = random.Random(seed)
    return [VirtualCabinet(f"{prefix}-{i:05d}", ControllerReading(
        battery_pct=rng.randint(60, 100), pads_expiry=date(2027, rng.randint(1, 12), 1),
        door_open=False, aed_present=True, temperature_c=round(rng.uniform(5, 25), 1),
        self_test="pass", heater_on=False, power="mains")) for i in range(count)]


@dataclass(frozen=True)
class FleetRun:
    cabinets: int
    messages: int
    seconds: float

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


async def drive_fleet(mqtt_url: str, cabinets: list[VirtualCabinet], messages: int,
                      rate_per_s: float | None = None, topic_root: str = "aed",
                      seed: int = 2) -> FleetRun:
    """Publish `messages` messages (QoS 1, each acknowledged by the broker) across the fleet."""
    endpoint = parse_mqtt_url(mqtt_url)
    rng = random.Random(seed)
    sent = 0
    async with aiomqtt.Client(endpoint.host, endpoint.port, username=endpoint.username,
                              password=endpoint.password, max_inflight_messages=BATCH,
                              max_queued_outgoing_messages=BATCH * 4) as client:
        # Many publishes in flight is the point here, not a concern worth a warning each.
        client.pending_calls_threshold = BATCH * 2
        window = PublishWindow(client, BATCH)
        started = time.perf_counter()
        while sent < messages:
            cabinet = rng.choice(cabinets)
            for leaf, data in cabinet.next_messages(rng, datetime.now(UTC)):
                await window.publish(f"{topic_root}/{cabinet.device_id}/{leaf}", data)
                sent += 1
            if rate_per_s:
                ahead = sent / rate_per_s - (time.perf_counter() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await window.drain()
        elapsed = time.perf_counter() - started
    return FleetRun(len(cabinets), sent, elapsed)
