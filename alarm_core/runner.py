"""`aedfleet alarm`: the alarm core as a running service.

One process: the HTTP API for the 112 centre and responder apps (waitress, in threads), and on an
asyncio loop the MQTT side: the outbox relay that publishes committed alerts and cancellations
(QoS 1, marked sent only after the broker's PUBACK), the consumer of responders' answers and
positions, a tick for timeouts and retention, and the refresh of the in-memory pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
from sqlalchemy import func, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from alarm_core import inbox
from alarm_core.errors import Refused
from alarm_core.metrics import AlarmMetrics
from alarm_core.models import OutboxMessage, Responder
from alarm_core.service import AlarmCore, Committed
from alarm_core.sms import HttpSmsGateway, SmsError, SmsGateway
from alarm_core.wire import (
    NEWS_ROOT,
    RESPONDER_TOPIC,
    decode_json,
    parse_answer,
    parse_location,
    parse_read_receipt,
    sms_text,
)
from device_agents.config import parse_mqtt_url
from fleet.db import session_scope
from fleet.models import DeadLetter
from fleet.mqtt import default_client_id, service_client
from fleet.settings import Settings

logger = logging.getLogger(__name__)

BATCH = 500
REMINDER_INTERVAL_S = 3_600.0
SMALL_BATCH = 20
NON_URGENT_PER_S = 50.0
IN_FLIGHT = 1_000
SMS_THREADS = 4


def utcnow() -> datetime:
    return datetime.now(UTC)


def _no_delay(client: aiomqtt.Client) -> None:
    """Send each alert at once (TCP_NODELAY): Nagle's algorithm would hold a burst of small
    QoS 1 packets behind delayed ACKs, 40 ms at a time."""
    sock = client._client.socket()  # noqa: SLF001 -- paho's socket, which aiomqtt does not expose
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]


@dataclass
class Delivery:
    id: int
    channel: str
    topic: str
    payload: str
    phone: str | None
    attempts: int = 0
    urgent: bool = True
    language: str | None = None
    """An SMS's language: the responder's, else their region's."""
    zone: str | None = None
    """The time zone an SMS writes times in: the responder's region's."""


