"""Registry tables (SQLModel). Schema changes go through Alembic migrations in fleet/migrations."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from fleet.db_types import UtcDateTime

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
REGION_PATTERN = r"^[A-Z]{2}(-[A-Z0-9]{1,10}){0,2}$"
"""A region's code: its country and, for a part of it, a subdivision (`NL`, `BE-VLG-LEUVEN`)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Region(SQLModel, table=True):
    """A served region: its area, time zone, languages and own rules (see `fleet.regions`).

    Loaded from a region file with `aedfleet regions load`; every service reads it from here.
    """

    code: str = Field(primary_key=True, max_length=24)
    name: str = Field(max_length=120)
    timezone: str = Field(max_length=64)
    country: str = Field(max_length=2)
    """ISO country code: whose public holidays `PH` in opening hours means."""
    languages: str = Field(max_length=60)
    """Comma-separated language codes, the first being the region's default."""
    area_geojson: str = Field(sa_column=Column(Text, nullable=False))
    dispatch: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    """JSON: the region's dispatch policy (fields of `DispatchPolicy`), over `[dispatch]`."""
    readiness: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    """JSON: the region's readiness thresholds, over `[readiness]`."""
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Municipality(SQLModel, table=True):
    """A municipality; its boundary (GeoJSON geometry) assigns imported AEDs to it."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True, index=True)
    population: int | None = None
    boundary_geojson: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Manager(SQLModel, table=True):
    """A person or organisation that looks after AEDs."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True, index=True)
    kind: str = Field(default="organisation", max_length=20)  # person | organisation
    email: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=50)


class AedBase(SQLModel):
    """Fields of an AED as registered (by a manager or an import)."""

    serial: str | None = Field(default=None, max_length=64)
    make: str | None = Field(default=None, max_length=100)
    model: str | None = Field(default=None, max_length=100)
    name: str | None = Field(default=None, max_length=200)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str | None = Field(default=None, max_length=300)
    indoor: bool | None = None
    location_hint: str | None = Field(default=None, max_length=500)
    access: str = Field(default="public", max_length=20)  # public | private
    opening_hours: str | None = Field(default=None, max_length=500)
    cabinet_code: str | None = Field(default=None, max_length=32)
    pads_expiry: date | None = None
    battery_expiry: date | None = None
    out_of_service: bool = False
    source: str | None = Field(default=None, max_length=40)


class AedCreate(AedBase):
    id: str = Field(regex=ID_PATTERN)
    municipality: str | None = None
    manager: str | None = None
    device_id: str | None = Field(default=None, regex=ID_PATTERN)


