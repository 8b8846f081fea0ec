"""Tables of the alarm core: responders, incidents, alerts, the outbox and what follows a call."""

from __future__ import annotations

from datetime import date, datetime, time

from pydantic import field_validator
from sqlalchemy import BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from fleet.db_types import UtcDateTime
from fleet.models import ID_PATTERN, utcnow


class ResponderBase(SQLModel):
    """What a citizen responder registers."""

    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=50)
    date_of_birth: date
    certificate_date: date | None = None
    training: str = Field(default="non_medical", max_length=12)  # medical | non_medical
    competences: str = Field(default="", max_length=200)
    """Comma-separated competences beyond CPR (`alarm_core.competence.COMPETENCES`)."""
    language: str | None = Field(default=None, max_length=8)
    """The language of alerts, messages and the questionnaire; None: the region's first."""
    region: str | None = Field(default=None, max_length=24, index=True)
    """The region the responder is registered in; None: the one their home lies in."""
    channel: str = Field(default="app", max_length=8)  # app | sms
    available: bool = True
    quiet_from: time | None = None
    quiet_until: time | None = None
    home_lat: float | None = Field(default=None, ge=-90, le=90)
    home_lon: float | None = Field(default=None, ge=-180, le=180)
    work_lat: float | None = Field(default=None, ge=-90, le=90)
    work_lon: float | None = Field(default=None, ge=-180, le=180)


class ResponderCreate(ResponderBase):
    id: str = Field(regex=ID_PATTERN)

    @field_validator("competences")
    @classmethod
    def _competence_list(cls, value: str) -> str:
        """Written as a comma-separated list, kept sorted without blanks or repeats."""
        return ",".join(sorted({part.strip() for part in value.split(",") if part.strip()}))

    @field_validator("quiet_from", "quiet_until")
    @classmethod
    def _whole_minutes(cls, value: time | None) -> time | None:
        """Quiet hours are kept to the minute (as the dispatch rules read them)."""
        return None if value is None else value.replace(second=0, microsecond=0)


class Responder(ResponderBase, table=True):
    id: str = Field(primary_key=True, max_length=64)
    last_lat: float | None = None
    last_lon: float | None = None
    last_location_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    active: bool = True
    ignored_in_row: int = 0
    """Alarms in a row left unanswered; reset by any answer."""
    inactive_since: datetime | None = Field(default=None, sa_type=UtcDateTime)
    busy_incident: str | None = Field(default=None, max_length=40, index=True)
    certificate_reminded_for: date | None = None
    """The certificate (by its date) the responder was last reminded to renew."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)


class ApiToken(SQLModel, table=True):
    """A machine caller's token (e.g. a 112 dispatch centre); only its SHA-256 is stored."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    caller: str = Field(max_length=100, index=True)
    scope: str = Field(default="dispatch", max_length=16)
    """`dispatch` (a 112 centre: incidents) or `responders` (a responder-app backend:
    answers)."""
    token_sha256: str = Field(max_length=64, unique=True)
    region: str | None = Field(default=None, max_length=24)
    """A dispatch centre's region: its calls must lie in that region's area."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Incident(SQLModel, table=True):
    """A cardiac-arrest call and what the alarm core did with it."""

    __table_args__ = (UniqueConstraint("caller", "reference"),)
    id: str = Field(primary_key=True, max_length=40)
    caller: str = Field(max_length=100)
    reference: str = Field(max_length=100)
    request_sha256: str = Field(max_length=64)
    lat: float
    lon: float
    address: str | None = Field(default=None, max_length=300)
    called_at: datetime = Field(sa_type=UtcDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    source: str = Field(max_length=12)  # 112 | wearable
    exclusions: str = Field(default="", max_length=300)
    incident_type: str | None = Field(default=None, max_length=40)
    region: str | None = Field(default=None, max_length=24, index=True)
    state: str = Field(max_length=16, index=True)  # excluded | dispatched | no_responders | closed
    outcome: str = Field(max_length=16)  # what it was before closing
    plan: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    expected_first_cpr_s: float | None = None
    expected_first_aed_s: float | None = None
    enough_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    close_reason: str | None = Field(default=None, max_length=40)


class IncidentResponder(SQLModel, table=True):
    """One responder alerted for one incident, and their answer."""

    __tablename__ = "incident_responder"
    __table_args__ = (UniqueConstraint("incident_id", "responder_id"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", index=True, max_length=40)
    responder_id: str = Field(foreign_key="responder.id", index=True, max_length=64)
    role: str = Field(max_length=12)
    aed_id: str | None = Field(default=None, max_length=64)
    designated: bool = False
    distance_m: float
    eta_s: float
    status: str = Field(default="alerted", max_length=12)
    """alerted | accepted | declined | cancelled"""
    alerted_at: datetime = Field(sa_type=UtcDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class IncidentAed(SQLModel, table=True):
    """An AED sent to an incident, who fetches it, and whether it was picked up."""

    __tablename__ = "incident_aed"
    __table_args__ = (UniqueConstraint("incident_id", "aed_id"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", index=True, max_length=40)
    aed_id: str = Field(foreign_key="aed.id", index=True, max_length=64)
    distance_m: float
    unverified: bool = False
    fetcher_id: str | None = Field(default=None, max_length=64)
    fetcher_since: datetime | None = Field(default=None, sa_type=UtcDateTime)
    fetcher_accepted: bool = False
    tried: str = Field(default="", max_length=2000)
    """Responders who were this AED's fetcher and declined or did not answer in time."""
    picked_up_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    picked_up_seq: int | None = Field(default=None, sa_type=BigInteger)
    """The cabinet's seq of the pick-up event: only a later report can say the AED is back."""
    released_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)