class AlarmRunner:
    """The MQTT side of the alarm core, around one `AlarmCore`."""

    def __init__(self, core: AlarmCore, settings: Settings, metrics: AlarmMetrics,
                 sms: SmsGateway | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        if not settings.mqtt_url:
            raise ValueError("no broker configured: set mqtt_url (AEDFLEET_MQTT_URL)")
        self.core = core
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.sms = sms or (HttpSmsGateway(settings.alarm.sms_gateway_url)
                           if settings.alarm.sms_gateway_url else None)
        self.endpoint = parse_mqtt_url(settings.mqtt_url)
        self.client_id = settings.alarm.client_id or default_client_id("alarm")
        self.connected = threading.Event()
        self.started = threading.Event()
        """Set at the first connection to the broker: serving from then on, also while the
        broker is away (calls are stored and alerted as soon as it is back; SMS meanwhile)."""
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handed: list[Committed] = []
        # Ids sent lately: an alert handed over after the table poll already sent it is
        # not sent twice.
        self._recent: set[int] = set()
        self._recent_order: deque[int] = deque(maxlen=20_000)
        self._sms_in_flight: set[int] = set()
        self._sms_tasks: set[asyncio.Task[None]] = set()
        # SMS sends wait on a gateway that may hang for their whole timeout: threads of their
        # own, so that they never hold up marking alerts, answers or the ticks.
        self._sms_threads = ThreadPoolExecutor(max_workers=SMS_THREADS, thread_name_prefix="sms")

    def wake(self, fresh: list[Committed]) -> None:
        """Thread-safe: there are new outbox messages, and these alerts can go at once."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._hand_over, fresh)

    def _hand_over(self, fresh: list[Committed]) -> None:
        assert self._wake is not None
        self._handed.extend(fresh)
        self._wake.set()

    def _take_handed(self) -> list[Delivery]:
        """Alerts handed over by the intake, less any the relay already sent from the table."""
        batch = [Delivery(c.id, "mqtt", c.topic, c.payload, None)
                 for c in self._handed if c.id not in self._recent]
        self._handed.clear()
        return batch

    def _remember(self, sent: list[int]) -> None:
        for message_id in sent:
            if len(self._recent_order) == self._recent_order.maxlen:
                self._recent.discard(self._recent_order[0])
            self._recent_order.append(message_id)
            self._recent.add(message_id)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, reconnecting to the broker when it goes away."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.core.outbox_written = self.wake
        timers = [asyncio.create_task(self._every(self.settings.alarm.tick_interval_s,
                                                  self.core.tick, stop)),
                  asyncio.create_task(self._every(self.settings.alarm.refresh_interval_s,
                                                  self.core.refresh, stop)),
                  asyncio.create_task(self._every(REMINDER_INTERVAL_S,
                                                  self.core.remind_certificates, stop))]
        try:
            while not stop.is_set():
                try:
                    await self._session(stop)
                except aiomqtt.MqttError as exc:
                    self.connected.clear()
                    logger.warning("broker connection lost (%s); reconnecting in 1 s", exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1.0)
        finally:
            for task in timers:
                task.cancel()
            await asyncio.gather(*timers, return_exceptions=True)

    async def _every(self, seconds: float, job: Callable[[datetime], Any],
                     stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
            if stop.is_set():
                return
            try:
                await asyncio.to_thread(job, self.clock())
            except Exception:  # a failed round is logged and the next one tries again
                logger.exception("alarm core job %s failed", getattr(job, "__name__", job))

    async def _session(self, stop: asyncio.Event) -> None:
        endpoint = self.endpoint
        root = self.settings.alarm.topic_root
        async with service_client(endpoint, self.client_id, IN_FLIGHT) as client:
            _no_delay(client)
            await client.subscribe(f"{root}/+/response", qos=1)
            await client.subscribe(f"{root}/+/location", qos=0)
            await client.subscribe(f"{root}/+/inbox/read", qos=1)
            self.connected.set()
            self.started.set()
            logger.info("alarm core connected to %s:%d as %s", endpoint.host, endpoint.port,
                        self.client_id)
            tasks = [asyncio.create_task(self._relay(client, stop)),
                     asyncio.create_task(self._consume(client))]
            stopper = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            for task in [*tasks, stopper]:
                task.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)
            # What was handed over and not sent stays in the table: the poll sends it after
            # the reconnect, unless it has expired meanwhile.
            self._handed.clear()
            for task in done:
                if task is not stopper and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]

    # -- outbox -------------------------------------------------------------------------------

    async def _relay(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        assert self._wake is not None
        while not stop.is_set():
            try:
                await self._relay_once(client)
            except aiomqtt.MqttError:
                raise  # the session ends; run() reconnects
            except Exception:  # the database, most likely: log, wait, go on
                logger.exception("outbox relay failed; retrying in 1 s")
                await asyncio.sleep(1.0)

    async def _relay_once(self, client: aiomqtt.Client) -> None:
        """Send one batch: alerts handed over by the intake, else what the table holds."""
        assert self._wake is not None
        self._wake.clear()
        batch = self._take_handed() or await asyncio.to_thread(self._pending)
        pause = 1.0
        if batch:
            await self._deliver(client, batch)
            if batch[0].urgent:
                if len(batch) == BATCH:
                    return
            else:
                # Questionnaires and reminders trickle out, so that they never compete with
                # alerts for the broker, the database or the processor; an alert written
                # meanwhile wakes the relay at once.
                pause = len(batch) / NON_URGENT_PER_S
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), pause)

    def _pending(self) -> list[Delivery]:
        with Session(self.core.engine) as session:
            # A message older than an incident can last is not worth sending any more: an alert
            # that arrives an hour late would send someone to a call long over.
            now = self.clock()
            oldest = now - timedelta(minutes=self.settings.dispatch.incident_timeout_minutes)
            due = (sa_select(OutboxMessage)
                   .where(col(OutboxMessage.sent_at).is_(None),
                          or_(col(OutboxMessage.next_attempt_at).is_(None),
                              col(OutboxMessage.next_attempt_at) <= now))
                   .order_by(col(OutboxMessage.id)))
            rows = session.execute(due.where(col(OutboxMessage.urgent).is_(True),
                                              col(OutboxMessage.created_at) >= oldest)
                                   .limit(BATCH)).scalars().all()
            if not rows:
                # Questionnaires and reminders in small batches: an alert written meanwhile
                # waits for at most one of them.
                rows = session.execute(due.where(col(OutboxMessage.urgent).is_(False))
                                       .limit(SMALL_BATCH)).scalars().all()
            rows = [m for m in rows if m.id not in self._sms_in_flight]
            self.metrics.outbox_pending.set(session.execute(
                sa_select(func.count()).select_from(OutboxMessage)
                .where(col(OutboxMessage.sent_at).is_(None))).scalar_one())
            phones: dict[str, str | None] = {}
            languages: dict[str, str | None] = {}
            zones: dict[str, str | None] = {}
            sms_ids = {m.topic.split("/")[1] for m in rows if m.channel == "sms"}
            if sms_ids:
                for rid, phone, language, region in session.execute(
                        sa_select(col(Responder.id), col(Responder.phone),
                                  col(Responder.language), col(Responder.region))
                        .where(col(Responder.id).in_(sms_ids))):
                    home = self.core.regions.get(region)
                    phones[rid] = phone
                    languages[rid] = language or (home.language if home else None)
                    zones[rid] = home.timezone if home else self.settings.timezone
            return [Delivery(m.id or 0, m.channel, m.topic, m.payload,
                             phones.get(m.topic.split("/")[1]), m.attempts, m.urgent,
                             languages.get(m.topic.split("/")[1]),
                             zones.get(m.topic.split("/")[1]))
                    for m in rows]

    async def _deliver(self, client: aiomqtt.Client, batch: list[Delivery]) -> None:
        started = time.perf_counter()
        mqtt = [d for d in batch if d.channel == "mqtt"]
        # Region news is retained: an app that connects later still gets the latest.
        results = await asyncio.gather(
            *(client.publish(d.topic, d.payload.encode(), qos=1, timeout=10,
                             retain=d.topic.startswith(f"{NEWS_ROOT}/")) for d in mqtt),
            return_exceptions=True)
        sent = [d.id for d, r in zip(mqtt, results, strict=True) if r is None]
        failed = [(d, str(r)) for d, r in zip(mqtt, results, strict=True) if r is not None]
        self._remember(sent)
        self.metrics.published.labels("mqtt").inc(len(sent))
        self.metrics.send_failures.labels("mqtt").inc(len(failed))
        sms = [d for d in batch if d.channel == "sms"]
        if sms:
            # An SMS gateway can be slow or down: its sends never hold up an alert.
            self._sms_in_flight.update(d.id for d in sms)
            task = asyncio.create_task(self._deliver_sms(sms))
            self._sms_tasks.add(task)
            task.add_done_callback(self._sms_tasks.discard)
        published = time.perf_counter()
        await asyncio.to_thread(self._mark, sent, failed)
        logger.debug("relay: %d messages published in %.1f ms, marked in %.1f ms", len(batch),
                     (published - started) * 1000, (time.perf_counter() - published) * 1000)
        if failed:
            logger.warning("%d outbox messages not delivered, retried later: %s", len(failed),
                           failed[0][1])
            if any(isinstance(r, aiomqtt.MqttError) for r in results):
                raise aiomqtt.MqttError("publishing failed")

    async def _deliver_sms(self, batch: list[Delivery]) -> None:
        sent: list[int] = []
        failed: list[tuple[Delivery, str]] = []
        try:
            for delivery in batch:
                try:
                    await asyncio.get_running_loop().run_in_executor(
                        self._sms_threads, self._send_sms, delivery)
                    sent.append(delivery.id)
                    self.metrics.published.labels("sms").inc()
                except Exception as exc:  # noqa: BLE001 -- one SMS never stops the others
                    failed.append((delivery, str(exc) or type(exc).__name__))
                    self.metrics.send_failures.labels("sms").inc()
            await asyncio.to_thread(self._mark, sent, failed)
        except Exception:
            logger.exception("SMS delivery failed; retried from the outbox")
        finally:
            self._sms_in_flight.difference_update(d.id for d in batch)

    def _send_sms(self, delivery: Delivery) -> None:
        if self.sms is None or not delivery.phone:
            raise SmsError("no SMS gateway configured" if self.sms is None
                           else "responder has no phone number")
        self.sms.send(delivery.phone, sms_text(json.loads(delivery.payload),
                                               delivery.language, delivery.zone))

    def _mark(self, sent: list[int], failed: list[tuple[Delivery, str]]) -> None:
        now = self.clock()
        with self.core.writing(), session_scope(self.core.engine) as session:
            if sent:
                session.execute(update(OutboxMessage).where(col(OutboxMessage.id).in_(sent))
                                .values(sent_at=now))
            for delivery, error in failed:
                # An MQTT failure is the broker's: all wait for the reconnect and then go in
                # order (an alert never after its cancel). An SMS backs off on its own.
                backoff = timedelta(seconds=0 if delivery.channel == "mqtt"
                                    else min(60, 2 ** delivery.attempts))
                session.execute(update(OutboxMessage).where(col(OutboxMessage.id) == delivery.id)
                                .values(attempts=delivery.attempts + 1, last_error=error[:300],
                                        next_attempt_at=now + backoff))

    # -- answers and positions ----------------------------------------------------------------

    async def _consume(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) \
                else str(message.payload).encode()
            await asyncio.to_thread(self.handle, str(message.topic), payload)

    def handle(self, topic: str, payload: bytes) -> None:
        """Apply one responder message; a bad one is refused, counted and kept, never fatal."""
        now = self.clock()
        try:
            root, _, rest = topic.partition("/")
            match = RESPONDER_TOPIC.fullmatch(f"responders/{rest}")
            if root != self.settings.alarm.topic_root or match is None:
                raise Refused("invalid_topic", f"unexpected topic {topic}")
            responder_id, kind = match.groups()
            body = decode_json(payload)
            if kind == "response":
                answer = parse_answer(body)
                self.core.answer(answer.incident_id, responder_id, answer.answer, now)
                self.metrics.answers.labels(answer.answer).inc()
            elif kind == "inbox/read":
                receipt = parse_read_receipt(body)
                with self.core.writing(), session_scope(self.core.engine) as session:
                    inbox.mark_read(session, self.settings, responder_id, receipt.message_id,
                                    now, receipt.ts)
            else:
                report = parse_location(body)
                self.core.record_location(report.incident_id, responder_id, report.lat,
                                          report.lon, report.ts, now)
        except Refused as exc:
            self.metrics.rejected.labels(exc.code).inc()
            logger.info("refused %s: %s", topic, exc.message)
            self._dead_letter(topic, exc.code, exc.message, payload, now)
        except Exception:  # one bad message never stops the consumer
            logger.exception("responder message on %s failed", topic)
            self.metrics.rejected.labels("apply_failed").inc()
            self._dead_letter(topic, "apply_failed", "could not be applied", payload, now)

    def _dead_letter(self, topic: str, reason: str, detail: str, payload: bytes,
                     now: datetime) -> None:
        with contextlib.suppress(Exception), self.core.writing(), \
                session_scope(self.core.engine) as session:
            session.add(DeadLetter(received_at=now, topic=topic[:300], device_id=None,
                                   reason=reason[:32], detail=detail[:500],
                                   payload=payload[:4096], payload_size=len(payload)))

