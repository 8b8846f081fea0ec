"""Apply one batch of cabinet messages in one database transaction, exactly once.

Every message is validated against contract v1 first. A rejected one becomes a dead letter with
its reason. A valid telemetry or event message of a registered cabinet enters the
`(device_id, seq)` ledger; one already there is a duplicate (a QoS 1 redelivery or an agent's
resend) and changes nothing. Telemetry updates the cabinet's latest state when it is newer than
what is stored (messages can arrive out of order across workers), events are appended to the
event log, `status` messages set the cabinet online or offline. Then the readiness of every AED
touched is re-evaluated and each change recorded, with the manager notices it causes, in the
same transaction. The caller acks the devices only after this function has returned: after the
commit.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, func, tuple_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from fleet.db import session_scope
from fleet.ingest.readiness import ReadinessRecorder
from fleet.models import (
    Aed,
    AppliedMessage,
    Cabinet,
    DeadLetter,
    DeviceEvent,
    Municipality,
    TelemetryState,
)
from fleet.settings import Settings
from fleet.timeseries import TelemetrySample, sample_fields
from fleet.wire import (
    MAX_PAYLOAD,
    EventMessage,
    PayloadRejected,
    StatusMessage,
    TelemetryMessage,
    parse_cabinet_message,
    topic_device,
)

logger = logging.getLogger(__name__)

# Reasons the ingest adds to the validator's (fleet.wire.REJECTION_REASONS).
INGEST_REJECTION_REASONS = {
    "unknown_device": "no cabinet with this device id is registered",
    "apply_failed": "the message passed validation but could not be stored (see the log)",
}
_STATE_FIELDS = ("battery_pct", "battery_expiry", "pads_expiry", "self_test", "self_test_ts",
                 "door_open", "aed_present", "temperature_c", "heater_on", "power",
                 "source_fault")

_STATE_COLUMNS = ("seq", "ts", "received_at", "online", "status_ts", "door_open_since",
                  *_STATE_FIELDS)
_state_table = TelemetryState.__table__  # type: ignore[attr-defined]
# One executemany for all the batch's state updates, by primary key.
_STATE_UPDATE = (_state_table.update()
                 .where(_state_table.c.device_id == bindparam("b_device_id"))
                 .values({name: bindparam(f"b_{name}") for name in _STATE_COLUMNS}))


@dataclass(frozen=True)
class Incoming:
    """One MQTT message as received; `token` lets the caller acknowledge it to the broker."""

    topic: str
    payload: bytes
    received_at: datetime
    token: Any = None


@dataclass
class BatchOutcome:
    """What one applied batch did: the counts, the acks to publish and the samples to write."""

    applied: Counter[str] = field(default_factory=Counter)  # telemetry | event | status
    duplicates: int = 0
    late_telemetry: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)  # by reason
    acks: dict[str, int] = field(default_factory=dict)  # device id -> highest stored seq
    samples: list[TelemetrySample] = field(default_factory=list)
    transitions: int = 0
    notices: int = 0
    message_ts: list[datetime] = field(default_factory=list)  # of applied messages, for lag


@dataclass
class _Parsed:
    incoming: Incoming
    message: TelemetryMessage | EventMessage | StatusMessage | None = None
    rejection: PayloadRejected | None = None
    device_id: str | None = None


def apply_batch(engine: Engine, batch: Sequence[Incoming], settings: Settings,
                now: datetime) -> BatchOutcome:
    """Store `batch` in one transaction; raises on database trouble (then nothing is stored)."""
    parsed = [_parse(item) for item in batch]
    outcome = BatchOutcome()
    with session_scope(engine) as session:
        _apply(session, parsed, settings, now, outcome)
    return outcome


def apply_each(engine: Engine, batch: Sequence[Incoming], settings: Settings,
               now: datetime) -> BatchOutcome:
    """Apply message by message; one that cannot be stored becomes an `apply_failed` dead letter.

    The fallback for a batch that fails for a reason other than the database being unavailable,
    so that one poison message cannot hold up the valid ones around it.
    """
    total = BatchOutcome()
    for item in batch:
        try:
            result = apply_batch(engine, [item], settings, now)
        except Exception as exc:  # noqa: BLE001 -- whatever it is, the message must not be lost
            logger.exception("message on %s could not be applied", item.topic)
            result = _dead_letter_failed(engine, item, f"{type(exc).__name__}: {exc}", now)
        _merge(total, result)
    return total


def _dead_letter_failed(engine: Engine, item: Incoming, detail: str,
                        now: datetime) -> BatchOutcome:
    """Keep a message the database refused as an `apply_failed` dead letter, once.

    Like any dead letter of a registered cabinet it enters the ledger and is acked, so that the
    cabinet's resends neither pile up dead letters nor go on forever.
    """
    result = BatchOutcome()
    device, seq = topic_device(item.topic), _claimed_seq(item.topic, item.payload)
    with session_scope(engine) as session:
        if device is not None and seq is not None and session.get(Cabinet, device) is not None:
            if session.get(AppliedMessage, (device, seq)) is not None:
                result.duplicates += 1
                result.acks[device] = seq
                return result
            session.add(AppliedMessage(device_id=device, seq=seq, kind="dead_letter",
                                       applied_at=now))
            result.acks[device] = seq
        _store_dead_letter(session, item, "apply_failed", detail, device)
    result.dead_letters["apply_failed"] += 1
    return result


def _merge(total: BatchOutcome, part: BatchOutcome) -> None:
    total.applied.update(part.applied)
    total.duplicates += part.duplicates
    total.late_telemetry += part.late_telemetry
    total.dead_letters.update(part.dead_letters)
    for device, seq in part.acks.items():
        total.acks[device] = max(seq, total.acks.get(device, seq))
    total.samples += part.samples
    total.transitions += part.transitions
    total.notices += part.notices
    total.message_ts += part.message_ts


def _parse(item: Incoming) -> _Parsed:
    try:
        message = parse_cabinet_message(item.topic, item.payload)
    except PayloadRejected as exc:
        return _Parsed(item, rejection=exc, device_id=topic_device(item.topic))
    return _Parsed(item, message=message, device_id=message.device_id)


def _claimed_seq(topic: str, payload: bytes) -> int | None:
    """The seq a rejected telemetry or event payload carries, if a valid one (ledger, ack)."""
    if not topic.endswith(("/telemetry", "/event")) or len(payload) > MAX_PAYLOAD:
        return None
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    seq = document.get("seq") if isinstance(document, dict) else None
    if type(seq) is int and 1 <= seq <= 2**63 - 1:
        return seq
    return None


def _table(model: Any) -> Any:
    return model.__table__


def _apply(session: Session, parsed: list[_Parsed], settings: Settings, now: datetime,
           outcome: BatchOutcome) -> None:
    devices = {p.device_id for p in parsed if p.device_id}
    cabinets: dict[str, tuple[str | None, str | None]] = {
        device: (aed_id, municipality) for device, aed_id, municipality in session.execute(
            sa_select(col(Cabinet.device_id), col(Cabinet.aed_id), col(Municipality.name))
            .outerjoin(Aed, col(Aed.id) == Cabinet.aed_id)
            .outerjoin(Municipality, col(Municipality.id) == Aed.municipality_id)
            .where(col(Cabinet.device_id).in_(devices)))}

    # Validation and registration first: what fails either becomes a dead letter.
    accepted: list[_Parsed] = []
    letters: list[tuple[_Parsed, str, str]] = []
    for item in parsed:
        if item.rejection is not None:
            letters.append((item, item.rejection.code, str(item.rejection)))
        elif item.device_id not in cabinets:
            letters.append((item, "unknown_device", f"device {item.device_id} is not registered"))
        else:
            accepted.append(item)
    # The seq a rejected message of a registered cabinet carries: it is stored (as a dead
    # letter) under that seq, once, and acked.
    claimed = {id(item): _claimed_seq(item.incoming.topic, item.incoming.payload)
               for item, _code, _detail in letters if item.device_id in cabinets}

    # The ledger: each (device, seq) is stored once, whether applied or dead-lettered.
    keyed: list[tuple[tuple[str, int], str, _Parsed]] = []
    for item in accepted:
        message = item.message
        if isinstance(message, TelemetryMessage | EventMessage):
            kind = "telemetry" if isinstance(message, TelemetryMessage) else "event"
            keyed.append(((message.device_id, message.seq), kind, item))
    for item, _code, _detail in letters:
        seq = claimed.get(id(item))
        if item.device_id is not None and seq is not None:
            keyed.append(((item.device_id, seq), "dead_letter", item))
    fresh = _claim_ledger(session, keyed, now, outcome)

    for item, code, detail in letters:
        seq = claimed.get(id(item))
        if seq is not None and (item.device_id, seq) not in fresh:
            continue  # a resend of a message already dead-lettered
        _store_dead_letter(session, item.incoming, code, detail, item.device_id)
        outcome.dead_letters[code] += 1

    telemetry: dict[str, list[tuple[TelemetryMessage, datetime]]] = defaultdict(list)
    events: list[dict[str, Any]] = []
    # Statuses are ordered by arrival, not by their `ts`: a will is composed when its cabinet
    # connects and published by the broker when the connection dies, so its `ts` is older than
    # everything the cabinet sent over that connection.
    statuses: dict[str, tuple[StatusMessage, datetime]] = {}
    for item in accepted:
        message = item.message
        if isinstance(message, StatusMessage):
            latest = statuses.get(message.device_id)
            if latest is None or item.incoming.received_at >= latest[1]:
                statuses[message.device_id] = (message, item.incoming.received_at)
            outcome.applied["status"] += 1
            continue
        assert isinstance(message, TelemetryMessage | EventMessage)
        if (message.device_id, message.seq) not in fresh or fresh[
                (message.device_id, message.seq)] is not item:
            continue
        outcome.message_ts.append(message.ts)
        if isinstance(message, TelemetryMessage):
            telemetry[message.device_id].append((message, item.incoming.received_at))
            aed_id, municipality = cabinets[message.device_id]
            outcome.samples.append(TelemetrySample(
                device_id=message.device_id, aed_id=aed_id, municipality=municipality,
                ts=message.ts, fields=sample_fields(message)))
        else:
            events.append({"device_id": message.device_id, "seq": message.seq, "ts": message.ts,
                           "type": message.type, "detail": message.detail,
                           "cmd_id": message.cmd_id, "received_at": item.incoming.received_at})
        outcome.applied[("telemetry" if isinstance(message, TelemetryMessage) else "event")] += 1

    changed = _store_telemetry(
        session, telemetry, statuses, outcome,
        timedelta(minutes=settings.readiness.telemetry_stale_after_minutes), now)
    if events:
        session.connection().execute(_table(DeviceEvent).insert(), events)

    recorder = ReadinessRecorder(session, settings, now)
    touched = {cabinets[d][0] for d in changed | {e["device_id"] for e in events}}
    touched.discard(None)
    recorder.refresh(sorted(a for a in touched if a), cause="cabinet report")
    for event in events:
        if event["type"] == "door_opened":
            aed_id = cabinets[event["device_id"]][0]
            if aed_id is not None:
                recorder.door_opened(aed_id, event["ts"])
    outcome.transitions += recorder.transitions
    outcome.notices += recorder.notices


def _claim_ledger(session: Session, keyed: list[tuple[tuple[str, int], str, _Parsed]],
                  now: datetime, outcome: BatchOutcome) -> dict[tuple[str, int], _Parsed]:
    """Enter new `(device, seq)` keys into the ledger; returns the new ones and what claimed them.

    Every key seen, new or duplicate, is acknowledged: a duplicate was stored before.
    """
    if not keyed:
        return {}
    for (device, seq), _kind, _item in keyed:
        outcome.acks[device] = max(seq, outcome.acks.get(device, seq))
    keys = list({key for key, _kind, _item in keyed})
    stored: set[tuple[str, int]] = set()
    for start in range(0, len(keys), 500):
        stored.update((device, seq) for device, seq in session.execute(
            sa_select(col(AppliedMessage.device_id), col(AppliedMessage.seq))
            .where(tuple_(col(AppliedMessage.device_id), col(AppliedMessage.seq))
                   .in_(keys[start:start + 500]))))
    fresh: dict[tuple[str, int], _Parsed] = {}
    rows = []
    for key, kind, item in keyed:
        if key in stored or key in fresh:
            outcome.duplicates += 1
            continue
        fresh[key] = item
        rows.append({"device_id": key[0], "seq": key[1], "kind": kind, "applied_at": now})
    if rows:
        rows.sort(key=lambda row: (row["device_id"], row["seq"]))  # one lock order for all
        # Two workers holding the same key (a redelivery racing the original) conflict here;
        # the loser's transaction fails, is retried, and then sees the key as a duplicate.
        session.connection().execute(_table(AppliedMessage).insert(), rows)
    return fresh


def _store_telemetry(session: Session,
                     telemetry: dict[str, list[tuple[TelemetryMessage, datetime]]],
                     statuses: dict[str, tuple[StatusMessage, datetime]],
                     outcome: BatchOutcome,
                     stale_after: timedelta, now: datetime) -> set[str]:
    """Upsert the latest state of each device; returns those whose readiness may have changed.

    A heartbeat that repeats the stored state of a cabinet that was fresh and online changes no
    readiness input but its report time, so it is not re-evaluated: what time alone changes is
    the sweep's. Anything else (a measured value, online/offline, a stale cabinet heard from
    again, a first report) is.
    """
    devices = set(telemetry) | set(statuses)
    if not devices:
        return set()
    # Plain rows, not ORM objects: the readiness query later in this transaction must see the
    # new state, not a stale copy in the session's identity map.
    table = _state_table
    # Locked, in a fixed order: two workers applying reports of one cabinet at once must not
    # both read seq 4 and the later commit write its older state over the other's seq 5.
    current = {row.device_id: row for row in session.execute(
        sa_select(table).where(table.c.device_id.in_(devices))
        .order_by(table.c.device_id).with_for_update())}
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    changed: set[str] = set()
    for device in sorted(devices):
        row = current.get(device)
        state: dict[str, Any] | None = None if row is None else {
            "device_id": device, "seq": row.seq, "ts": row.ts, "received_at": row.received_at,
            "online": row.online, "status_ts": row.status_ts,
            "door_open_since": row.door_open_since,
            **{name: getattr(row, name) for name in _STATE_FIELDS}}
        for message, received_at in sorted(telemetry.get(device, []), key=lambda m: m[0].seq):
            if state is not None and message.seq <= state["seq"]:
                outcome.late_telemetry += 1  # older than the stored state: history only
                continue
            state = _telemetry_state(state, message, received_at)
        if device in statuses:
            status, arrived = statuses[device]
            if state is None:
                # A cabinet whose first word is its status: known to exist, nothing measured.
                state = {"device_id": device, "seq": 0, "ts": status.ts, "received_at": arrived,
                         "online": None, "status_ts": None, "door_open_since": None,
                         **dict.fromkeys(_STATE_FIELDS)}
            # `status_ts` is when the latest status arrived; telemetry that arrived after an
            # `offline` says more about being online than that status does.
            if state["status_ts"] is None or arrived >= state["status_ts"]:
                state["status_ts"] = arrived
                if status.state == "online" or arrived >= state["received_at"]:
                    state["online"] = status.state == "online"
        if state is None:
            continue
        if row is None:
            inserts.append(state)
            changed.add(device)
            continue
        if (state["seq"], state["online"], state["status_ts"]) == (
                row.seq, row.online, row.status_ts):
            continue
        updates.append({f"b_{name}": value for name, value in state.items()})
        was_fresh = now - min(row.ts, row.received_at) <= stale_after
        if (not was_fresh or state["online"] != row.online
                or any(state[name] != getattr(row, name) for name in _STATE_FIELDS)):
            changed.add(device)
    connection = session.connection()
    if inserts:
        connection.execute(table.insert(), inserts)
    if updates:
        connection.execute(_STATE_UPDATE, updates)
    return changed


def _telemetry_state(previous: dict[str, Any] | None, message: TelemetryMessage,
                     received_at: datetime) -> dict[str, Any]:
    """The state after `message`: a snapshot, so a field it leaves out is unknown."""
    state: dict[str, Any] = {
        "device_id": message.device_id, "seq": message.seq, "ts": message.ts,
        "received_at": received_at,
        **{name: getattr(message, name) for name in _STATE_FIELDS}}
    status_ts = previous.get("status_ts") if previous else None
    state["status_ts"] = status_ts
    if status_ts is None or received_at >= status_ts:
        state["online"] = True
    else:
        state["online"] = previous.get("online") if previous else None
    was_open = bool(previous and previous.get("door_open"))
    if message.door_open:
        since = previous.get("door_open_since") if previous and was_open else None
        # Not later than its arrival: a cabinet clock running ahead must not extend the grace.
        state["door_open_since"] = since or min(message.ts, received_at)
    else:
        state["door_open_since"] = None
    return state


def _store_dead_letter(session: Session, item: Incoming, reason: str, detail: str,
                       device_id: str | None) -> None:
    session.connection().execute(_table(DeadLetter).insert(), [{
        "received_at": item.received_at, "topic": item.topic[:300], "device_id": device_id,
        "reason": reason, "detail": detail.replace("\x00", "\\x00")[:500],
        "payload": item.payload[:MAX_PAYLOAD],
        "payload_size": len(item.payload)}])


def contiguous_acks(engine: Engine, acks: dict[str, int], since: datetime) -> dict[str, int]:
    """Cap each device's ack at the end of its unbroken run of seqs stored since `since`.

    Counting from the highest seq stored before `since` (gaps below it count as settled), only
    an unbroken run of seqs stored since is acked; a device with no such run gets no ack yet.
    """
    if not acks:
        return acks
    devices = list(acks)
    before: dict[str, int] = {}
    after: dict[str, list[int]] = defaultdict(list)
    ledger = _table(AppliedMessage)
    with engine.connect() as connection:
        for start in range(0, len(devices), 500):
            chunk = devices[start:start + 500]
            before.update((device, seq) for device, seq in connection.execute(
                sa_select(ledger.c.device_id, func.max(ledger.c.seq))
                .where(ledger.c.device_id.in_(chunk), ledger.c.applied_at < since)
                .group_by(ledger.c.device_id)))
            for device, seq in connection.execute(
                    sa_select(ledger.c.device_id, ledger.c.seq)
                    .where(ledger.c.device_id.in_(chunk), ledger.c.applied_at >= since)
                    .order_by(ledger.c.device_id, ledger.c.seq)):
                after[device].append(seq)
    capped: dict[str, int] = {}
    for device in acks:
        reached = before.get(device, 0)
        for seq in after[device]:
            if seq <= reached:
                continue
            if seq != reached + 1:
                break
            reached = seq
        if reached >= 1:
            capped[device] = reached  # may exceed `ack`: a late seq can close the gap
    return capped
