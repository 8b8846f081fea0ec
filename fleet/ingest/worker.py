"""`aedfleet ingest`: subscribe to what cabinets publish and apply it, exactly once.

The worker joins an MQTT shared subscription (`$share/<group>/aed/+/telemetry`, `event`,
`status`), so any number of workers on any number of machines split the cabinets' messages with
no coordination of their own. It keeps a persistent broker session under a stable client id and
acknowledges each message to the broker (PUBACK) only after the transaction that stored it has
committed: a worker killed at any moment gets its unacknowledged messages again when it comes
back, and every other worker's acks to a cabinet stay true. After each commit it acks each cabinet
on `aed/{id}/ack` with the highest seq stored; the cabinet then drops what it spooled.

When the database is unavailable the batch is retried with backoff and nothing is acked; the
broker holds what arrives meanwhile. A batch that fails for any other reason is applied message
by message, so one poison message becomes a dead letter instead of blocking the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiomqtt
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from device_agents.config import parse_mqtt_url
from device_agents.tasks import cancel_and_wait
from fleet.ingest.apply import BatchOutcome, Incoming, apply_batch, apply_each, contiguous_acks
from fleet.ingest.metrics import IngestMetrics
from fleet.ingest.sweep import sweep
from fleet.mailer import Mailer
from fleet.mqtt import default_client_id, service_client
from fleet.notifications import deliver_pending
from fleet.settings import Settings
from fleet.timeseries import NullSink, TimeSeriesSink

logger = logging.getLogger(__name__)

LEAVES = ("telemetry", "event", "status")
IN_FLIGHT = 2_000  # outgoing acks in flight at once
NOTIFY_INTERVAL_S = 30.0


class _Drained(Exception):
    """Ends a connection after a clean stop."""


@dataclass
class WorkerStats:
    connects: int = 0
    batches: int = 0


class IngestWorker:
    """One ingest worker: MQTT in, batched transactions, acks out, periodic sweeps."""

    def __init__(self, settings: Settings, engine: Engine, *, sink: TimeSeriesSink | None = None,
                 metrics: IngestMetrics | None = None, client_id: str | None = None,
                 mailer: Mailer | None = None) -> None:
        if not settings.mqtt_url:
            raise ValueError("no broker configured: set mqtt_url (AEDFLEET_MQTT_URL)")
        self.settings = settings
        self.engine = engine
        self.sink = sink or NullSink()
        self.metrics = metrics or IngestMetrics()
        self.mailer = mailer
        self.client_id = client_id or settings.ingest.client_id or default_client_id("ingest")
        self.endpoint = parse_mqtt_url(settings.mqtt_url)
        self.stats = WorkerStats()
        self.connected = asyncio.Event()
        self._gap_grace = timedelta(seconds=settings.ingest.ack_gap_grace_s)
        self._backoff_max_s = 5.0

    def topics(self) -> list[str]:
        config = self.settings.ingest
        prefix = f"$share/{config.share_group}/" if config.share_group else ""
        return [f"{prefix}{config.topic_root}/+/{leaf}" for leaf in LEAVES]

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then leave cleanly (see `_drain_on_stop`)."""
        background = [asyncio.create_task(self._sweep_loop())]
        if self.mailer is not None:
            background.append(asyncio.create_task(self._notify_loop(self.mailer)))
        try:
            await self._connection_loop(stop)
        finally:
            stuck = await cancel_and_wait(background)  # type: ignore[arg-type]
            if stuck:
                logger.error("the sweep or notification delivery did not stop in time")

    async def _connection_loop(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            connects = self.stats.connects
            try:
                await self._connected_session(stop)
                return
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                if stop.is_set():
                    return
                if self.stats.connects != connects:
                    backoff = 0.2  # it was connected: the broker may just have restarted
                logger.warning("MQTT connection lost (%s); reconnecting in %.1f s", exc, backoff)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await stop.wait()
            backoff = min(backoff * 2, self._backoff_max_s)

    async def _connected_session(self, stop: asyncio.Event) -> None:
        endpoint = self.endpoint
        async with service_client(endpoint, self.client_id, IN_FLIGHT) as client:
            # PUBACK after commit, not on receipt: what is not stored stays the broker's to resend.
            client._client.manual_ack_set(True)  # noqa: SLF001 -- paho option aiomqtt does not expose
            for topic in self.topics():
                await client.subscribe(topic, qos=1)
            self.stats.connects += 1
            self.connected.set()
            logger.info("ingest connected to %s:%d as %s", endpoint.host, endpoint.port,
                        self.client_id)
            queue: asyncio.Queue[Incoming] = asyncio.Queue(
                maxsize=self.settings.ingest.batch_max * 4)
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._receive(client, queue))
                    tasks.create_task(self._apply_loop(client, queue))
                    tasks.create_task(self._drain_on_stop(client, queue, stop))
            except* _Drained:
                pass
            except* aiomqtt.MqttError as group:
                raise group.exceptions[0] from None
            self.connected.clear()

    async def _drain_on_stop(self, client: aiomqtt.Client, queue: asyncio.Queue[Incoming],
                             stop: asyncio.Event) -> None:
        """On stop: leave the share group, apply what was received, then disconnect.

        A member of a shared subscription that disconnects while still subscribed keeps its
        share coming into its broker session until it returns; after a clean stop nothing waits
        for it. A worker killed outright keeps its subscription: its share is delivered when it
        comes back under the same client id.
        """
        await stop.wait()
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            for topic in self.topics():
                await client.unsubscribe(topic, timeout=5)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await queue.join()
        raise _Drained


    async def _receive(self, client: aiomqtt.Client, queue: asyncio.Queue[Incoming]) -> None:
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes):
                payload = str(payload).encode()
            self.metrics.received.inc()
            # The queue is bounded: when the database falls behind, reading stops and the broker
            # holds the rest (its in-flight window fills and it queues for this session).
            await queue.put(Incoming(message.topic.value, payload, datetime.now(UTC),
                                     token=(message.mid, message.qos)))
            self.metrics.queued.set(queue.qsize())

    async def _apply_loop(self, client: aiomqtt.Client, queue: asyncio.Queue[Incoming]) -> None:
        config = self.settings.ingest
        while True:
            batch = [await queue.get()]
            deadline = time.monotonic() + config.batch_wait_ms / 1000
            while len(batch) < config.batch_max:
                if queue.empty():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        async with asyncio.timeout(remaining):
                            batch.append(await queue.get())
                    except TimeoutError:
                        break
                else:
                    batch.append(queue.get_nowait())
            self.metrics.queued.set(queue.qsize())
            outcome = await self._apply_with_retry(batch)
            self._acknowledge(client, batch, outcome)
            for _ in batch:
                queue.task_done()

    async def _apply_with_retry(self, batch: list[Incoming]) -> BatchOutcome:
        """Apply `batch` until it is stored; only database trouble makes it wait and retry.

        A batch that fails otherwise, or keeps conflicting with another worker's, is applied
        message by message, so that one message the database refuses is dead-lettered alone.
        """
        backoff = 0.1
        conflicts = 0
        one_by_one = False
        while True:
            started = time.perf_counter()
            apply = apply_each if one_by_one else apply_batch
            try:
                outcome = await asyncio.to_thread(apply, self.engine, batch, self.settings,
                                                  datetime.now(UTC))
            except IntegrityError as exc:
                # Another worker stored one of these keys meanwhile: retrying sees it as stored.
                conflicts += 1
                if conflicts > 3 and not one_by_one:
                    logger.error("batch keeps conflicting (%s); applying message by message",
                                 exc.orig)
                    one_by_one = True
                continue
            except (OperationalError, DBAPIError) as exc:
                if not (exc.connection_invalidated or isinstance(exc, OperationalError)):
                    logger.exception("batch failed; applying message by message")
                    one_by_one = True
                    continue
                self.metrics.db_errors.inc()
                logger.warning("database unavailable (%s); retrying the batch of %d in %.1f s",
                               exc.orig, len(batch), backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max_s)
                continue
            except Exception:  # noqa: BLE001 -- never lose the batch, never die of it
                if one_by_one:
                    # Even dead-lettering failed: treat it as database trouble and wait.
                    self.metrics.db_errors.inc()
                    logger.exception("batch could not be stored; retrying in %.1f s", backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._backoff_max_s)
                else:
                    logger.exception("batch failed; applying message by message")
                    one_by_one = True
                continue
            self.metrics.batch_seconds.observe(time.perf_counter() - started)
            outcome.acks = await self._gapless(outcome.acks)
            return outcome

    async def _gapless(self, acks: dict[str, int]) -> dict[str, int]:
        """Each cabinet's ack, stopped at a seq missing for less than the gap grace.

        A seq can be missing because a restarted broker dropped it before the workers were
        subscribed again, or because it waits in the broker session of a worker that died:
        acking past it would make the cabinet delete what the fleet has not stored. The
        cabinet resends it after its ack timeout. A seq still missing after the grace (its
        agent thinned it from an overflowing spool) is acked over.
        """
        if self._gap_grace.total_seconds() <= 0 or not acks:
            return acks
        try:
            return await asyncio.to_thread(contiguous_acks, self.engine, acks,
                                           datetime.now(UTC) - self._gap_grace)
        except Exception:  # noqa: BLE001 -- no ack is always safe: the cabinet resends
            logger.exception("could not check the acks for gaps; sending none for this batch")
            return {}

    def _acknowledge(self, client: aiomqtt.Client, batch: list[Incoming],
                     outcome: BatchOutcome) -> None:
        """After the commit: ack the cabinets, PUBACK the broker, feed the sink, count."""
        root = self.settings.ingest.topic_root
        paho = client._client  # noqa: SLF001 -- see manual_ack_set in _connected_session
        # Handed to paho without awaiting each PUBACK: paho keeps up to IN_FLIGHT in flight and
        # queues the rest. An ack lost with the connection is harmless: the cabinet sends again
        # after its ack timeout, and the duplicate is acked.
        for device, seq in outcome.acks.items():
            paho.publish(f"{root}/{device}/ack", b'{"v":1,"seq":%d}' % seq, qos=1)
        for item in batch:
            mid, qos = item.token
            if qos > 0:
                paho.ack(mid, qos)
        self.sink.add(outcome.samples)
        self._count(outcome)

    def _count(self, outcome: BatchOutcome) -> None:
        metrics = self.metrics
        self.stats.batches += 1
        metrics.batches.inc()
        for kind, count in outcome.applied.items():
            metrics.applied.labels(kind).inc(count)
        metrics.duplicates.inc(outcome.duplicates)
        metrics.late.inc(outcome.late_telemetry)
        for reason, count in outcome.dead_letters.items():
            metrics.dead_letters.labels(reason).inc(count)
        metrics.acks.inc(len(outcome.acks))
        metrics.transitions.inc(outcome.transitions)
        metrics.notices.inc(outcome.notices)
        now = datetime.now(UTC)
        for ts in outcome.message_ts:
            metrics.lag.observe(max(0.0, (now - ts).total_seconds()))
        metrics.observe_sink(self.sink)

    async def _sweep_loop(self) -> None:
        interval = self.settings.ingest.sweep_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                report = await asyncio.to_thread(sweep, self.engine, self.settings,
                                                 datetime.now(UTC))
            except Exception:  # noqa: BLE001 -- a failed sweep is retried at the next interval
                logger.exception("readiness sweep failed")
                continue
            self.metrics.transitions.inc(report.transitions)
            self.metrics.notices.inc(report.notices)
            self.metrics.observe_sink(self.sink)

    async def _notify_loop(self, mailer: Mailer) -> None:
        """E-mail the managers what the outbox holds (several workers may do this at once)."""
        while True:
            await asyncio.sleep(NOTIFY_INTERVAL_S)
            try:
                report = await asyncio.to_thread(deliver_pending, self.engine, mailer,
                                                 datetime.now(UTC), self.settings)
            except Exception:  # noqa: BLE001 -- retried at the next interval
                logger.exception("notification delivery failed")
                continue
            self.metrics.mails.inc(report.sent_mails)
            self.metrics.mail_failures.inc(report.failed)
