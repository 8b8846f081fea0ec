"""What the ingest worker promises, against a real Mosquitto and a real database (both engines).

Validation (every rejection reason a subscribed topic can carry), exactly-once application
(resends, redeliveries, out-of-order seqs), readiness transitions and the manager notices they
cause, the sweep, and two workers sharing one subscription.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from device_agents.tasks import cancel_and_wait
from fleet.db import make_engine, session_scope
from fleet.ingest.apply import Incoming, apply_batch
from fleet.ingest.sweep import sweep
from fleet.ingest.worker import IngestWorker
from fleet.models import Aed, AppliedMessage, DeviceEvent, TelemetryState
from fleet.settings import Settings

from .ingest_support import (
    CabinetPublisher,
    RunningWorker,
    ack_count,
    all_counted,
    count_rows,
    current_readiness,
    dead_letter_reasons,
    dead_letters,
    event,
    event_count,
    ingest_settings,
    ledger_count,
    notice_kinds,
    register_fleet,
    stamp,
    status,
    telemetry,
    telemetry_state,
    transitions_of,
)
from .mqtt_support import Mosquitto, eventually

APPLIED = "aedfleet_ingest_applied_total"
DEAD_LETTERS = "aedfleet_ingest_dead_letters_total"
EXPIRED = (date.today() - timedelta(days=3)).isoformat()  # expired in every time zone


async def precondition(condition: Any, timeout_s: float, what: str) -> None:
    """`eventually` for a test's set-up: its failure is not the failure the test looks for."""
    try:
        await eventually(condition, timeout_s, what)
    except AssertionError as exc:
        pytest.fail(f"set-up failed: {exc}")


def applied(worker: IngestWorker, kind: str) -> float:
    return worker.metrics.value(APPLIED, kind=kind)


