"""The responder inbox: system messages to one responder, news to a whole region, read or unread.

A system message (`questionnaire`, `certificate`) is stored with the decision that caused it, in
the caller's transaction, as its kind and parameters; it is worded in the reader's language
whenever it is shown or pushed. News is one row for its region, kept as its author wrote it,
never one row per responder. An app responder gets each personal message pushed on
`responders/{id}/inbox` through the outbox; region news goes out once, retained, on
`regions/{code}/news` (a region may have 100,000 responders). SMS responders read their inbox
in the console only.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from alarm_core.errors import NotFound, Refused
from alarm_core.models import InboxMessage, InboxRead, OutboxMessage, Responder
from alarm_core.wire import inbox_payload, news_topic
from fleet.i18n import (
    format_date,
    format_datetime,
    format_locale,
    negotiate,
    region_languages,
    translator,
)
from fleet.models import Region
from fleet.settings import Settings

QUESTIONNAIRE = "questionnaire"
CERTIFICATE = "certificate"
NEWS = "news"
SYSTEM_KINDS = (QUESTIONNAIRE, CERTIFICATE)
PAGE_SIZE = 20
MAX_SUBJECT = 200
MAX_BODY = 5000
MAX_MESSAGE_ID = 2**31 - 1
"""The largest id the message table holds (a 32-bit integer column on PostgreSQL)."""
CERTIFICATE_NOTICE_LIFETIME = timedelta(days=60)
"""A certificate reminder stays in the inbox this long (sent 30 days before the certificate
runs out: until about a month after)."""


@dataclass(frozen=True)
class Reader:
    """What wording and delivering a message to one responder needs."""

    responder_id: str
    channel: str
    language: str
    region: str | None
    timezone: str
    formats: str
    """The locale dates are written in (the language as written in the region's country)."""


@dataclass(frozen=True)
class Post:
    """A system message for one responder: its parameters and until when it counts."""

    responder_id: str
    params: dict[str, Any]
    expires_at: datetime


@dataclass(frozen=True)
class Wording:
    subject: str
    body: str
    url: str | None = None


@dataclass(frozen=True)
class InboxEntry:
    """A message as a responder sees it: worded, with whether and when they read it."""

    id: int
    kind: str
    subject: str
    body: str
    url: str | None
    questionnaire_token: str | None
    sent_at: datetime
    expires_at: datetime | None
    read_at: datetime | None
    news: bool


@dataclass(frozen=True)
class InboxPage:
    entries: list[InboxEntry]
    page: int
    pages: int
    total: int
    unread: int


# -- wording --------------------------------------------------------------------------------------

def word(kind: str, params: dict[str, Any], reader: Reader, subject: str | None = None,
         body: str | None = None) -> Wording:
    """A message's subject and body in the reader's language (news: as its author wrote it)."""
    if kind not in SYSTEM_KINDS:
        return Wording(subject or "", body or "")
    _ = translator(reader.language).gettext
    if kind == QUESTIONNAIRE:
        return Wording(
            _("How did the call go?"),
            _("Thank you for responding to an alarm. Please tell us how it went and whether "
              "you would like aftercare: %(url)s (open until %(until)s).")
            % {"url": params["url"], "until": format_datetime(
                datetime.fromisoformat(params["expires_at"].replace("Z", "+00:00")),
                reader.formats, reader.timezone, "short")},
            params["url"])
    if params.get("expired"):
        return Wording(
            _("Your CPR/AED certificate has expired"),
            _("Your CPR/AED certificate was valid until %(date)s. You are not alerted until "
              "you renew it: enter the date of your new certificate in your profile.")
            % {"date": _day(params["valid_until"], reader)})
    return Wording(
        _("Your CPR/AED certificate runs out soon"),
        _("Your CPR/AED certificate is valid until %(date)s. Renew it in time to keep "
          "receiving alarms.") % {"date": _day(params["valid_until"], reader)})


def _day(value: str, reader: Reader) -> str:
    return format_date(date.fromisoformat(value), reader.formats, "long")


# -- readers --------------------------------------------------------------------------------------

def readers(session: Session, settings: Settings, responder_ids: list[str]) -> dict[str, Reader]:
    """Channel, language and time zone of these responders (their own language, else their
    region's first, else English)."""
    if not responder_ids:
        return {}
    rows = session.execute(
        sa_select(col(Responder.id), col(Responder.channel), col(Responder.language),
                  col(Responder.region), col(Region.languages), col(Region.timezone),
                  col(Region.country))
        .outerjoin(Region, col(Region.code) == col(Responder.region))
        .where(col(Responder.id).in_(responder_ids))).all()
    found = {}
    for responder_id, channel, language, region, languages, timezone, country in rows:
        chosen = negotiate([language, *region_languages(languages)])
        found[responder_id] = Reader(responder_id, channel, chosen, region,
                                     timezone or settings.timezone,
                                     format_locale(chosen, country or settings.country))
    return found


@dataclass(frozen=True)
class Shown:
    """How a page shows the inbox when it is not in the responder's own language (the
    console's reader): language, the locale of dates, the time zone."""

    language: str
    formats: str
    timezone: str


def _reader(session: Session, settings: Settings, responder_id: str,
            shown: Shown | None = None) -> Reader:
    found = readers(session, settings, [responder_id]).get(responder_id)
    if found is None:
        raise NotFound("unknown_responder", f"no responder {responder_id}")
    if shown is not None:
        found = dataclasses.replace(found, language=shown.language, formats=shown.formats,
                                    timezone=shown.timezone)
    return found


# -- posting --------------------------------------------------------------------------------------

def post_personal(session: Session, settings: Settings, kind: str, posts: list[Post],
                  now: datetime) -> list[int]:
    """Put a system message in each responder's inbox and queue its push to their app, in the
    caller's transaction (it commits with the decision that caused it); returns the ids."""
    if kind not in SYSTEM_KINDS:
        raise ValueError(f"not a system message kind: {kind}")
    if not posts:
        return []
    rows = [{"responder_id": p.responder_id, "region": None, "kind": kind,
             "params": json.dumps(p.params, separators=(",", ":")), "created_at": now,
             "expires_at": p.expires_at} for p in posts]
    ids = [row_id for (row_id,) in session.execute(
        insert(InboxMessage).returning(col(InboxMessage.id), sort_by_parameter_order=True),
        rows)]
    found = readers(session, settings, [p.responder_id for p in posts])
    pushes = []
    for message_id, post in zip(ids, posts, strict=True):
        reader = found.get(post.responder_id)
        if reader is None or reader.channel != "app":  # SMS: the console page only
            continue
        wording = word(kind, post.params, reader)
        pushes.append(_outbox_row(
            f"{settings.alarm.topic_root}/{post.responder_id}/inbox",
            inbox_payload(message_id, kind, wording.subject, wording.body, now, post.expires_at,
                          wording.url), now))
    if pushes:
        session.execute(insert(OutboxMessage), pushes)
    return ids


def post_news(session: Session, region: str, subject: str, body: str, author: str,
              now: datetime, expires_at: datetime | None = None,
              language: str | None = None) -> InboxMessage:
    """News for every responder of `region`: one row, published once on the region's retained
    news topic (through the outbox, after commit)."""
    found = session.get(Region, region)
    if found is None:
        raise NotFound("unknown_region", f"no region {region}")
    subject, body = subject.strip(), body.strip()
    if not 0 < len(subject) <= MAX_SUBJECT:
        raise Refused("invalid_field", f"a subject has 1 to {MAX_SUBJECT} characters")
    if not 0 < len(body) <= MAX_BODY:
        raise Refused("invalid_field", f"a message has 1 to {MAX_BODY} characters")
    if expires_at is not None and expires_at <= now:
        raise Refused("invalid_field", "the news would expire before it is sent")
    languages = region_languages(found.languages)
    if language is not None and language not in languages:
        raise Refused("invalid_field", f"region {region} speaks {', '.join(languages)}")
    message = InboxMessage(region=region, kind=NEWS, subject=subject, body=body,
                           language=language or (languages[0] if languages else None),
                           author=author[:200], created_at=now, expires_at=expires_at)
    session.add(message)
    session.flush()
    assert message.id is not None
    session.execute(insert(OutboxMessage), [_outbox_row(
        news_topic(region), inbox_payload(message.id, NEWS, subject, body, now, expires_at),
        now)])
    return message


def _outbox_row(topic: str, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"channel": "mqtt", "topic": topic, "incident_id": None,
            "payload": json.dumps(payload, separators=(",", ":")), "urgent": False,
            "created_at": now, "attempts": 0}


def recent_news(session: Session, regions: list[str] | None, limit: int = 20
                ) -> list[InboxMessage]:
    """The latest news of these regions (None: of every region), newest first."""
    query = sa_select(InboxMessage).where(col(InboxMessage.kind) == NEWS)
    if regions is not None:
        query = query.where(col(InboxMessage.region).in_(regions))
    return list(session.execute(query.order_by(col(InboxMessage.created_at).desc(),
                                               col(InboxMessage.id).desc())
                                .limit(limit)).scalars())


# -- reading --------------------------------------------------------------------------------------

def _addressed_to(responder_id: str, region: str | None) -> Any:
    """The messages of a responder: their own, and the news of their region."""
    own = col(InboxMessage.responder_id) == responder_id
    if region is None:
        return own
    return or_(own, and_(col(InboxMessage.responder_id).is_(None),
                         col(InboxMessage.region) == region))


def _current(now: datetime) -> Any:
    return or_(col(InboxMessage.expires_at).is_(None), col(InboxMessage.expires_at) > now)


def _with_read(responder_id: str) -> Any:
    return sa_select(InboxMessage, col(InboxRead.read_at)).outerjoin(
        InboxRead, and_(col(InboxRead.message_id) == col(InboxMessage.id),
                        col(InboxRead.responder_id) == responder_id))


def _entry(message: InboxMessage, read_at: datetime | None, reader: Reader) -> InboxEntry:
    params = json.loads(message.params or "{}")
    wording = word(message.kind, params, reader, message.subject, message.body)
    assert message.id is not None
    return InboxEntry(message.id, message.kind, wording.subject, wording.body, wording.url,
                      params.get("token") if message.kind == QUESTIONNAIRE else None,
                      message.created_at, message.expires_at, read_at,
                      message.responder_id is None)


def inbox_page(session: Session, settings: Settings, responder_id: str, now: datetime,
               page: int = 1, per_page: int = PAGE_SIZE, shown: Shown | None = None
               ) -> InboxPage:
    """One page of a responder's inbox, newest first, without expired messages (worded in
    their language, or as `shown`)."""
    reader = _reader(session, settings, responder_id, shown)
    visible = and_(_addressed_to(responder_id, reader.region), _current(now))
    total, unread = session.execute(
        sa_select(func.count(), func.count().filter(col(InboxRead.message_id).is_(None)))
        .select_from(InboxMessage)
        .outerjoin(InboxRead, and_(col(InboxRead.message_id) == col(InboxMessage.id),
                                   col(InboxRead.responder_id) == responder_id))
        .where(visible)).one()
    pages = max(1, math.ceil(total / per_page))
    rows = session.execute(_with_read(responder_id).where(visible)
                           .order_by(col(InboxMessage.created_at).desc(),
                                     col(InboxMessage.id).desc())
                           .limit(per_page).offset((page - 1) * per_page)).all()
    return InboxPage([_entry(message, read_at, reader) for message, read_at in rows],
                     page, pages, int(total), int(unread))


def unread_count(session: Session, responder_id: str, now: datetime) -> int:
    """How many current messages of the responder's inbox they have not read."""
    region = session.execute(sa_select(col(Responder.region))
                             .where(col(Responder.id) == responder_id)).scalar_one_or_none()
    return int(session.execute(
        sa_select(func.count()).select_from(InboxMessage)
        .outerjoin(InboxRead, and_(col(InboxRead.message_id) == col(InboxMessage.id),
                                   col(InboxRead.responder_id) == responder_id))
        .where(_addressed_to(responder_id, region), _current(now),
               col(InboxRead.message_id).is_(None))).scalar_one())


def _message_of(session: Session, reader: Reader, message_id: int) -> InboxMessage:
    """A message of this responder's inbox; another's answers as if it did not exist."""
    message = session.get(InboxMessage, message_id) if 0 < message_id <= MAX_MESSAGE_ID \
        else None
    if message is None or not (
            message.responder_id == reader.responder_id
            or (message.responder_id is None and reader.region is not None
                and message.region == reader.region)):
        raise NotFound("unknown_message",
                       f"no message {message_id} in the inbox of {reader.responder_id}")
    return message


def open_message(session: Session, settings: Settings, responder_id: str, message_id: int,
                 shown: Shown | None = None) -> InboxEntry:
    """One message of the responder's inbox (also once expired), worded for them."""
    reader = _reader(session, settings, responder_id, shown)
    message = _message_of(session, reader, message_id)
    read_at = session.execute(sa_select(col(InboxRead.read_at)).where(
        col(InboxRead.message_id) == message_id,
        col(InboxRead.responder_id) == responder_id)).scalar_one_or_none()
    return _entry(message, read_at, reader)


def mark_read(session: Session, settings: Settings, responder_id: str, message_id: int,
              now: datetime, at: datetime | None = None) -> datetime:
    """Record that the responder read a message of their inbox (idempotent: the first time
    counts); returns when it was read, never before it was sent nor after `now`. Another
    responder's message is refused (404)."""
    reader = _reader(session, settings, responder_id)
    message = _message_of(session, reader, message_id)
    # An app's clock may be wrong: a read time before the message would let retention delete
    # a message that is still current.
    read_at = max(min(at, now), message.created_at) if at is not None else now
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(InboxRead).on_conflict_do_nothing(),
                    [{"message_id": message_id, "responder_id": responder_id,
                      "read_at": read_at}])
    first: datetime = session.execute(sa_select(col(InboxRead.read_at)).where(
        col(InboxRead.message_id) == message_id,
        col(InboxRead.responder_id) == responder_id)).scalar_one()
    return first


# -- retention ------------------------------------------------------------------------------------

def purge_batch(session: Session, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` inbox messages past retention, with their read marks: personal
    messages read or expired before `cutoff`, and news expired before it."""
    read_before = sa_select(col(InboxRead.message_id)).where(
        col(InboxRead.message_id) == col(InboxMessage.id), col(InboxRead.read_at) < cutoff)
    expired = and_(col(InboxMessage.expires_at).is_not(None),
                   col(InboxMessage.expires_at) < cutoff)
    personal = and_(col(InboxMessage.responder_id).is_not(None),
                    or_(expired, read_before.exists()))
    news = and_(col(InboxMessage.responder_id).is_(None), expired)
    ids = list(session.execute(sa_select(col(InboxMessage.id)).where(or_(personal, news))
                               .order_by(col(InboxMessage.id)).limit(batch)).scalars())
    if not ids:
        return 0
    session.execute(delete(InboxRead).where(col(InboxRead.message_id).in_(ids)))
    result = session.execute(delete(InboxMessage).where(col(InboxMessage.id).in_(ids)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
