"""The ingest under faults: workers killed, the broker restarted, the database locked or cut off,
a message that cannot be stored. Real Mosquitto, real SQLite and PostgreSQL throughout.

What the ingest promises (fleet/ingest/worker.py): each `(device_id, seq)` is applied at most
once; a message is acknowledged to the broker, and its cabinet acked on `aed/{id}/ack`, only
after the transaction that stored it committed; a worker killed outright loses nothing; while
the database is unavailable nothing is acked and the batch is retried.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import col

from fleet.db import make_engine
from fleet.ingest.worker import IngestWorker
from fleet.models import AppliedMessage

from .ingest_fault_support import (
    AgentCabinet,
    IngestProcess,
    Stream,
    TcpProxy,
    TimedAcks,
    door_flapping,
    ledger_keys,
    probe_until_received,
    stored,
)
from .ingest_support import (
    RunningWorker,
    count_rows,
    event,
    ingest_settings,
    register_fleet,
    telemetry,
)
from .mqtt_support import FleetReceiver, Mosquitto, eventually


def assert_stream_stored_exactly_once(engine: Engine, stream: Stream,
                                      acks: TimedAcks) -> None:
    """Every (device, seq) sent is in the ledger once, every event in the event log once, each
    cabinet's state is its newest telemetry, its newest seq was acked, nothing dead-lettered."""
    devices = set(stream.devices)
    found = stored(engine)
    assert found.ledger_keys(devices) == sorted(stream.keys()), "the ledger is not what was sent"
    kinds = {(d, s): k for d, s, k in found.ledger}
    assert all(kinds[key] == "event" for key in stream.event_keys())
    assert found.event_keys(devices) == stream.event_keys(), "events lost or stored twice"
    assert found.dead_letters == []
    last_telemetry = stream.last_telemetry_seq()
    wrong_state = {d: found.state_seq.get(d) for d in devices
                   if found.state_seq.get(d) != last_telemetry}
    assert wrong_state == {}, f"cabinets whose state is not their newest telemetry: {wrong_state}"
    not_acked = {d: acks.acked(d) for d in devices if acks.acked(d) != stream.rounds}
    assert not_acked == {}, f"cabinets whose newest seq was not acked: {not_acked}"


# --- 1. a worker killed mid-stream -------------------------------------------------------------