def document(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def malformed_messages(device: str, other: str, ts: str) -> list[tuple[str, str, bytes]]:
    """`(expected reason, topic, payload)`: every rejection a subscribed topic can carry.

    The sequenced ones carry the faulty cabinet's seqs 1, 2, 3 ... in order, as its agent would.
    """
    good = {"v": 1, "device_id": device, "ts": ts}
    root = f"aed/{device}"
    return [
        ("not_json", f"{root}/telemetry", b"{not json"),
        ("not_json", f"{root}/telemetry",  # invalid UTF-8 inside an otherwise good document
         b'{"v": 1, "device_id": "' + device.encode() + b'", "seq": 1, "ts": "' + ts.encode()
         + b'", "source_fault": "\xff\xfe"}'),
        ("not_object", f"{root}/telemetry", b"[1, 2, 3]"),
        ("unsupported_version", f"{root}/telemetry", document(**{**good, "v": 2, "seq": 2})),
        ("missing_field", f"{root}/telemetry",
         document(v=1, device_id=device, seq=3, battery_pct=80)),  # no ts
        ("wrong_type", f"{root}/telemetry", document(**good, seq=4, battery_pct="80")),
        ("out_of_range", f"{root}/telemetry", document(**good, seq=5, battery_pct=101)),
        ("out_of_range", f"{root}/event", document(**good, seq=6, type="exploded")),
        ("out_of_range", f"{root}/status", document(**good, state="asleep")),
        ("device_mismatch", f"{root}/telemetry", document(**{**good, "device_id": other,
                                                            "seq": 7})),
        ("oversize", f"{root}/telemetry", document(**good, seq=8, padding="x" * 5000)),
        # `+` in the subscription matches a device id the contract does not allow
        ("bad_topic", "aed/cab.dotted/telemetry",
         document(**{**good, "device_id": "cab.dotted", "seq": 1})),
        ("unknown_device", "aed/ghost-1/telemetry", telemetry("ghost-1", 1)),
    ]


async def test_malformed_payloads_are_dead_lettered_by_reason_and_every_valid_one_is_applied(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    devices = register_fleet(engine, 11)
    healthy, faulty = devices[:10], devices[10]
    valid = [(f"aed/{d}/telemetry", telemetry(d, seq, battery_pct=60 + seq))
             for seq in range(1, 21) for d in healthy]
    bad = malformed_messages(faulty, healthy[0], stamp(datetime.now(UTC)))
    flood = list(valid)
    for i, (_reason, topic, payload) in enumerate(bad):  # spread through the valid ones
        flood.insert(i * (len(valid) // len(bad)) + i + 3, (topic, payload))
    expected = Counter(reason for reason, _topic, _payload in bad)

    settings = ingest_settings(broker, database_url)
    running = RunningWorker(IngestWorker(settings, engine))
    async with running as worker, CabinetPublisher(broker) as cabinets:
        await cabinets.publish_many(flood)
        await eventually(lambda: applied(worker, "telemetry") + sum(
            worker.metrics.value(DEAD_LETTERS, reason=r) for r in expected) == len(flood)
            and all(cabinets.acked(d) == 20 for d in healthy), 30,
            "every message of the flood applied or dead-lettered, every healthy cabinet acked")
        assert worker.metrics.value("aedfleet_ingest_received_total") == len(flood)

        assert running.task is not None and not running.task.done()
        await cabinets.publish(f"aed/{healthy[0]}/telemetry", telemetry(healthy[0], 21))
        await eventually(lambda: cabinets.acked(healthy[0]) == 21 and all_counted(worker), 10,
                         "a message after the flood to be acked and counted")

        assert applied(worker, "telemetry") == len(valid) + 1
        assert applied(worker, "status") == applied(worker, "event") == 0
        assert {reason: worker.metrics.value(DEAD_LETTERS, reason=reason)
                for reason in expected} == expected
    assert dead_letter_reasons(engine) == expected
    for device in healthy:
        state = telemetry_state(engine, device)
        assert state is not None
        assert (state.seq, state.battery_pct) == ((21, 90) if device == healthy[0] else (20, 80))
    assert telemetry_state(engine, faulty) is None
    # The faulty cabinet's rejected JSON documents with a valid seq (2 to 7) are in the ledger,
    # and acked, so that its agent stops resending what the fleet will never apply.
    assert count_rows(engine, AppliedMessage, col(AppliedMessage.kind) == "dead_letter") == 6
    assert ledger_count(engine) == len(valid) + 1 + 6
    assert cabinets.acked(faulty) == 7
    letters = {letter.reason: letter for letter in dead_letters(engine)}
    assert letters["oversize"].payload_size > 4096 and len(letters["oversize"].payload) == 4096
    assert letters["bad_topic"].device_id is None
    assert letters["unknown_device"].device_id == "ghost-1"
    assert letters["device_mismatch"].device_id == faulty
    assert letters["not_object"].payload == b"[1, 2, 3]"


async def test_a_resent_message_is_applied_once_and_acked_again(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    [device] = register_fleet(engine, 1)
    reading = telemetry(device, 1, battery_pct=81)
    closed = event(device, 2, "door_closed")
    settings = ingest_settings(broker, database_url)
    async with RunningWorker(IngestWorker(settings, engine)) as worker, \
            CabinetPublisher(broker) as cabinets:
        for attempt in (1, 2):
            await cabinets.publish(f"aed/{device}/telemetry", reading)
            await eventually(lambda a=attempt: ack_count(cabinets, device, 1) == a, 10,
                             f"ack {attempt} of the telemetry")
            await cabinets.publish(f"aed/{device}/event", closed)
            await eventually(lambda a=attempt: ack_count(cabinets, device, 2) == a, 10,
                             f"ack {attempt} of the event")
        await eventually(lambda: all_counted(worker), 10, "the resends to be counted")

        assert applied(worker, "telemetry") == applied(worker, "event") == 1
        assert worker.metrics.value("aedfleet_ingest_duplicates_total") == 2
    assert ledger_count(engine) == 2
    assert event_count(engine, device) == 1
    state = telemetry_state(engine, device)
    assert state is not None and (state.seq, state.battery_pct) == (1, 81)


async def test_a_message_a_worker_died_holding_is_redelivered_and_applied_once(
        broker: Mosquitto, engine: Engine, database_url: str, tmp_path: Path) -> None:
    [device] = register_fleet(engine, 1)
    settings = ingest_settings(broker, database_url)
    # A database without the schema: every batch fails as if the database were down.
    unready = make_engine(f"sqlite:///{tmp_path / 'not-migrated.db'}")
    dying = IngestWorker(settings, unready, client_id="ingest-1")
    task = asyncio.create_task(dying.run(asyncio.Event()))
    async with CabinetPublisher(broker) as cabinets:
        try:
            async with asyncio.timeout(15):
                await dying.connected.wait()
            await cabinets.publish(f"aed/{device}/telemetry", telemetry(device, 1))
            await cabinets.publish(f"aed/{device}/event", event(device, 2, "tamper"))
            await eventually(lambda: dying.metrics.value("aedfleet_ingest_received_total") == 2
                             and dying.metrics.value("aedfleet_ingest_db_errors_total") >= 1,
                             10, "the worker to receive both and fail on its database")
        finally:
            # Killed: no clean leave; its broker session keeps what it did not acknowledge.
            assert not await cancel_and_wait([task])  # type: ignore[list-item]
            unready.dispose()
        assert cabinets.acked(device) == 0

        async with RunningWorker(IngestWorker(settings, engine, client_id="ingest-1")) as again:
            await eventually(lambda: cabinets.acked(device) == 2 and all_counted(again), 15,
                             "the redelivered messages to be acked")
            assert applied(again, "telemetry") == applied(again, "event") == 1
    assert ledger_count(engine) == 2
    assert event_count(engine, device) == 1


async def test_late_telemetry_enters_the_ledger_but_never_rolls_the_cabinet_state_back(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    [device] = register_fleet(engine, 1)
    now = datetime.now(UTC)
    settings = ingest_settings(broker, database_url)
    async with RunningWorker(IngestWorker(settings, engine)) as worker, \
            CabinetPublisher(broker) as cabinets:
        await cabinets.publish(f"aed/{device}/telemetry",
                               telemetry(device, 5, now - timedelta(seconds=10), battery_pct=95))
        await eventually(lambda: cabinets.acked(device) == 5, 10, "seq 5 acked")
        readiness_before = current_readiness(engine, f"aed-{device}")

        await cabinets.publish(f"aed/{device}/telemetry", telemetry(
            device, 3, now - timedelta(seconds=30), battery_pct=5, pads_expiry=EXPIRED))
        await eventually(lambda: 3 in cabinets.acks[device] and all_counted(worker), 10,
                         "seq 3 acked")

        assert worker.metrics.value("aedfleet_ingest_late_telemetry_total") == 1
        assert applied(worker, "telemetry") == 2
    state = telemetry_state(engine, device)
    assert state is not None
    assert (state.seq, state.battery_pct, state.pads_expiry) == (
        5, 95, date.today() + timedelta(days=400))
    assert state.ts == now - timedelta(seconds=10)
    with Session(engine) as session:
        assert sorted(session.exec(select(AppliedMessage.seq)).all()) == [3, 5]
    readiness = current_readiness(engine, f"aed-{device}")
    assert readiness is not None and readiness_before is not None
    assert (readiness.state, readiness.reasons) == ("ready", "")
    assert readiness.since == readiness_before.since
    assert len(transitions_of(engine, f"aed-{device}")) == 1  # the baseline only


async def test_events_arriving_out_of_seq_order_are_each_appended_once(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    [device] = register_fleet(engine, 1)
    settings = ingest_settings(broker, database_url)
    sent = [(8, "door_opened"), (6, "aed_removed"), (8, "door_opened"), (7, "aed_returned"),
            (6, "aed_removed")]
    async with RunningWorker(IngestWorker(settings, engine)) as worker, \
            CabinetPublisher(broker) as cabinets:
        for number, (seq, kind) in enumerate(sent, 1):
            await cabinets.publish(f"aed/{device}/event", event(device, seq, kind))
            await eventually(lambda n=number: len(cabinets.acks[device]) == n, 10,
                             f"ack of event {number}")
        await eventually(lambda: all_counted(worker), 10, "the events to be counted")
        assert applied(worker, "event") == 3
        assert worker.metrics.value("aedfleet_ingest_duplicates_total") == 2
    with Session(engine) as session:
        stored = session.exec(select(DeviceEvent.seq, DeviceEvent.type)
                              .order_by(col(DeviceEvent.seq))).all()
    assert [tuple(row) for row in stored] == [(6, "aed_removed"), (7, "aed_returned"),
                                              (8, "door_opened")]
    assert cabinets.acks[device] == [8, 6, 8, 7, 6]


async def test_a_dead_lettered_message_that_its_cabinet_resends_is_stored_once_and_acked_again(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    [device] = register_fleet(engine, 1)
    rejected = telemetry(device, 4, battery_pct=140)
    settings = ingest_settings(broker, database_url)
    async with RunningWorker(IngestWorker(settings, engine)) as worker, \
            CabinetPublisher(broker) as cabinets:
        for attempt in (1, 2, 3):
            await cabinets.publish(f"aed/{device}/telemetry", rejected)
            await eventually(lambda a=attempt: ack_count(cabinets, device, 4) == a, 10,
                             f"ack {attempt}")
        await eventually(lambda: all_counted(worker), 10, "the resends to be counted")
        assert worker.metrics.value(DEAD_LETTERS, reason="out_of_range") == 1
        assert worker.metrics.value("aedfleet_ingest_duplicates_total") == 2
        assert applied(worker, "telemetry") == 0
    assert dead_letter_reasons(engine) == {"out_of_range": 1}
    [letter] = dead_letters(engine)
    assert (letter.device_id, letter.payload) == (device, rejected)
    assert "battery_pct" in letter.detail
    assert telemetry_state(engine, device) is None


async def test_expired_pads_make_a_ready_aed_not_ready_and_a_healthy_report_makes_it_ready_again(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    [device] = register_fleet(engine, 1)
    aed_id = f"aed-{device}"
    settings = ingest_settings(broker, database_url)
    async with RunningWorker(IngestWorker(settings, engine)), \
            CabinetPublisher(broker) as cabinets:
        topic = f"aed/{device}/telemetry"
        await cabinets.publish(topic, telemetry(device, 1))
        await eventually(lambda: cabinets.acked(device) == 1, 10, "the healthy report")
        readiness = current_readiness(engine, aed_id)
        assert readiness is not None and readiness.state == "ready"

        await cabinets.publish(topic, telemetry(device, 2, pads_expiry=EXPIRED))
        await eventually(lambda: cabinets.acked(device) == 2, 10, "the expired pads")
        readiness = current_readiness(engine, aed_id)
        assert readiness is not None
        assert (readiness.state, readiness.reasons) == ("not_ready", "pads_expired")
        assert notice_kinds(engine, aed_id) == ["readiness_lost"]

        await cabinets.publish(topic, telemetry(device, 3))
        await eventually(lambda: cabinets.acked(device) == 3, 10, "the new pads")
    readiness = current_readiness(engine, aed_id)
    assert readiness is not None and (readiness.state, readiness.reasons) == ("ready", "")
    baseline, lost, regained = transitions_of(engine, aed_id)
    assert (baseline.from_state, baseline.to_state) == (None, "ready")
    assert (lost.from_state, lost.to_state, lost.added) == ("ready", "not_ready", "pads_expired")
    assert "pads_expired" in lost.reasons.split()
    assert (regained.from_state, regained.to_state, regained.reasons) == ("not_ready", "ready", "")
    assert baseline.at <= lost.at <= regained.at
    assert notice_kinds(engine, aed_id) == ["readiness_lost"]


async def test_an_aed_flapping_between_ready_and_not_ready_queues_one_readiness_lost_notice(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    [device] = register_fleet(engine, 1)
    aed_id = f"aed-{device}"
    settings = ingest_settings(broker, database_url)
    flaps = 8
    async with RunningWorker(IngestWorker(settings, engine)) as worker, \
            CabinetPublisher(broker) as cabinets:
        for seq in range(1, 2 * flaps + 2):
            report = telemetry(device, seq) if seq % 2 else telemetry(device, seq,
                                                                      pads_expiry=EXPIRED)
            await cabinets.publish(f"aed/{device}/telemetry", report)
            await eventually(lambda s=seq: cabinets.acked(device) == s, 10, f"seq {seq} acked")
        await eventually(lambda: all_counted(worker), 10, "every report to be counted")
        assert worker.metrics.value("aedfleet_readiness_transitions_total") == 2 * flaps + 1
        assert worker.metrics.value("aedfleet_notices_queued_total") == 1
    recorded = transitions_of(engine, aed_id)
    assert [t.to_state for t in recorded] == ["ready"] + ["not_ready", "ready"] * flaps
    assert notice_kinds(engine, aed_id) == ["readiness_lost"]


async def test_a_door_opened_event_queues_a_notice_unless_the_aed_was_sent_to_an_incident(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    idle, called = register_fleet(engine, 2)
    with session_scope(engine) as session:
        aed = session.get(Aed, f"aed-{called}")
        assert aed is not None
        aed.in_use_incident = "INC-2026-0042"
    settings = ingest_settings(broker, database_url)
    async with RunningWorker(IngestWorker(settings, engine)) as worker, \
            CabinetPublisher(broker) as cabinets:
        for device in (idle, called):
            await cabinets.publish(f"aed/{device}/telemetry", telemetry(device, 1))
            await cabinets.publish(f"aed/{device}/event", event(device, 2, "door_opened"))
        await eventually(lambda: cabinets.acked(idle) == cabinets.acked(called) == 2
                         and all_counted(worker), 10, "both events acked")
        assert applied(worker, "event") == 2
    assert notice_kinds(engine, f"aed-{idle}") == ["door_opened"]
    assert notice_kinds(engine, f"aed-{called}") == []
    readiness = current_readiness(engine, f"aed-{called}")
    assert readiness is not None and readiness.state == "not_ready"
    assert "in_use" in readiness.reasons.split()


async def test_a_retained_offline_status_makes_the_aed_unverified_and_online_again_makes_it_ready(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    [device] = register_fleet(engine, 1)
    aed_id = f"aed-{device}"
    now = datetime.now(UTC)
    settings = ingest_settings(broker, database_url)
    async with RunningWorker(IngestWorker(settings, engine)) as worker, \
            CabinetPublisher(broker) as cabinets:
        await cabinets.publish(f"aed/{device}/telemetry",
                               telemetry(device, 1, now - timedelta(seconds=60)))
        await eventually(lambda: cabinets.acked(device) == 1, 10, "the first report")

        await cabinets.publish(f"aed/{device}/status",
                               status(device, "offline", now - timedelta(seconds=30)), retain=True)
        await eventually(lambda: applied(worker, "status") == 1, 10, "the offline status")
        readiness = current_readiness(engine, aed_id)
        assert readiness is not None
        assert (readiness.state, readiness.reasons) == ("unverified", "telemetry_stale")
        state = telemetry_state(engine, device)
        assert state is not None and state.online is False
        assert notice_kinds(engine, aed_id) == ["cabinet_offline"]

        await cabinets.publish(f"aed/{device}/status",
                               status(device, "online", now - timedelta(seconds=20)), retain=True)
        await cabinets.publish(f"aed/{device}/telemetry",
                               telemetry(device, 2, now - timedelta(seconds=10)))
        await eventually(lambda: cabinets.acked(device) == 2 and applied(worker, "status") == 2,
                         10, "the online status and the next report")
    readiness = current_readiness(engine, aed_id)
    assert readiness is not None and (readiness.state, readiness.reasons) == ("ready", "")
    assert [(t.from_state, t.to_state, t.added) for t in transitions_of(engine, aed_id)] == [
        (None, "ready", ""), ("ready", "unverified", "telemetry_stale"),
        ("unverified", "ready", "")]
    assert notice_kinds(engine, aed_id) == ["cabinet_offline"]  # doubt alone: no readiness_lost
    state = telemetry_state(engine, device)
    assert state is not None and state.online is True and state.seq == 2


async def test_a_worker_starting_after_a_cabinet_went_offline_learns_it_from_the_retained_status(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    [device] = register_fleet(engine, 1)
    aed_id = f"aed-{device}"
    now = datetime.now(UTC)
    settings = ingest_settings(broker, database_url)
    async with CabinetPublisher(broker) as cabinets:
        async with RunningWorker(IngestWorker(settings, engine, client_id="ingest-old")):
            await cabinets.publish(f"aed/{device}/telemetry",
                                   telemetry(device, 1, now - timedelta(seconds=60)))
            await eventually(lambda: cabinets.acked(device) == 1, 10, "the first report")
        await cabinets.publish(f"aed/{device}/status",
                               status(device, "offline", now - timedelta(seconds=30)), retain=True)

        async with RunningWorker(IngestWorker(settings, engine, client_id="ingest-new")) as worker:
            await eventually(lambda: applied(worker, "status") == 1, 10,
                             "the retained status on subscribing")
    readiness = current_readiness(engine, aed_id)
    assert readiness is not None
    assert (readiness.state, readiness.reasons) == ("unverified", "telemetry_stale")
    assert notice_kinds(engine, aed_id) == ["cabinet_offline"]


@pytest.fixture
def cabinet_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker where `cab-0` has its own credentials, as a cabinet in the field does."""
    mosquitto = Mosquitto(tmp_path / "cabinet-broker", ["cab-0"])
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


class CabinetLink:
    """A cabinet's MQTT connection with an `offline` will: `mosquitto_sub` under its account.

    A will is fixed when the connection is made, so its `ts` is the time of connecting; the
    `online` status the cabinet publishes next is necessarily later.
    """

    def __init__(self, broker: Mosquitto, device: str, connected_at: datetime,
                 log: Path) -> None:
        binary, stdbuf = shutil.which("mosquitto_sub"), shutil.which("stdbuf")
        if binary is None or stdbuf is None:
            pytest.skip("mosquitto_sub or stdbuf is missing (apt-get install mosquitto-clients)")
        self.log = log
        self.process = subprocess.Popen(
            [stdbuf, "-oL", binary, "-h", "127.0.0.1", "-p", str(broker.port), "-u", device,
             "-P", broker.credentials[device], "-i", device, "-q", "1", "-d",
             "-t", f"aed/{device}/cmd", "--will-topic", f"aed/{device}/status",
             "--will-payload", status(device, "offline", connected_at).decode(),
             "--will-qos", "1", "--will-retain"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def subscribed(self) -> bool:
        return "SUBACK" in self.log.read_text(errors="replace")

    def cut(self) -> None:
        """The connection drops without a DISCONNECT (power cut): the broker sends the will."""
        self.process.kill()
        self.process.wait(10)


async def test_a_cabinet_whose_connection_drops_is_made_unverified_by_its_will(
        cabinet_broker: Mosquitto, engine: Engine, database_url: str, tmp_path: Path) -> None:
    [device] = register_fleet(engine, 1)
    aed_id = f"aed-{device}"
    connected_at = datetime.now(UTC) - timedelta(seconds=60)
    settings = ingest_settings(cabinet_broker, database_url)
    link = CabinetLink(cabinet_broker, device, connected_at, tmp_path / "cabinet-link.log")
    try:
        async with RunningWorker(IngestWorker(settings, engine)) as worker, \
                CabinetPublisher(cabinet_broker) as cabinets:
            await precondition(link.subscribed, 10, "the cabinet to connect")
            await cabinets.publish(f"aed/{device}/status", status(
                device, "online", connected_at + timedelta(seconds=1)), retain=True)
            await cabinets.publish(f"aed/{device}/telemetry", telemetry(
                device, 1, connected_at + timedelta(seconds=50)))
            await precondition(lambda: cabinets.acked(device) == 1
                               and applied(worker, "status") == 1, 10, "online and reporting")
            readiness = current_readiness(engine, aed_id)
            if readiness is None or readiness.state != "ready":
                pytest.fail(f"set-up failed: not ready before the cut: {readiness}")

            link.cut()
            await precondition(lambda: applied(worker, "status") == 2, 10, "the will")
    finally:
        if link.process.poll() is None:
            link.cut()
    state = telemetry_state(engine, device)
    assert state is not None and state.online is False
    readiness = current_readiness(engine, aed_id)
    assert readiness is not None
    assert (readiness.state, readiness.reasons) == ("unverified", "telemetry_stale")
    assert notice_kinds(engine, aed_id) == ["cabinet_offline"]


def refuse_events_with_detail(engine: Engine, detail: str) -> None:
    """A trigger that makes the database itself refuse one event, as a broken row would."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(text(
                "CREATE TRIGGER refuse_event BEFORE INSERT ON deviceevent "
                f"WHEN NEW.detail = '{detail}' BEGIN SELECT RAISE(ABORT, 'refused by the "
                "database'); END"))
        else:
            connection.execute(text(
                "CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.detail = '{detail}' THEN RAISE EXCEPTION 'refused by the database'; "
                "END IF; RETURN NEW; END $$"))
            connection.execute(text(
                "CREATE TRIGGER refuse_event BEFORE INSERT ON deviceevent FOR EACH ROW "
                "EXECUTE FUNCTION refuse_event()"))


async def test_a_message_the_database_cannot_store_is_dead_lettered_and_holds_up_nothing(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    first, second = register_fleet(engine, 2)
    refuse_events_with_detail(engine, "lid forced")
    poison = document(v=1, device_id=first, seq=2, ts=stamp(datetime.now(UTC)), type="tamper",
                      detail="lid forced")  # valid by the contract; the database refuses it
    batch = [(f"aed/{first}/telemetry", telemetry(first, 1)), (f"aed/{first}/event", poison),
             (f"aed/{second}/telemetry", telemetry(second, 1)),
             (f"aed/{first}/telemetry", telemetry(first, 3))]
    settings = ingest_settings(broker, database_url, batch_wait_ms=200)
    async with RunningWorker(IngestWorker(settings, engine)) as worker, \
            CabinetPublisher(broker) as cabinets:
        await cabinets.publish_many(batch)
        await eventually(lambda: cabinets.acked(first) == 3 and cabinets.acked(second) == 1,
                         10, "the good messages acked")
        await eventually(lambda: worker.metrics.value(DEAD_LETTERS, reason="apply_failed") == 1
                         and all_counted(worker), 10, "the poison dead-lettered")
        assert applied(worker, "telemetry") == 3
        assert applied(worker, "event") == 0
        # The cabinet resends it (its ack was lost, say): kept once, acked again.
        await cabinets.publish(f"aed/{first}/event", poison)
        await eventually(lambda: ack_count(cabinets, first, 2) >= 1 and all_counted(worker), 10,
                         "the resend acked")
    [letter] = dead_letters(engine)
    assert (letter.reason, letter.device_id, letter.payload) == ("apply_failed", first, poison)
    assert "refused by the database" in letter.detail
    assert event_count(engine, first) == 0
    state = telemetry_state(engine, first)
    assert state is not None and state.seq == 3


async def test_the_sweep_turns_a_silent_cabinet_unverified_and_prunes_what_outlived_its_retention(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    [device] = register_fleet(engine, 1)
    aed_id = f"aed-{device}"
    settings = ingest_settings(broker, database_url)
    async with RunningWorker(IngestWorker(settings, engine)), \
            CabinetPublisher(broker) as cabinets:
        await cabinets.publish(f"aed/{device}/telemetry", telemetry(device, 1))
        await cabinets.publish(f"aed/{device}/telemetry", b"garbage")
        await cabinets.publish(f"aed/{device}/telemetry", telemetry(device, 2, battery_pct=-1))
        await eventually(lambda: cabinets.acked(device) == 2 and count_rows(
            engine, AppliedMessage) == 2 and len(dead_letters(engine)) == 2, 10, "all stored")
    reported = datetime.now(UTC)
    readiness = current_readiness(engine, aed_id)
    assert readiness is not None and readiness.state == "ready"

    soon = sweep(engine, settings, reported + timedelta(minutes=10))
    assert (soon.transitions, soon.notices, soon.ledger_pruned, soon.dead_letters_pruned) == (
        0, 0, 0, 0)

    silent = reported + timedelta(minutes=settings.readiness.telemetry_stale_after_minutes + 5)
    report = sweep(engine, settings, silent)
    assert (report.transitions, report.notices) == (1, 1)
    readiness = current_readiness(engine, aed_id)
    assert readiness is not None
    assert (readiness.state, readiness.reasons) == ("unverified", "telemetry_stale")
    assert readiness.since == silent
    last = transitions_of(engine, aed_id)[-1]
    assert (last.from_state, last.to_state, last.added, last.cause) == (
        "ready", "unverified", "telemetry_stale", "sweep")
    assert notice_kinds(engine, aed_id) == ["cabinet_offline"]
    again = sweep(engine, settings, silent)
    assert (again.transitions, again.notices) == (0, 0)

    # Dead letters kept longer than the ledger here, so that each is seen pruned on its own.
    settings = settings.model_copy(update={"retention": settings.retention.model_copy(
        update={"dead_letter_days": settings.ingest.ledger_retention_days + 30})})
    ledger_days, letter_days = (settings.ingest.ledger_retention_days,
                                settings.retention.dead_letter_days)
    before_ledger_expiry = sweep(engine, settings, reported + timedelta(days=ledger_days - 1))
    assert (before_ledger_expiry.ledger_pruned, before_ledger_expiry.dead_letters_pruned) == (0, 0)
    after_ledger_expiry = sweep(
        engine, settings, reported + timedelta(days=ledger_days, minutes=1))
    assert (after_ledger_expiry.ledger_pruned, after_ledger_expiry.dead_letters_pruned) == (2, 0)
    assert ledger_count(engine) == 0 and len(dead_letters(engine)) == 2
    after_letter_expiry = sweep(
        engine, settings, reported + timedelta(days=letter_days, minutes=1))
    assert (after_letter_expiry.ledger_pruned, after_letter_expiry.dead_letters_pruned) == (0, 2)
    assert dead_letters(engine) == []
    state = telemetry_state(engine, device)
    assert state is not None and state.seq == 1  # pruning touches the ledger only


async def test_two_workers_in_one_share_group_split_the_messages_and_apply_each_exactly_once(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    devices = register_fleet(engine, 100)
    per_cabinet = 20
    messages: list[tuple[str, bytes]] = []
    for seq in range(1, per_cabinet + 1):
        for device in devices:
            if seq % 4 == 0:
                messages.append((f"aed/{device}/event", event(device, seq, "door_closed")))
            else:
                messages.append((f"aed/{device}/telemetry", telemetry(device, seq,
                                                                      battery_pct=70 + seq)))
    events = sum(1 for topic, _payload in messages if topic.endswith("/event"))
    settings = ingest_settings(broker, database_url, share_group="fleet-test")
    first = IngestWorker(settings, engine, client_id="ingest-a")
    second = IngestWorker(settings, engine, client_id="ingest-b")
    async with RunningWorker(first), RunningWorker(second), CabinetPublisher(broker) as cabinets:
        await cabinets.publish_many(messages)
        await eventually(lambda: all(cabinets.acked(d) == per_cabinet for d in devices)
                         and all_counted(first) and all_counted(second), 90,
                         "every cabinet acked its highest seq")

        shares = [applied(w, "telemetry") + applied(w, "event") for w in (first, second)]
        assert sum(shares) == len(messages)
        assert min(shares) >= len(messages) // 5, shares
        assert sum(applied(w, "event") for w in (first, second)) == events
        for worker in (first, second):
            assert worker.metrics.value("aedfleet_ingest_duplicates_total") == 0
            assert worker.stats.connects == 1
    assert ledger_count(engine) == len(messages) == 2_000
    assert count_rows(engine, DeviceEvent) == events
    assert dead_letter_reasons(engine) == {}
    with Session(engine) as session:
        per_device = Counter(session.exec(select(AppliedMessage.device_id)).all())
    assert set(per_device.values()) == {per_cabinet}


async def test_two_transactions_racing_on_one_cabinet_never_roll_its_state_back(
        engine: Engine, database_url: str) -> None:
    """Two workers apply seq 5 and seq 4 of one cabinet at once; seq 5 must stay the state.

    Each transaction reads the stored state, then updates it. Holding the state row locked
    makes both read seq 3 before either writes, as happens when two workers' batches overlap.
    """
    [device] = register_fleet(engine, 1)
    settings = Settings(database_url=database_url)
    now = datetime.now(UTC)

    def incoming(seq: int, battery_pct: int) -> Incoming:
        return Incoming(f"aed/{device}/telemetry",
                        telemetry(device, seq, now - timedelta(seconds=10 - seq),
                                  battery_pct=battery_pct), now)

    apply_batch(engine, [incoming(3, 33)], settings, now)
    if engine.dialect.name == "sqlite":
        # SQLite takes its write lock before the state is read: the race cannot happen.
        apply_batch(engine, [incoming(5, 55)], settings, now)
        apply_batch(engine, [incoming(4, 44)], settings, now)
    else:
        errors: list[BaseException] = []

        def apply_in_thread(item: Incoming) -> threading.Thread:
            def run() -> None:
                try:
                    apply_batch(engine, [item], settings, now)
                except BaseException as exc:  # noqa: BLE001 -- reported by pytest.fail below
                    errors.append(exc)
            thread = threading.Thread(target=run)
            thread.start()
            return thread

        def waiting() -> int:
            with engine.connect() as observer:  # a new transaction: a fresh activity snapshot
                return int(observer.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'")).scalar_one())

        with engine.connect() as blocker:
            state_table = TelemetryState.__table__  # type: ignore[attr-defined]
            blocker.execute(select(state_table.c.seq).where(state_table.c.device_id == device)
                            .with_for_update())

            newer = apply_in_thread(incoming(5, 55))
            await precondition(lambda: waiting() == 1, 10, "seq 5 to wait for the row")
            older = apply_in_thread(incoming(4, 44))
            await precondition(lambda: waiting() == 2, 10, "seq 4 to wait for the row")
            blocker.rollback()
        for thread in (newer, older):
            thread.join(10)
        if errors:
            pytest.fail(f"a transaction failed: {errors!r}")
    state = telemetry_state(engine, device)
    assert state is not None
    assert (state.seq, state.battery_pct) == (5, 55)


async def test_a_cabinet_is_acked_only_up_to_a_missing_seq_until_it_resends_it(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    """Seq 2 never reached the fleet (a restarted broker dropped it): 3 must not ack it away."""
    [device] = register_fleet(engine, 1)
    settings = ingest_settings(broker, database_url, ack_gap_grace_s=60)
    async with RunningWorker(IngestWorker(settings, engine)), \
            CabinetPublisher(broker) as cabinets:
        await cabinets.publish(f"aed/{device}/telemetry", telemetry(device, 1))
        await eventually(lambda: cabinets.acked(device) == 1, 10, "seq 1 acked")
        await cabinets.publish(f"aed/{device}/telemetry", telemetry(device, 3))
        await eventually(lambda: ack_count(cabinets, device, 1) == 2, 10, "seq 3 acked as 1")
        assert cabinets.acked(device) == 1
        # The cabinet's ack timeout passes: it resends from its first unacked seq.
        await cabinets.publish_many([(f"aed/{device}/telemetry", telemetry(device, 2)),
                                     (f"aed/{device}/telemetry", telemetry(device, 3))])
        await eventually(lambda: cabinets.acked(device) == 3, 10, "the gap filled and acked")
    assert ledger_count(engine) == 3


async def test_a_gap_no_resend_fills_is_acked_over_once_it_is_older_than_the_grace(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    """Seq 4 was thinned from the cabinet's spool: it never comes, and must not block acks."""
    [device] = register_fleet(engine, 1)
    settings = ingest_settings(broker, database_url, ack_gap_grace_s=1)
    async with RunningWorker(IngestWorker(settings, engine)) as worker, \
            CabinetPublisher(broker) as cabinets:
        await cabinets.publish(f"aed/{device}/telemetry", telemetry(device, 3))
        await eventually(lambda: all_counted(worker) and worker.stats.batches >= 1, 10,
                         "seq 3 applied")
        assert cabinets.acked(device) == 0, "no unbroken run yet: no ack"
        await asyncio.sleep(1.1)  # seq 3 is now older than the grace: what lies below counts
        await cabinets.publish(f"aed/{device}/telemetry", telemetry(device, 5))
        await eventually(lambda: ack_count(cabinets, device, 3) == 1, 10, "acked up to the gap")
        await asyncio.sleep(1.1)  # the gap at 4 is older than the grace; the cabinet resends
        await cabinets.publish(f"aed/{device}/telemetry", telemetry(device, 5))
        await eventually(lambda: cabinets.acked(device) == 5, 10, "acked over the gap")


def test_a_cabinet_clock_running_ahead_does_not_extend_the_grace_of_an_open_door(
        engine: Engine, database_url: str) -> None:
    [device] = register_fleet(engine, 1)
    settings = Settings(database_url=database_url)
    arrived = datetime.now(UTC)
    ahead = arrived + timedelta(hours=2)
    apply_batch(engine, [Incoming(f"aed/{device}/telemetry",
                                  telemetry(device, 1, ahead, door_open=True,
                                            self_test_ts=stamp(ahead)), arrived)],
                settings, arrived)
    later = sweep(engine, settings, arrived + timedelta(minutes=10))
    assert later.transitions == 1
    readiness = current_readiness(engine, f"aed-{device}")
    assert readiness is not None and readiness.state == "not_ready"
    assert "door_open" in readiness.reasons.split()