class OutboxMessage(SQLModel, table=True):
    """A message to a responder, stored with the decision that caused it and sent after commit."""

    __tablename__ = "outbox_message"
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=8)  # mqtt | sms
    topic: str = Field(max_length=200)
    """The MQTT topic (an SMS is sent to the phone of the responder it names)."""
    incident_id: str | None = Field(default=None, max_length=40, index=True)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    urgent: bool = True
    """Alerts and cancellations go before questionnaires and reminders, and expire."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    """After a failed delivery: not before this time (backoff), so one failing message
    never holds up the others."""
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=300)


class ResponderLocation(SQLModel, table=True):
    """Where an accepted responder is on the way: personal data, deleted at `expires_at`."""

    __tablename__ = "responder_location"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", index=True, max_length=40)
    responder_id: str = Field(foreign_key="responder.id", index=True, max_length=64)
    lat: float
    lon: float
    ts: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime, index=True)


class Questionnaire(SQLModel, table=True):
    """The after-call questionnaire of one alerted responder, open for a limited time."""

    token: str = Field(primary_key=True, max_length=64)
    incident_id: str = Field(foreign_key="incident.id", index=True, max_length=40)
    responder_id: str | None = Field(default=None, foreign_key="responder.id", index=True,
                                     max_length=64)
    """None once detached from the responder by the retention job (`[retention]
    questionnaire_days`): the answers stay, nobody's name is on them."""
    sent_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    answers: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class AftercareTask(SQLModel, table=True):
    """A responder asked to be contacted after a call: the care team owes them a call."""

    __tablename__ = "aftercare_task"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", index=True, max_length=40)
    responder_id: str | None = Field(default=None, foreign_key="responder.id", index=True,
                                     max_length=64)
    """None once detached from the responder by the retention job (with the note)."""
    requested_at: datetime = Field(sa_type=UtcDateTime)
    due_at: datetime = Field(sa_type=UtcDateTime, index=True)
    done_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    note: str | None = Field(default=None, max_length=1000)


class IncidentSummary(SQLModel, table=True):
    """What stays of an incident for statistics and the national resuscitation register.

    Made with a pseudonymous `number` when an incident is first exported; completed when the
    retention job removes the incident's personal data (`coarsened_at`): the incident's PC4
    area and municipality, and the register's figures (`record`, JSON) taken from the
    alerts, AEDs and questionnaires before those lose their link to people.
    """

    __tablename__ = "incident_summary"
    incident_id: str = Field(primary_key=True, foreign_key="incident.id", max_length=40)
    number: str = Field(max_length=16, unique=True)
    """The register's incident number: random, neither the internal id nor the 112 reference."""
    pc4: str | None = Field(default=None, max_length=4)
    municipality: str | None = Field(default=None, max_length=120)
    record: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    coarsened_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)


class InboxMessage(SQLModel, table=True):
    """A message in responders' inboxes: to one responder, or news to a whole region.

    System messages (`questionnaire`, `certificate`, ...) keep their `kind` and `params` and are
    worded in the reader's language when shown; news is kept as its author wrote it.
    """

    __tablename__ = "inbox_message"
    id: int | None = Field(default=None, primary_key=True)
    responder_id: str | None = Field(default=None, foreign_key="responder.id", index=True,
                                     max_length=64)
    region: str | None = Field(default=None, max_length=24, index=True)
    """News: every responder of this region (`responder_id` is then None)."""
    kind: str = Field(max_length=16)  # questionnaire | certificate | news
    params: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    subject: str | None = Field(default=None, max_length=200)
    body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    language: str | None = Field(default=None, max_length=8)
    author: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class InboxRead(SQLModel, table=True):
    """That a responder has read an inbox message, and when."""

    __tablename__ = "inbox_read"
    message_id: int = Field(foreign_key="inbox_message.id", primary_key=True)
    responder_id: str = Field(foreign_key="responder.id", primary_key=True, max_length=64)
    read_at: datetime = Field(sa_type=UtcDateTime)
