"""The registry's other cabinets, played over one MQTT connection: heartbeats, now and then a
door opened and shut.

Each cabinet speaks contract v1 as an agent would: its seq carries on from the highest the fleet
stored, it is `online` while the demo runs, and what the fleet has not acked is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import aiomqtt
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from device_agents import payloads
from device_agents.config import parse_mqtt_url
from device_agents.reading import ControllerReading
from fleet.models import AppliedMessage, TelemetryState

HEARTBEAT_S = 60.0
RESEND_AFTER_S = 10.0
DOOR_CHANCE = 0.02  # per heartbeat


def initial_reading(rng: random.Random, today: date) -> ControllerReading:
    """A plausible cabinet: mostly ready, a few with a low battery or pads about to expire."""
    roll = rng.random()
    battery = rng.randint(8, 18) if roll < 0.04 else rng.randint(55, 100)
    pads_days = rng.randint(5, 25) if 0.04 <= roll < 0.08 else rng.randint(90, 900)
    return ControllerReading(
        battery_pct=battery, pads_expiry=today + timedelta(days=pads_days), door_open=False,
        aed_present=True, temperature_c=round(rng.uniform(6.0, 22.0), 1), self_test="pass",
        heater_on=False, power="mains")


@dataclass
class VirtualCabinet:
    device_id: str
    reading: ControllerReading
    seq: int
    due: float
    unacked: dict[int, tuple[str, bytes]] = field(default_factory=dict)  # in seq order
    sent_upto: int = 0
    last_sent: float = 0.0

    def heartbeat(self, rng: random.Random, now: datetime) -> None:
        """Queue this heartbeat's messages until acked: the door may open (or shut again), then
        a snapshot."""
        if self.reading.door_open or rng.random() < DOOR_CHANCE:
            opened = not self.reading.door_open
            self.reading = replace(self.reading, door_open=opened)
            self.seq += 1
            self.unacked[self.seq] = ("event", payloads.encode(payloads.event(
                self.device_id, self.seq, now, "door_opened" if opened else "door_closed")))
        self.seq += 1
        self.unacked[self.seq] = ("telemetry", payloads.encode(
            payloads.telemetry(self.device_id, self.seq, now, self.reading)))

    def acked(self, seq: int) -> None:
        self.unacked = {n: message for n, message in self.unacked.items() if n > seq}


def last_seqs(engine: Engine, device_ids: list[str]) -> dict[str, int]:
    """The highest seq the fleet holds of each device (ledger or latest state)."""
    found: dict[str, int] = {}
    with Session(engine) as session:
        for model in (AppliedMessage, TelemetryState):
            for device_id, seq in session.exec(
                    select(model.device_id, func.max(model.seq))
                    .where(col(model.device_id).in_(device_ids)).group_by(model.device_id)):
                found[device_id] = max(int(seq), found.get(device_id, 0))
    return found


def virtual_fleet(device_ids: list[str], seqs: dict[str, int], today: date,
                  rng: random.Random) -> list[VirtualCabinet]:
    """One cabinet per device id, due at once, spread over the heartbeat afterwards."""
    return [VirtualCabinet(device_id, initial_reading(rng, today), seqs.get(device_id, 0), 0.0)
            for device_id in device_ids]


async def play_fleet(cabinets: list[VirtualCabinet], mqtt_url: str, topic_root: str,
                     seed: int, stop: asyncio.Event) -> None:
    """Publish the cabinets' traffic until `stop`; they go `offline` on the way out."""
    endpoint = parse_mqtt_url(mqtt_url)
    rng = random.Random(seed)
    by_id = {cabinet.device_id: cabinet for cabinet in cabinets}
    async with aiomqtt.Client(endpoint.host, endpoint.port, identifier="aedfleet-demo-cabinets",
                              max_inflight_messages=100) as client:
        await client.subscribe(f"{topic_root}/+/ack", qos=1)
        acks = asyncio.create_task(_take_acks(client, by_id))
        try:
            await _send_due(client, cabinets, topic_root, rng)
            # `online` after the first snapshot, so no cabinet is ever online without a reading
            await _set_status(client, cabinets, topic_root, True)
            while not stop.is_set():
                if acks.done():
                    acks.result()  # the connection broke: raise its error
                await _send_due(client, cabinets, topic_root, rng)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
            await _set_status(client, cabinets, topic_root, False)
        finally:
            acks.cancel()
            await asyncio.gather(acks, return_exceptions=True)


async def _send_due(client: aiomqtt.Client, cabinets: list[VirtualCabinet], topic_root: str,
                    rng: random.Random) -> None:
    clock = time.monotonic()
    for cabinet in cabinets:
        if cabinet.unacked and clock - cabinet.last_sent >= RESEND_AFTER_S:
            cabinet.sent_upto = 0  # no ack for a while: everything unacked goes again
        if clock >= cabinet.due:
            cabinet.heartbeat(rng, datetime.now(UTC))
            cabinet.due = clock + HEARTBEAT_S * rng.uniform(0.5, 1.5)
        pending = [(seq, m) for seq, m in cabinet.unacked.items() if seq > cabinet.sent_upto]
        for seq, (leaf, data) in pending:
            await client.publish(f"{topic_root}/{cabinet.device_id}/{leaf}", data, qos=1)
            cabinet.sent_upto, cabinet.last_sent = seq, clock


async def _take_acks(client: aiomqtt.Client, by_id: dict[str, VirtualCabinet]) -> None:
    async for message in client.messages:
        cabinet = by_id.get(str(message.topic).split("/")[1])
        if cabinet is None or not isinstance(message.payload, bytes | bytearray):
            continue
        with contextlib.suppress(ValueError):
            cabinet.acked(payloads.parse_ack(bytes(message.payload)))


async def _set_status(client: aiomqtt.Client, cabinets: list[VirtualCabinet], topic_root: str,
                      online: bool) -> None:
    now = datetime.now(UTC)
    for cabinet in cabinets:
        await client.publish(f"{topic_root}/{cabinet.device_id}/status", payloads.encode(
            payloads.status(cabinet.device_id, online, now)), qos=1, retain=True)
