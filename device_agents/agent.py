"""The cabinet agent: read the controller, spool every message, keep the fleet told over MQTT.

Two loops share the spool. The *poll loop* reads the controller, turns changes into events and
telemetry (plus a heartbeat snapshot every `heartbeat_s`), and stores each message in the spool
before anything is sent. The *link loop* keeps an MQTT connection (with an `offline` will on the
retained status), sends spooled messages in seq order, drops them when the fleet's `ack` covers
them, answers commands, and after any reconnect or an ack timeout sends again from the first
unacknowledged seq. Nothing is lost through broker outages, network cuts or agent restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import aiomqtt

from device_agents import payloads
from device_agents.changes import TemperatureLimits, transition_events
from device_agents.config import AgentConfig, agent_password, parse_mqtt_url, tls_context
from device_agents.errors import CabinetReadError, CommandError
from device_agents.publishing import PublishWindow
from device_agents.reading import ControllerReading
from device_agents.sources import CabinetSource
from device_agents.spool import Spool
from device_agents.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

@dataclass
class AgentStats:
    published: int = 0
    resends: int = 0
    connects: int = 0
    source_faults: int = 0
    commands: int = 0


def utcnow() -> datetime:
    return datetime.now(UTC)


class CabinetAgent:
    """One cabinet's agent; `run()` until cancelled."""

    def __init__(self, config: AgentConfig, source: CabinetSource, spool: Spool,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.source = source
        self.spool = spool
        self.clock = clock
        self.stats = AgentStats()
        self.connected = asyncio.Event()
        self._limits = TemperatureLimits(config.temperature_low_c, config.temperature_high_c)
        self._wakeup = asyncio.Event()
        self._fault: str | None = None
        self._last: ControllerReading | None = _reading_from_state(spool.load_state("reading"))
        self._answers: OrderedDict[str, asyncio.Future[str]] = OrderedDict()
        self._sent_upto = spool.acked_seq
        self._stopping = False

    async def run(self) -> None:
        """Run until cancelled (or until a loop fails unexpectedly)."""
        loops = [asyncio.create_task(self._poll_loop(), name="poll"),
                 asyncio.create_task(self._link_loop(), name="link")]
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            # Libraries in the loops may turn a cancellation into an I/O error (pymodbus: "no
            # response", aiomqtt: a failed connect); the flag stops the loops all the same.
            self._stopping = True
            stuck = await cancel_and_wait(loops)
            if stuck:
                logger.error("agent loops did not stop: %s", stuck)

    def _stop_if_stopping(self) -> None:
        if self._stopping:
            raise asyncio.CancelledError

    # --- producing messages -------------------------------------------------------------

    def _spool_telemetry(self, reading: ControllerReading | None) -> None:
        device_id, now = self.config.device_id, self.clock()
        self.spool.append("telemetry", lambda seq: payloads.encode(
            payloads.telemetry(device_id, seq, now, reading, self._fault)))
        self._wakeup.set()

    def _spool_event(self, event_type: str, detail: str | None = None,
                     cmd_id: str | None = None) -> None:
        device_id, now = self.config.device_id, self.clock()
        self.spool.append("event", lambda seq: payloads.encode(
            payloads.event(device_id, seq, now, event_type, detail, cmd_id)))
        self._wakeup.set()

    async def _poll_loop(self) -> None:
        config = self.config
        backoff = config.backoff_min_s
        last_telemetry = float("-inf")  # the first reading is always sent
        while True:
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
                async with asyncio.timeout(config.source.timeout_s * 3):
                    reading = await self.source.read()
            except (CabinetReadError, TimeoutError) as exc:
                self._stop_if_stopping()
                reason = str(exc) or "controller did not answer in time"
                if self._fault is None:
                    logger.warning("cannot read the cabinet controller: %s", reason)
                    self._fault = reason
                    self.stats.source_faults += 1
                    self._spool_event("source_fault", reason)
                    self._spool_telemetry(None)
                    last_telemetry = time.monotonic()
                elif time.monotonic() - last_telemetry >= config.heartbeat_s:
                    self._spool_telemetry(None)
                    last_telemetry = time.monotonic()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, config.backoff_max_s)
                continue
            backoff = config.backoff_min_s
            changed = reading != self._last
            if self._fault is not None:
                logger.warning("cabinet controller readable again")
                self._fault = None
                self._spool_event("source_restored")
                changed = True
            for event_type, detail in transition_events(self._last, reading, self._limits):
                self._spool_event(event_type, detail)
            if changed or time.monotonic() - last_telemetry >= config.heartbeat_s:
                self._spool_telemetry(reading)
                last_telemetry = time.monotonic()
            if reading != self._last:
                self._last = reading
                self.spool.save_state("reading", reading.telemetry_fields())
            self._stop_if_stopping()
            await asyncio.sleep(config.poll_interval_s)

    # --- the MQTT link ----------------------------------------------------------------

    async def _link_loop(self) -> None:
        config = self.config
        endpoint = parse_mqtt_url(config.mqtt_url)
        status_topic = config.topic("status")
        will = aiomqtt.Will(status_topic, self._status(online=False), qos=1, retain=True)
        backoff = config.backoff_min_s
        while True:
            try:
                async with aiomqtt.Client(
                    endpoint.host, endpoint.port, username=endpoint.username,
                    password=agent_password(endpoint), identifier=config.device_id, will=will,
                    tls_context=tls_context(endpoint, config.tls_ca_file), keepalive=30,
                    timeout=10, max_inflight_messages=config.publish_batch,
                ) as client:
                    client.pending_calls_threshold = config.publish_batch * 2
                    await client.subscribe(config.topic("ack"), qos=1)
                    await client.subscribe(config.topic("cmd"), qos=1)
                    await client.publish(status_topic, self._status(online=True), qos=1,
                                         retain=True)
                    self.stats.connects += 1
                    backoff = config.backoff_min_s
                    # Whatever the fleet has not acknowledged is sent again, in seq order.
                    self._sent_upto = self.spool.acked_seq
                    self.connected.set()
                    logger.info("connected to %s:%d; %d messages to send", endpoint.host,
                                endpoint.port, len(self.spool))
                    try:
                        async with asyncio.TaskGroup() as tasks:
                            tasks.create_task(self._send_loop(client))
                            tasks.create_task(self._receive_loop(client))
                    except asyncio.CancelledError:
                        # A clean stop sends no will: say `offline` ourselves.
                        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                            await client.publish(status_topic, self._status(online=False),
                                                 qos=1, retain=True, timeout=2)
                        raise
            except* aiomqtt.MqttError as group:
                self._stop_if_stopping()
                self.connected.clear()
                logger.warning("MQTT link down (%s); retrying in %.1f s",
                               group.exceptions[0], backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.config.backoff_max_s)

    def _status(self, online: bool) -> bytes:
        return payloads.encode(payloads.status(self.config.device_id, online, self.clock()))

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        window = PublishWindow(client, self.config.publish_batch)
        try:
            await self._send_spooled(window)
        finally:
            window.cancel()

    async def _send_spooled(self, window: PublishWindow) -> None:
        config = self.config
        last_progress = time.monotonic()
        acked = self.spool.acked_seq
        while True:
            self._stop_if_stopping()
            self._wakeup.clear()
            if self.spool.acked_seq != acked:
                acked = self.spool.acked_seq
                last_progress = time.monotonic()
            room = config.max_unacked - (self._sent_upto - acked)
            batch = self.spool.pending(self._sent_upto, min(config.publish_batch, room)) \
                if room > 0 else []
            if batch:
                if self._sent_upto <= acked:
                    last_progress = time.monotonic()  # the ack clock starts with this send
                for message in batch:
                    await window.publish(config.topic(message.kind), message.payload)
                    self._sent_upto = message.seq
                self.stats.published += len(batch)
                continue
            window.raise_error()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(config.ack_timeout_s):
                    await self._wakeup.wait()
            stalled = time.monotonic() - last_progress >= config.ack_timeout_s
            if self.spool.acked_seq < self._sent_upto and stalled:
                logger.warning("no ack beyond seq %d for %.0f s: sending again from there",
                               self.spool.acked_seq, config.ack_timeout_s)
                self.stats.resends += 1
                self._sent_upto = self.spool.acked_seq
                last_progress = time.monotonic()

    async def _receive_loop(self, client: aiomqtt.Client) -> None:
        ack_topic, cmd_topic = self.config.topic("ack"), self.config.topic("cmd")
        async for message in client.messages:
            self._stop_if_stopping()
            data = message.payload if isinstance(message.payload, bytes) else \
                str(message.payload).encode()
            if message.topic.value == ack_topic:
                try:
                    seq = payloads.parse_ack(data)
                except ValueError as exc:
                    logger.warning("ignoring malformed ack: %s", exc)
                    continue
                self.spool.ack(seq)
                self._wakeup.set()
            elif message.topic.value == cmd_topic:
                asyncio.create_task(self._answer(data))

    # --- commands ---------------------------------------------------------------------

    async def _answer(self, data: bytes) -> None:
        self.stats.commands += 1
        try:
            command = payloads.parse_command(data)
        except CommandError as exc:
            logger.warning("refusing command: %s", exc)
            self._spool_event("cmd_result", f"error: {exc}", exc.cmd_id)
            return
        earlier = self._answers.get(command.cmd_id)
        if earlier is not None:  # a redelivered command is answered, not carried out twice
            self._spool_event("cmd_result", await earlier, command.cmd_id)
            return
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._answers[command.cmd_id] = answer
        while len(self._answers) > 100:
            self._answers.popitem(last=False)
        try:
            detail = await self._carry_out(command)
        except (CabinetReadError, TimeoutError) as exc:
            detail = f"error: {exc or 'controller did not answer in time'}"
        answer.set_result(detail)
        self._spool_event("cmd_result", detail, command.cmd_id)

    async def _carry_out(self, command: payloads.Command) -> str:
        timeout = self.config.source.timeout_s * 3
        if command.cmd == "ping":
            return "ok: pong"
        if command.cmd == "unlock":
            assert command.valid_s is not None
            async with asyncio.timeout(timeout):
                await self.source.unlock(command.valid_s)
            return f"ok: unlocked for {command.valid_s} s"
        async with asyncio.timeout(timeout):
            reading = await self.source.read()
        return f"ok: last self-test {reading.self_test or 'unknown'}"


def _reading_from_state(state: Any) -> ControllerReading | None:
    if not isinstance(state, dict):
        return None
    try:
        if state.get("pads_expiry"):
            state = {**state, "pads_expiry": date.fromisoformat(state["pads_expiry"])}
        return ControllerReading(**state)
    except (TypeError, ValueError):
        return None