class Aed(AedBase, table=True):
    id: str = Field(primary_key=True, max_length=64)
    municipality_id: int | None = Field(default=None, foreign_key="municipality.id", index=True)
    manager_id: int | None = Field(default=None, foreign_key="manager.id", index=True)
    region: str | None = Field(default=None, max_length=24, index=True)
    """The region the AED stands in, kept for the console's views of a region (set on every
    registration and when regions change; the dispatch rules look the region up themselves)."""
    in_use_incident: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Cabinet(SQLModel, table=True):
    """A connected AED cabinet with its agent; `register_map` names a file in config/cabinets."""

    device_id: str = Field(primary_key=True, max_length=64)
    aed_id: str | None = Field(default=None, foreign_key="aed.id", unique=True, index=True)
    register_map: str = Field(default="rcc1", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ReadinessDeclaration(SQLModel, table=True):
    """A manager's statement that an AED is ready for deployment, as of `declared_at`."""

    # The latest declaration of each AED is found through this index; without it SQLite joins
    # by `declared_at` alone, which is quadratic when a bulk import gave many the same time.
    __table_args__ = (Index("ix_readinessdeclaration_aed_declared", "aed_id", "declared_at"),)

    id: int | None = Field(default=None, primary_key=True)
    aed_id: str = Field(foreign_key="aed.id", index=True, max_length=64)
    declared_at: datetime = Field(sa_type=UtcDateTime, index=True)
    declared_by: str = Field(max_length=200)
    note: str | None = Field(default=None, max_length=500)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class TelemetryState(SQLModel, table=True):
    """The latest state a cabinet reported (one row per device, upserted by the ingest)."""

    device_id: str = Field(primary_key=True, foreign_key="cabinet.device_id", max_length=64)
    seq: int = Field(sa_type=BigInteger)
    ts: datetime = Field(sa_type=UtcDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    online: bool | None = None
    status_ts: datetime | None = Field(default=None, sa_type=UtcDateTime)
    """When the latest `status` message arrived (arrival orders them: a will's own `ts` is old)."""
    battery_pct: int | None = None
    battery_expiry: date | None = None
    pads_expiry: date | None = None
    self_test: str | None = Field(default=None, max_length=10)
    self_test_ts: datetime | None = Field(default=None, sa_type=UtcDateTime)
    door_open: bool | None = None
    door_open_since: datetime | None = Field(default=None, sa_type=UtcDateTime)
    aed_present: bool | None = None
    temperature_c: float | None = None
    heater_on: bool | None = None
    power: str | None = Field(default=None, max_length=10)
    source_fault: str | None = Field(default=None, max_length=200)


class DeviceEvent(SQLModel, table=True):
    """One event a cabinet reported; `(device_id, seq)` is applied at most once."""

    __table_args__ = (UniqueConstraint("device_id", "seq", name="uq_device_event_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    device_id: str = Field(foreign_key="cabinet.device_id", index=True, max_length=64)
    seq: int = Field(sa_type=BigInteger)
    ts: datetime = Field(sa_type=UtcDateTime, index=True)
    type: str = Field(max_length=32)
    detail: str | None = Field(default=None, max_length=500)
    cmd_id: str | None = Field(default=None, max_length=64)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class AppliedMessage(SQLModel, table=True):
    """Ledger of every sequenced cabinet message the ingest has stored: `(device_id, seq)` once.

    Telemetry, events and dead-lettered messages of known cabinets all enter it, so a QoS 1
    redelivery or an agent's resend is recognised as a duplicate. Rows older than the ledger
    retention are pruned by the sweep.
    """

    __tablename__ = "applied_message"

    device_id: str = Field(primary_key=True, max_length=64)
    seq: int = Field(primary_key=True, sa_type=BigInteger)
    kind: str = Field(max_length=12)  # telemetry | event | dead_letter
    applied_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)


class DeadLetter(SQLModel, table=True):
    """A message the ingest rejected, kept with its reason so nothing is silently dropped."""

    __tablename__ = "dead_letter"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
    topic: str = Field(max_length=300)
    device_id: str | None = Field(default=None, max_length=64, index=True)
    reason: str = Field(max_length=32, index=True)
    detail: str = Field(max_length=500)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    payload_size: int


class AedReadiness(SQLModel, table=True):
    """The readiness last recorded for an AED, and since when it has held."""

    __tablename__ = "aed_readiness"

    aed_id: str = Field(primary_key=True, foreign_key="aed.id", max_length=64)
    state: str = Field(max_length=12, index=True)
    reasons: str = Field(default="", max_length=500)  # space-separated reason codes
    warnings: str = Field(default="", max_length=500)
    since: datetime = Field(sa_type=UtcDateTime)
    evaluated_at: datetime = Field(sa_type=UtcDateTime)


class ReadinessTransition(SQLModel, table=True):
    """One change of an AED's readiness (state or reasons), with its time and cause."""

    __tablename__ = "readiness_transition"

    id: int | None = Field(default=None, primary_key=True)
    aed_id: str = Field(foreign_key="aed.id", index=True, max_length=64)
    at: datetime = Field(sa_type=UtcDateTime, index=True)
    from_state: str | None = Field(default=None, max_length=12)
    to_state: str = Field(max_length=12)
    reasons: str = Field(default="", max_length=500)
    added: str = Field(default="", max_length=500)  # reason codes new in this transition
    cause: str = Field(max_length=100)


class Notification(SQLModel, table=True):
    """Outbox of messages to AED managers, written in the transaction that caused them."""

    id: int | None = Field(default=None, primary_key=True)
    aed_id: str = Field(foreign_key="aed.id", index=True, max_length=64)
    manager_id: int | None = Field(default=None, foreign_key="manager.id", index=True)
    kind: str = Field(max_length=32)
    dedup_key: str = Field(max_length=200, index=True)
    subject: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
    status: str = Field(default="pending", max_length=16, index=True)
    # pending | sent | failed | no_recipient
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_error: str | None = Field(default=None, max_length=500)


class ConsoleUser(SQLModel, table=True):
    """A person who logs in to the console, with one role.

    A manager account sees the AEDs of its manager; a municipality account the aggregated
    picture of its municipality; a responder account its own responder profile.
    """

    __tablename__ = "console_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=16)  # admin | manager | municipality | dispatcher | responder
    region: str | None = Field(default=None, max_length=24, index=True)
    """The region the account works in; None: every region (the platform's own admins)."""
    locale: str | None = Field(default=None, max_length=8)
    """The account's language (`nl`, `en`, `de`, `fr`); None: the browser's or the region's."""
    manager_id: int | None = Field(default=None, foreign_key="manager.id", index=True)
    municipality_id: int | None = Field(default=None, foreign_key="municipality.id")
    responder_id: str | None = Field(default=None, foreign_key="responder.id", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class SweepMark(SQLModel, table=True):
    """When a periodic job last completed (`readiness_sweep`: every AED re-evaluated).

    Readers of the recorded readiness check it: a state recorded by a sweep that stopped
    running is not shown as ready.
    """

    __tablename__ = "sweep_mark"

    name: str = Field(primary_key=True, max_length=40)
    at: datetime = Field(sa_type=UtcDateTime)


class AuditEntry(SQLModel, table=True):
    """One change a person or job made to an AED or an account, written in the transaction of
    the change itself.

    Append-only: no code path updates an entry (the database refuses it), and only the
    retention job deletes them, after `[retention] audit_years`. `changes` is a JSON object of
    field -> [old, new]; secrets (passwords, hashes, cabinet access codes) never appear in it.
    """

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UtcDateTime, index=True)
    actor: str = Field(max_length=200, index=True)
    """A console user name, `cli:<os user>`, or `system` (a job, a test, the demo)."""
    action: str = Field(max_length=40, index=True)
    object_id: str = Field(max_length=200, index=True)
    """What was changed: an AED id, a user name, an import file's name."""
    changes: str = Field(default="{}", sa_column=Column(Text, nullable=False))
