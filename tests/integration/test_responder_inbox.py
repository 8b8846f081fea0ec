"""The responder inbox on both databases: who sees which message, read state, expiry, wording.

Responders of the standard street live in region NL-UT (Dutch first, then English); r-4 reads
English, r-6 German. DE-NW is another region, around Cologne. System messages come from the
alarm core's own decisions (a closed call sends questionnaires, the hourly job certificate
reminders); news is posted by an administrator.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from alarm_core import inbox
from alarm_core.errors import NotFound, Refused
from alarm_core.models import InboxMessage, InboxRead, OutboxMessage, Responder
from alarm_core.service import AlarmCore
from fleet.db import session_scope
from fleet.i18n import format_date, format_datetime
from fleet.models import Region
from fleet.retention import run_retention
from fleet.settings import Settings

from .alarm_support import NOW, STREET, alarm_settings, build_street, call, outbox
from .ingest_support import count_rows

CALLER = "112-utrecht"
UTRECHT = "NL-UT"
COLOGNE = "DE-NW"


def add_region(engine: Engine, code: str, languages: str, box: tuple[float, float, float, float],
               country: str = "NL") -> None:
    """A region whose area is the box (west, south, east, north)."""
    west, south, east, north = box
    area = {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                [west, north], [west, south]]]}
    with session_scope(engine) as session:
        session.add(Region(code=code, name=f"Region {code}", timezone="Europe/Amsterdam",
                           country=country, languages=languages,
                           area_geojson=json.dumps(area)))


def set_responder(engine: Engine, responder_id: str, **values: Any) -> None:
    with session_scope(engine) as session:
        session.execute(update(Responder).where(col(Responder.id) == responder_id)
                        .values(**values))


@pytest.fixture
def core(engine: Engine, settings: Settings) -> AlarmCore:
    """The street in region NL-UT; r-4 reads English, r-6 German."""
    build_street(engine, NOW)
    add_region(engine, UTRECHT, "nl,en", (4.9, 51.95, 5.3, 52.2))
    add_region(engine, COLOGNE, "de", (6.8, 50.8, 7.1, 51.1), country="DE")
    for responder_id in STREET:
        set_responder(engine, responder_id, region=UTRECHT)
    set_responder(engine, "r-4", language="en")
    set_responder(engine, "r-6", language="de")
    found = AlarmCore(engine, alarm_settings(settings))
    found.load(NOW)
    return found


def news(core: AlarmCore, region: str = UTRECHT, subject: str = "Course on 12 December",
         body: str = "A refresher course in the town hall, 19:00.", **fields: Any) -> int:
    with session_scope(core.engine) as session:
        message = inbox.post_news(session, region, subject, body, "Regio Utrecht", NOW,
                                  **fields)
        assert message.id is not None
        return message.id


def page(core: AlarmCore, responder_id: str, at: Any = NOW, **paging: Any) -> inbox.InboxPage:
    with Session(core.engine) as session:
        return inbox.inbox_page(session, core.settings, responder_id, at, **paging)


def read(core: AlarmCore, responder_id: str, message_id: int, at: Any = NOW) -> Any:
    with session_scope(core.engine) as session:
        return inbox.mark_read(session, core.settings, responder_id, message_id, at)


def unread(core: AlarmCore, responder_id: str, at: Any = NOW) -> int:
    with Session(core.engine) as session:
        return inbox.unread_count(session, responder_id, at)


def closed_call(core: AlarmCore) -> str:
    """A call answered by nobody and closed ten minutes later: questionnaires go out."""
    incident = core.intake(CALLER, call("ref-inbox"), NOW).incident
    core.close(incident.id, "closed_by_dispatch", NOW + timedelta(minutes=10))
    return incident.id


# -- news -----------------------------------------------------------------------------------------

def test_region_news_is_one_row_seen_by_every_responder_of_the_region_and_nobody_else(
        core: AlarmCore) -> None:
    set_responder(core.engine, "r-6", region=COLOGNE)
    message_id = news(core)

    assert count_rows(core.engine, InboxMessage) == 1
    for responder_id in ("r-1", "r-4", "r-5"):
        [entry] = page(core, responder_id).entries
        assert (entry.id, entry.news, entry.subject) == (message_id, True,
                                                         "Course on 12 December")
    assert page(core, "r-6").entries == []
    set_responder(core.engine, "r-5", region=None)
    assert page(core, "r-5").entries == []


def test_news_is_published_once_on_the_regions_news_topic_not_per_responder(
        core: AlarmCore) -> None:
    message_id = news(core, expires_at=NOW + timedelta(days=30))

    with Session(core.engine) as session:
        [row] = session.exec(select(OutboxMessage)).all()
    assert (row.topic, row.channel, row.urgent, row.incident_id) == (
        "regions/NL-UT/news", "mqtt", False, None)
    assert json.loads(row.payload) == {
        "v": 1, "message_id": message_id, "kind": "news", "subject": "Course on 12 December",
        "body": "A refresher course in the town hall, 19:00.", "sent_at": "2026-11-25T14:00:00Z",
        "expires_at": "2026-12-25T14:00:00Z"}


@pytest.mark.parametrize(("region", "fields", "refusal"), [
    ("NL-XX", {}, NotFound),
    (UTRECHT, {"subject": " "}, Refused),
    (UTRECHT, {"body": "x" * (inbox.MAX_BODY + 1)}, Refused),
    (UTRECHT, {"expires_at": NOW}, Refused),
    (UTRECHT, {"language": "de"}, Refused),
], ids=["unknown_region", "empty_subject", "body_too_long", "already_expired",
        "language_not_of_the_region"])
def test_news_that_cannot_be_posted_is_refused_and_nothing_is_stored(
        core: AlarmCore, region: str, fields: dict[str, Any], refusal: type[Exception]) -> None:
    with pytest.raises(refusal):
        news(core, region, **fields)

    assert count_rows(core.engine, InboxMessage) == count_rows(core.engine, OutboxMessage) == 0


# -- read state -----------------------------------------------------------------------------------

def test_read_state_is_kept_per_responder(core: AlarmCore) -> None:
    message_id = news(core)

    first = read(core, "r-1", message_id, NOW + timedelta(minutes=5))

    assert first == NOW + timedelta(minutes=5)
    assert page(core, "r-1").entries[0].read_at == first
    assert page(core, "r-2").entries[0].read_at is None
    assert (unread(core, "r-1"), unread(core, "r-2")) == (0, 1)
    assert (page(core, "r-1").unread, page(core, "r-2").unread) == (0, 1)


def test_marking_a_message_read_again_keeps_the_first_time(core: AlarmCore) -> None:
    message_id = news(core)

    first = read(core, "r-1", message_id, NOW + timedelta(minutes=1))
    again = read(core, "r-1", message_id, NOW + timedelta(hours=2))

    assert first == again == NOW + timedelta(minutes=1)
    assert count_rows(core.engine, InboxRead) == 1


@pytest.mark.parametrize("reader", ["r-6", "r-2"], ids=["other_region", "other_responder"])
def test_a_responder_cannot_mark_a_message_that_is_not_theirs(
        core: AlarmCore, reader: str) -> None:
    closed_call(core)
    set_responder(core.engine, "r-6", region=COLOGNE)
    with Session(core.engine) as session:
        own = session.exec(select(InboxMessage.id).where(
            InboxMessage.responder_id == "r-1")).one()
    utrecht_news = news(core)
    foreign = utrecht_news if reader == "r-6" else own

    with pytest.raises(NotFound) as refused:
        read(core, reader, foreign)

    assert refused.value.code == "unknown_message" and refused.value.status == 404
    assert count_rows(core.engine, InboxRead) == 0


def test_an_unknown_message_or_responder_is_refused(core: AlarmCore) -> None:
    message_id = news(core)

    with pytest.raises(NotFound, match="no message"):
        read(core, "r-1", message_id + 100)
    with pytest.raises(NotFound, match="no responder"):
        read(core, "nobody", message_id)


def test_a_message_id_beyond_any_stored_id_is_refused_as_unknown_on_either_database(
        core: AlarmCore) -> None:
    news(core)

    for message_id in (2**31, 2**63 - 1, 10**20, 0, -1):
        with pytest.raises(NotFound, match="no message"):
            read(core, "r-1", message_id)
    assert count_rows(core.engine, InboxRead) == 0


def test_a_read_time_before_the_message_was_sent_counts_as_the_moment_it_was_sent(
        core: AlarmCore, settings: Settings) -> None:
    closed_call(core)  # the questionnaires stay open for 72 hours
    with Session(core.engine) as session:
        own = session.exec(select(InboxMessage).where(InboxMessage.responder_id == "r-1")).one()
    assert own.id is not None
    sent_at = own.created_at
    with session_scope(core.engine) as session:
        first = inbox.mark_read(session, core.settings, "r-1", own.id, NOW + timedelta(hours=1),
                                at=NOW - timedelta(days=20_000))

    counts = run_retention(core.engine, settings, NOW + timedelta(hours=2))

    assert first == sent_at
    assert counts["inbox_messages"] == 0  # read just now and still open: kept
    assert [e.id for e in page(core, "r-1", NOW + timedelta(hours=2)).entries] == [own.id]


# -- listing --------------------------------------------------------------------------------------

def test_expired_messages_leave_the_inbox_and_the_unread_count(core: AlarmCore) -> None:
    news(core, subject="For a week", expires_at=NOW + timedelta(days=7))
    news(core, subject="For good")

    assert [e.subject for e in page(core, "r-1", NOW + timedelta(days=6)).entries] == [
        "For good", "For a week"]
    later = page(core, "r-1", NOW + timedelta(days=7))
    assert [e.subject for e in later.entries] == ["For good"]
    assert (later.total, later.unread, unread(core, "r-1", NOW + timedelta(days=7))) == (1, 1, 1)


def test_the_inbox_is_paged_newest_first(core: AlarmCore) -> None:
    for number in range(5):
        with session_scope(core.engine) as session:
            inbox.post_news(session, UTRECHT, f"News {number}", "body", "Regio Utrecht",
                            NOW + timedelta(minutes=number))

    first = page(core, "r-1", NOW + timedelta(hours=1), per_page=2)
    last = page(core, "r-1", NOW + timedelta(hours=1), page=3, per_page=2)

    assert [e.subject for e in first.entries] == ["News 4", "News 3"]
    assert [e.subject for e in last.entries] == ["News 0"]
    assert (first.total, first.pages, first.unread) == (5, 3, 5)


# -- system messages from the alarm core ----------------------------------------------------------

def test_a_closed_call_puts_a_questionnaire_in_each_alerted_responders_inbox_in_their_language(
        core: AlarmCore) -> None:
    closed_call(core)
    with Session(core.engine) as session:
        rows = session.exec(select(InboxMessage)).all()
        readers = inbox.readers(session, core.settings, ["r-1", "r-4", "r-6"])

    assert sorted(row.responder_id or "" for row in rows) == sorted(STREET)
    assert {r.responder_id: r.language for r in readers.values()} == {
        "r-1": "nl", "r-4": "en", "r-6": "de"}
    [entry] = page(core, "r-1").entries
    params = json.loads(next(r.params for r in rows if r.responder_id == "r-1"))
    assert set(params) == {"token", "url", "expires_at"}  # no incident, no address
    assert (entry.kind, entry.questionnaire_token, entry.url) == (
        "questionnaire", params["token"], params["url"])
    assert entry.expires_at == NOW + timedelta(minutes=10, hours=72)
    assert params["url"] in entry.body and "Domplein" not in entry.body
    # The push to the app says what the inbox page says, in the responder's language.
    for responder_id in ("r-1", "r-4", "r-6"):
        [push] = outbox(core.engine, "inbox", responder_id)
        [shown] = page(core, responder_id).entries
        assert (push.payload["subject"], push.payload["body"]) == (shown.subject, shown.body)
        assert push.payload["message_id"] == shown.id and push.payload["kind"] == "questionnaire"
        assert push.payload["url"] == shown.url and "incident_id" not in push.payload
    # Dates are written the reader's way (14:10 UTC plus 72 h: 28 November, 15:10 in Utrecht).
    until = NOW + timedelta(minutes=10, hours=72)
    dutch, german = (format_datetime(until, locale, "Europe/Amsterdam", "short")
                     for locale in ("nl_NL", "de"))
    assert dutch != german and "15:10" in dutch
    assert dutch in page(core, "r-1").entries[0].body
    assert german in page(core, "r-6").entries[0].body


def test_a_questionnaire_of_an_sms_responder_is_in_the_inbox_but_not_pushed(
        core: AlarmCore, engine: Engine, settings: Settings) -> None:
    set_responder(engine, "r-1", channel="sms")
    sms_core = AlarmCore(engine, alarm_settings(settings, sms_gateway_url="http://sms.invalid"))
    sms_core.load(NOW)

    closed_call(sms_core)

    assert page(sms_core, "r-1").entries[0].kind == "questionnaire"
    assert outbox(engine, "inbox", "r-1") == []
    assert len(outbox(engine, "inbox")) == 5


def test_a_certificate_reminder_lands_in_the_inbox_in_the_responders_language(
        core: AlarmCore, engine: Engine) -> None:
    # r-6's certificate is valid for 20 more days; the others' are recent.
    set_responder(engine, "r-6", certificate_date=NOW.date() + timedelta(days=21)
                  - relativedelta(months=12))

    assert core.remind_certificates(NOW) == 1

    [entry] = page(core, "r-6").entries
    with Session(engine) as session:
        [row] = session.exec(select(InboxMessage)).all()
    valid_until = json.loads(row.params)["valid_until"]
    assert (row.responder_id, row.kind, json.loads(row.params)["expired"]) == (
        "r-6", "certificate", False)
    assert entry.expires_at == NOW + inbox.CERTIFICATE_NOTICE_LIFETIME
    assert valid_until == (NOW.date() + timedelta(days=20)).isoformat()
    assert format_date(date.fromisoformat(valid_until), "de_DE", "long") in entry.body
    [push] = outbox(engine, "inbox", "r-6")
    assert (push.payload["subject"], push.payload["body"]) == (entry.subject, entry.body)


# -- retention ------------------------------------------------------------------------------------

def test_retention_deletes_personal_messages_read_or_expired_long_ago_and_keeps_the_rest(
        core: AlarmCore, settings: Settings) -> None:
    closed_call(core)  # six questionnaires, expiring after 72 hours
    with Session(core.engine) as session:
        ids = dict(session.exec(select(InboxMessage.responder_id, InboxMessage.id)).all())
    read(core, "r-1", ids["r-1"], NOW + timedelta(hours=1))
    lasting = news(core, subject="No end")
    ending = news(core, subject="Ends", expires_at=NOW + timedelta(days=1))
    read(core, "r-2", ending, NOW + timedelta(hours=2))
    days = settings.retention.inbox_days

    early = run_retention(core.engine, settings, NOW + timedelta(days=days - 1))
    counts = run_retention(core.engine, settings, NOW + timedelta(days=days + 4))

    assert early["inbox_messages"] == 0
    assert counts["inbox_messages"] == 7  # six questionnaires and the expired news
    with Session(core.engine) as session:
        assert session.exec(select(InboxMessage.id)).all() == [lasting]
    assert count_rows(core.engine, InboxRead) == 0