@pytest.mark.parametrize("workers", [1, 2], ids=["one_worker", "two_workers"])
async def test_an_ingest_worker_killed_mid_stream_loses_nothing_and_applies_nothing_twice(
        broker: Mosquitto, engine: Engine, database_url: str, tmp_path: Path,
        workers: int) -> None:
    stream = Stream(register_fleet(engine, 200), rounds=27,
                    event_rounds={9: "door_opened", 18: "door_closed"})
    probe = register_fleet(engine, 1, prefix="probe")[0]
    total = len(stream.keys())  # 5,000 telemetry and 400 events
    processes = [IngestProcess(tmp_path / "ingest", database_url, broker.url("fleet"),
                               f"fault-ingest-{n}") for n in range(workers)]
    victim = processes[0]

    def applied() -> int:
        for process in processes:
            process.assert_alive()
        return count_rows(engine, AppliedMessage, col(AppliedMessage.device_id) != probe)

    try:
        for process in processes:
            process.start()
        async with TimedAcks(broker) as cabinets:
            await probe_until_received(cabinets, probe, processes)
            publishing = asyncio.create_task(cabinets.publish_many(stream.messages()))
            await eventually(lambda: applied() >= total // 5, 60, "a fifth of the stream applied")
            victim.kill()
            applied_at_kill = applied()
            assert applied_at_kill < total, "the stream was applied before the kill: too short"

            await publishing  # the rest goes into the dead worker's session (and the other's)
            victim.start()
            try:
                await eventually(lambda: applied() == total and all(
                    cabinets.acked(d) == stream.rounds for d in stream.devices), 60,
                    "the whole stream applied and acked after the restart")
            except AssertionError as exc:
                missing = stream.keys() - ledger_keys(engine)
                logs = "\n".join(p.log()[-3000:] for p in processes)
                raise AssertionError(f"{exc}: {len(missing)} of {total} missing (killed at "
                                     f"{applied_at_kill}), e.g. {sorted(missing)[:5]}; "
                                     f"logs:\n{logs}") from None
            assert_stream_stored_exactly_once(engine, stream, cabinets)
        for process in processes:
            assert process.stop() == 0, f"no clean stop on SIGTERM:\n{process.log()[-3000:]}"
    finally:
        for process in processes:
            process.stop()
    for process in processes:
        assert "Traceback" not in process.log(), process.log()[-5000:]


# --- 2. the broker restarted under real cabinet agents -----------------------------------------

DOOR_CHANGES = 32  # scenario seconds of door flapping
SPEED = 4.0  # scenario seconds per real second: a change every 0.25 s, 8 messages/s per agent


@pytest.mark.parametrize(("share_group", "worker_back"), [
    pytest.param("", "reconnecting", id="plain_subscription-worker_reconnecting"),
    pytest.param("", "after_the_cabinets", id="plain_subscription-worker_after_the_cabinets"),
    pytest.param("aedfleet", "reconnecting", id="shared_subscription-worker_reconnecting"),
    pytest.param("aedfleet", "after_the_cabinets",
                 id="shared_subscription-worker_after_the_cabinets"),
])
async def test_a_broker_restart_under_real_cabinet_agents_loses_nothing_and_applies_nothing_twice(
        engine: Engine, database_url: str, tmp_path: Path, share_group: str,
        worker_back: str) -> None:
    devices = register_fleet(engine, 3)
    broker = Mosquitto(tmp_path / "broker", devices)
    broker.start()
    # Mosquitto does not restore shared subscriptions when it restarts: what cabinets publish
    # before the worker is subscribed again is dropped, and only the gap grace of acks (acks
    # stop at a cabinet's first gap until it resends) keeps that from being lost.
    settings = ingest_settings(broker, database_url, share_group=share_group,
                               client_id="fault-ingest", ack_gap_grace_s=60)
    # Sees what the broker routes, like any plain persistent subscriber; acks nothing.
    observer = FleetReceiver("127.0.0.1", broker.port, broker.credentials["fleet"], ack=False)
    cabinets: list[AgentCabinet] = []
    produced: dict[str, int] = {}

    async def until_settled() -> None:
        await eventually(lambda: all(c.simulator.elapsed() > DOOR_CHANGES + 3 and c.settled()
                                     for c in cabinets), 40,
                         "the doors at rest and every agent's spool fully acked")
        produced.update({c.device_id: c.spool.last_seq for c in cabinets})

    try:
        await observer.start()
        async with RunningWorker(IngestWorker(settings, engine)) as worker:
            for device in devices:
                # A resend after the ack timeout is how a cabinet fills a gap the fleet would
                # not ack over; it cannot hide a loss, since an ack over a gap drops it for good.
                cabinets.append(await AgentCabinet.start(
                    broker, device, tmp_path / "agents", door_flapping(DOOR_CHANGES), SPEED,
                    ack_timeout_s=5))
            await eventually(lambda: all(c.spool.acked_seq >= 4 for c in cabinets), 20,
                             "the first messages of every agent applied and acked")
            broker.stop()
            at_stop = {c.device_id: c.spool.last_seq for c in cabinets}
            await eventually(lambda: all(c.spool.last_seq >= at_stop[c.device_id] + 20
                                         for c in cabinets), 20,
                             "twenty more messages spooled by every agent during the outage")
            if worker_back == "reconnecting":
                broker.start()  # same port, same persistence file
                await until_settled()
                assert worker.stats.connects >= 2
        if worker_back == "after_the_cabinets":
            # The worker is back only once the cabinets have re-sent their backlog (its
            # reconnect backoff grows to 5 s; a cabinet's may be shorter).
            broker.start()
            backlog = {c.device_id: c.spool.last_seq for c in cabinets}
            await eventually(lambda: all(max(observer.seqs(d)) >= backlog[d] for d in devices),
                             20, "every agent's backlog re-published to the restarted broker")
            async with RunningWorker(IngestWorker(settings, engine)):
                await until_settled()
        assert all(c.agent.stats.connects >= 2 for c in cabinets)
    finally:
        for cabinet in cabinets:
            await cabinet.stop()
        await observer.stop()
        broker.stop()

    found = stored(engine)
    assert found.dead_letters == []
    for device, last in produced.items():
        ledger = sorted((s, k) for d, s, k in found.ledger if d == device)
        missing = sorted(set(range(1, last + 1)) - {s for s, _ in ledger})
        assert [s for s, _ in ledger] == list(range(1, last + 1)), \
            f"{device} produced seq 1..{last}, its spool is fully acked; never stored: {missing}"
        events = sorted((s, t) for d, s, t in found.events if d == device)
        assert [s for s, _ in events] == [s for s, k in ledger if k == "event"]
        doors = [t for _, t in events if t.startswith("door_")]
        assert len(doors) > 20 and doors == ["door_opened", "door_closed"] * (len(doors) // 2), \
            f"{device}: door events lost or repeated: {doors}"
        newest_telemetry = max(s for s, k in ledger if k == "telemetry")
        assert found.state_seq[device] == newest_telemetry


# --- 3. the database locked or cut off ---------------------------------------------------------

LOCK_S = 3.0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_sqlite_write_lock_held_by_another_process_delays_acks_and_loses_nothing(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    stream = Stream(register_fleet(engine, 20), rounds=24,
                    event_rounds={5: "door_opened", 12: "door_closed", 20: "tamper"})
    worker = IngestWorker(ingest_settings(broker, database_url), engine)
    database_file = engine.url.database
    assert database_file is not None
    async with RunningWorker(worker), TimedAcks(broker) as cabinets:
        await cabinets.publish_many(stream.messages(1, 4))
        await eventually(lambda: all(cabinets.acked(d) == 4 for d in stream.devices), 20,
                         "the first rounds applied and acked")

        locker = sqlite3.connect(database_file, isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            locked_at = time.monotonic()
            before = ledger_keys(engine)
            for r in range(5, 17):  # messages keep coming while the database is locked
                await cabinets.publish_many(stream.round(r))
                await asyncio.sleep(0.1)
            received = 4 * len(stream.devices) + 12 * len(stream.devices)
            await eventually(lambda: worker.metrics.value("aedfleet_ingest_received_total")
                             >= received, 10, "the worker to receive what came during the lock")
            await asyncio.sleep(max(0.0, LOCK_S - (time.monotonic() - locked_at)))  # the fault
            during = ledger_keys(engine)
            acked_during = cabinets.between(locked_at, time.monotonic())
            locker.execute("UPDATE manager SET name = name")  # the other writer's own work
            locker.execute("COMMIT")
            released_at = time.monotonic()
        finally:
            locker.close()

        await cabinets.publish_many(stream.messages(17, stream.rounds))
        await eventually(lambda: all(cabinets.acked(d) == stream.rounds for d in stream.devices),
                         30, "everything applied and acked after the lock")

    assert during == before, "something was stored while another process held the write lock"
    assert all(seq <= 4 for _, seq in acked_during), f"acked during the lock: {acked_during}"
    early = [(d, s, at - released_at) for d, s, at in cabinets.timed if s > 4 and at < released_at]
    assert early == [], "messages that came during the lock were acked before its release"
    assert_stream_stored_exactly_once(engine, stream, cabinets)


CUT_S = 3.0


def sessions_waiting_on_a_lock(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")).scalar_one())


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_cut_postgresql_link_is_retried_and_loses_nothing(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    stream = Stream(register_fleet(engine, 20), rounds=60,
                    event_rounds={10: "door_opened", 30: "door_closed", 50: "tamper"})
    server = make_url(database_url)
    proxy = TcpProxy(server.host or "127.0.0.1", server.port or 5432)
    proxy.start()
    proxied_url = server.set(port=proxy.port).render_as_string(hide_password=False)
    worker_engine = make_engine(proxied_url)
    worker = IngestWorker(ingest_settings(broker, proxied_url), worker_engine)

    async def publish_steadily() -> None:
        for r in range(1, stream.rounds + 1):  # 20 cabinets, 10 rounds a second, for 6 s
            await cabinets.publish_many(stream.round(r))
            await asyncio.sleep(0.1)

    try:
        async with RunningWorker(worker), TimedAcks(broker) as cabinets:
            publishing = asyncio.create_task(publish_steadily())
            await eventually(lambda: len(ledger_keys(engine)) >= 200, 20, "200 messages applied")
            # Cut the link while a batch is inside its transaction: hold the ledger's insert lock
            # until the worker's INSERT waits on it, then kill the proxy under it.
            locker = psycopg.connect(server.set(drivername="postgresql").render_as_string(
                hide_password=False))
            try:
                locker.execute("LOCK TABLE applied_message IN SHARE MODE")
                await eventually(lambda: sessions_waiting_on_a_lock(engine) > 0, 10,
                                 "a worker transaction waiting on the ledger lock")
                proxy.cut()
                cut_at = time.monotonic()
                received_at_cut = worker.metrics.value("aedfleet_ingest_received_total")
                await eventually(
                    lambda: worker.metrics.value("aedfleet_ingest_db_errors_total") > 0, 10,
                    "the worker to notice the database is gone")
            finally:
                locker.rollback()
                locker.close()
            stored_when_cut = ledger_keys(engine)  # nothing can commit through the dead link
            await asyncio.sleep(max(0.0, CUT_S - (time.monotonic() - cut_at)))  # the fault
            stored_before_restart = ledger_keys(engine)
            acked_while_cut = cabinets.between(cut_at, time.monotonic())
            received_while_cut = worker.metrics.value(
                "aedfleet_ingest_received_total") - received_at_cut
            proxy.start()  # same port
            await publishing
            await eventually(lambda: all(cabinets.acked(d) == stream.rounds
                                         for d in stream.devices), 30,
                             "everything applied and acked after the link came back")
        assert worker.metrics.value("aedfleet_ingest_db_errors_total") > 0
    finally:
        proxy.cut()
        worker_engine.dispose()

    assert received_while_cut > 0, "no message came while the database was unreachable"
    assert stored_before_restart == stored_when_cut, "stored through a cut link?"
    not_stored = [(d, s) for d, s in acked_while_cut if (d, s) not in stored_when_cut]
    assert not_stored == [], f"acked while the database was unreachable, not stored: {not_stored}"
    assert_stream_stored_exactly_once(engine, stream, cabinets)


# --- 4. a message the validator accepts and the database cannot store --------------------------

def poison(device: str, seq: int) -> bytes:
    """A contract-valid event the ingest cannot store: its door notice renders the RFC 3339 time
    9999-12-31T23:30:00Z in Europe/Amsterdam, year 10000 (OverflowError), on both engines."""
    return json.dumps({"v": 1, "device_id": device, "seq": seq, "ts": "9999-12-31T23:30:00Z",
                       "type": "door_opened"}).encode()


async def test_a_message_that_cannot_be_stored_becomes_a_dead_letter_and_holds_up_nothing(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    register_fleet(engine, 2)
    # One batch: the poison between valid messages of its own and another cabinet.
    worker = IngestWorker(ingest_settings(broker, database_url, batch_wait_ms=500), engine)
    async with RunningWorker(worker), TimedAcks(broker) as cabinets:
        await cabinets.publish_many([
            ("aed/cab-0/telemetry", telemetry("cab-0", 1)),
            ("aed/cab-0/event", poison("cab-0", 2)),
            ("aed/cab-0/telemetry", telemetry("cab-0", 3, battery_pct=55)),
            ("aed/cab-1/telemetry", telemetry("cab-1", 1)),
            ("aed/cab-1/event", event("cab-1", 2, "door_closed"))])
        await eventually(lambda: cabinets.acked("cab-0") == 3 and cabinets.acked("cab-1") == 2,
                         15, "the valid messages applied and acked")
        await eventually(lambda: worker.stats.batches >= 1, 5, "the batch counted")
        assert worker.stats.batches == 1, "the five messages were not one batch"

        await cabinets.publish("aed/cab-0/telemetry", telemetry("cab-0", 4))
        await eventually(lambda: cabinets.acked("cab-0") == 4, 15, "the worker going on")
        assert worker.metrics.value("aedfleet_ingest_dead_letters_total",
                                    reason="apply_failed") == 1

    found = stored(engine)
    applied = sorted((d, s) for d, s, kind in found.ledger if kind != "dead_letter")
    assert applied == [("cab-0", 1), ("cab-0", 3), ("cab-0", 4), ("cab-1", 1), ("cab-1", 2)]
    assert found.event_keys() == [("cab-1", 2)]
    assert found.dead_letters == [("cab-0", "apply_failed", poison("cab-0", 2))]
    assert found.state_seq == {"cab-0": 4, "cab-1": 1}


async def test_a_resent_poison_message_is_dead_lettered_once_and_acked_like_a_rejected_one(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    register_fleet(engine, 2)
    async with RunningWorker(IngestWorker(ingest_settings(broker, database_url), engine)), \
            TimedAcks(broker) as cabinets:
        await cabinets.publish("aed/cab-0/telemetry", telemetry("cab-0", 1))
        await eventually(lambda: cabinets.acked("cab-0") == 1, 15, "the first message acked")
        for _ in range(3):  # an agent sends again what it has not seen acked
            await cabinets.publish("aed/cab-0/event", poison("cab-0", 2))
        await cabinets.publish("aed/cab-1/telemetry", telemetry("cab-1", 1))  # comes after them
        await eventually(lambda: cabinets.acked("cab-1") == 1, 15, "the messages after them")
        acked = cabinets.acked("cab-0")
    letters = [reason for device, reason, _ in stored(engine).dead_letters if device == "cab-0"]
    assert (letters, acked) == (["apply_failed"], 2)


async def test_a_time_before_year_one_in_utc_is_rejected_as_out_of_range_and_acked(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    register_fleet(engine, 2)
    async with RunningWorker(IngestWorker(ingest_settings(broker, database_url), engine)), \
            TimedAcks(broker) as cabinets:
        await cabinets.publish("aed/cab-0/event", json.dumps({
            "v": 1, "device_id": "cab-0", "seq": 1, "ts": "0001-01-01T00:30:00+01:00",
            "type": "tamper"}).encode())
        await cabinets.publish("aed/cab-1/telemetry", telemetry("cab-1", 1))  # comes after it
        await eventually(lambda: cabinets.acked("cab-1") == 1, 15, "the message after it")
        acked = cabinets.acked("cab-0")
    assert ([reason for _, reason, _ in stored(engine).dead_letters], acked) == (
        ["out_of_range"], 1)
