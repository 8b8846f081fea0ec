"""Manager notifications: the outbox on a real database, sent to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from fleet.db import session_scope
from fleet.errors import ConfigError
from fleet.mailer import MailError, SmtpMailer, make_mailer
from fleet.models import Aed, Manager, Notification
from fleet.notifications import (
    NOTICE_KINDS,
    DeliveryReport,
    deliver_pending,
    enqueue_notice,
)
from fleet.settings import NotifySettings, Settings

from .smtp_support import SmtpServer

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # 13:00 in Amsterdam
SENDER = "aedfleet@example.org"


@pytest.fixture
def smtp_down() -> Iterator[SmtpServer]:
    """An SMTP server that is not running yet: its port refuses connections until `start()`."""
    server = SmtpServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp(smtp_down: SmtpServer) -> SmtpServer:
    """A running SMTP server."""
    smtp_down.start()
    return smtp_down


@pytest.fixture
def notify_settings(database_url: str, smtp_down: SmtpServer) -> Settings:
    return Settings(database_url=database_url, timezone="Europe/Amsterdam",
                    notify=NotifySettings(smtp_url=smtp_down.url, sender=SENDER,
                                          digest_interval_minutes=15, repeat_after_hours=24,
                                          retry_max_minutes=60))


@pytest.fixture
def mailer(notify_settings: Settings) -> SmtpMailer:
    mailer = make_mailer(notify_settings)
    assert isinstance(mailer, SmtpMailer)
    return mailer


def add_manager(engine: Engine, name: str, email: str | None) -> int:
    with session_scope(engine) as session:
        manager = Manager(name=name, email=email)
        session.add(manager)
        session.flush()
        assert manager.id is not None
        return manager.id


def add_aed(engine: Engine, aed_id: str, manager_id: int | None, **fields: Any) -> None:
    values: dict[str, Any] = {"name": f"AED {aed_id}", "lat": 52.0907, "lon": 5.1214,
                              "address": "Domplein 9, Utrecht", "manager_id": manager_id}
    values.update(fields)
    with session_scope(engine) as session:
        session.add(Aed(id=aed_id, **values))


def enqueue(engine: Engine, settings: Settings, aed_id: str, kind: str, at: datetime,
            detail: str = "the battery charge fell below 20%") -> Notification | None:
    """Queue a notice in its own transaction, as the ingest does."""
    with session_scope(engine) as session:
        aed = session.get(Aed, aed_id)
        assert aed is not None
        return enqueue_notice(session, aed=aed, kind=kind, detail=detail, now=at,
                              settings=settings)


def outbox(engine: Engine) -> list[Notification]:
    with Session(engine) as session:
        return list(session.exec(select(Notification).order_by(Notification.id)).all())


@pytest.fixture
def jansen(engine: Engine) -> int:
    """Manager J. Jansen with two AEDs, NL-A1 and NL-A2."""
    manager_id = add_manager(engine, "J. Jansen", "jansen@example.org")
    add_aed(engine, "NL-A1", manager_id, name="Stadhuis", address="Stadsplateau 1, Utrecht",
            location_hint="in the hall, left of the main entrance")
    add_aed(engine, "NL-A2", manager_id, name="Sporthal Oost")
    return manager_id


def test_a_flapping_cabinet_sends_its_manager_one_notice_per_day(
        engine: Engine, notify_settings: Settings, mailer: SmtpMailer, smtp: SmtpServer,
        jansen: int) -> None:
    queued, rounds = [], []
    for hours in (0, 1, 2, 23):  # lost, back, lost again ... each time the ingest queues a notice
        at = NOW + timedelta(hours=hours)
        queued.append(enqueue(engine, notify_settings, "NL-A1", "readiness_lost", at))
        rounds.append(deliver_pending(engine, mailer, at, notify_settings))

    assert [notice is not None for notice in queued] == [True, False, False, False]
    assert [r.sent_mails for r in rounds] == [1, 0, 0, 0]
    assert len(smtp.received) == 1

    day_later = NOW + timedelta(hours=24, minutes=1)
    assert enqueue(engine, notify_settings, "NL-A1", "readiness_lost", day_later) is not None
    assert deliver_pending(engine, mailer, day_later, notify_settings).sent_mails == 1
    assert len(smtp.received) == 2


def test_a_different_kind_or_a_different_aed_is_not_held_back_as_a_repeat(
        engine: Engine, notify_settings: Settings, jansen: int) -> None:
    assert enqueue(engine, notify_settings, "NL-A1", "readiness_lost", NOW) is not None
    assert enqueue(engine, notify_settings, "NL-A1", "cabinet_offline", NOW) is not None
    assert enqueue(engine, notify_settings, "NL-A2", "readiness_lost", NOW) is not None

    assert [n.dedup_key for n in outbox(engine)] == [
        "NL-A1:readiness_lost", "NL-A1:cabinet_offline", "NL-A2:readiness_lost"]


def test_a_notice_queued_earlier_in_the_same_unflushed_transaction_is_not_repeated(
        engine: Engine, notify_settings: Settings, jansen: int) -> None:
    with session_scope(engine) as session, session.no_autoflush:
        aed = session.get(Aed, "NL-A1")
        assert aed is not None
        first = enqueue_notice(session, aed=aed, kind="door_opened", detail="door opened",
                               now=NOW, settings=notify_settings)
        second = enqueue_notice(session, aed=aed, kind="door_opened", detail="door opened",
                                now=NOW + timedelta(seconds=5), settings=notify_settings)

    assert first is not None
    assert second is None
    assert len(outbox(engine)) == 1


def test_several_notices_for_one_manager_go_out_as_one_digest_mail(
        engine: Engine, notify_settings: Settings, mailer: SmtpMailer, smtp: SmtpServer,
        jansen: int) -> None:
    enqueue(engine, notify_settings, "NL-A1", "pads_expiring", NOW,
            detail="the pads expire on 2026-12-15")
    enqueue(engine, notify_settings, "NL-A1", "cabinet_offline", NOW,
            detail="no report since 11:20")
    enqueue(engine, notify_settings, "NL-A2", "battery_expiring", NOW,
            detail="the battery expires on 2026-12-20")

    report = deliver_pending(engine, mailer, NOW, notify_settings)

    assert report == DeliveryReport(sent_mails=1, notices_sent=3)
    [mail] = smtp.received
    assert mail.rcpt_tos == ["jansen@example.org"]
    assert "3 notices" in mail.message["Subject"]
    for words in ("the pads expire on 2026-12-15", "no report since 11:20",
                  "the battery expires on 2026-12-20", "NL-A1", "NL-A2"):
        assert words in mail.text
    assert {(n.status, n.sent_at) for n in outbox(engine)} == {("sent", NOW)}


def test_a_manager_gets_no_second_mail_within_the_digest_interval(
        engine: Engine, notify_settings: Settings, mailer: SmtpMailer, smtp: SmtpServer,
        jansen: int) -> None:
    enqueue(engine, notify_settings, "NL-A1", "readiness_lost", NOW)
    assert deliver_pending(engine, mailer, NOW, notify_settings).sent_mails == 1

    enqueue(engine, notify_settings, "NL-A1", "door_opened", NOW + timedelta(minutes=1))
    enqueue(engine, notify_settings, "NL-A2", "cabinet_offline", NOW + timedelta(minutes=2))
    inside = deliver_pending(engine, mailer, NOW + timedelta(minutes=14), notify_settings)
    after = deliver_pending(engine, mailer, NOW + timedelta(minutes=15), notify_settings)

    assert inside == DeliveryReport(deferred=2)
    assert after == DeliveryReport(sent_mails=1, notices_sent=2)
    assert len(smtp.received) == 2
    assert "2 notices" in smtp.received[1].message["Subject"]


def test_an_unreachable_smtp_server_keeps_notices_pending_and_retries_with_backoff(
        engine: Engine, notify_settings: Settings, mailer: SmtpMailer, smtp_down: SmtpServer,
        jansen: int) -> None:
    settings = notify_settings.model_copy(update={
        "notify": notify_settings.notify.model_copy(update={"retry_max_minutes": 3})})
    enqueue(engine, settings, "NL-A1", "readiness_lost", NOW)

    attempts_at = [NOW, NOW + timedelta(minutes=1), NOW + timedelta(minutes=3)]
    history = []
    for at in attempts_at:
        assert deliver_pending(engine, mailer, at, settings) == DeliveryReport(failed=1)
        [notice] = outbox(engine)
        history.append((notice.status, notice.attempts, notice.next_attempt_at, notice.sent_at))
        not_yet = deliver_pending(engine, mailer, notice.next_attempt_at - timedelta(seconds=1),
                                  settings)
        assert not_yet == DeliveryReport()

    assert history == [
        ("pending", 1, NOW + timedelta(minutes=1), None),
        ("pending", 2, NOW + timedelta(minutes=3), None),
        ("pending", 3, NOW + timedelta(minutes=6), None),  # 4 minutes, capped at 3
    ]
    assert outbox(engine)[0].last_error and "127.0.0.1" in outbox(engine)[0].last_error

    smtp_down.start()
    back = deliver_pending(engine, mailer, NOW + timedelta(minutes=6), settings)

    assert back == DeliveryReport(sent_mails=1, notices_sent=1)
    [notice] = outbox(engine)
    assert (notice.status, notice.attempts, notice.sent_at, notice.last_error) == (
        "sent", 3, NOW + timedelta(minutes=6), None)
    assert len(smtp_down.received) == 1


def test_notices_claimed_by_a_worker_that_died_mid_send_are_sent_after_the_lease(
        engine: Engine, notify_settings: Settings, mailer: SmtpMailer, smtp: SmtpServer,
        jansen: int) -> None:
    class DyingMailer:
        def send(self, to: str, subject: str, body: str) -> None:
            raise SystemExit("worker killed")

    enqueue(engine, notify_settings, "NL-A1", "readiness_lost", NOW)
    with pytest.raises(SystemExit):
        deliver_pending(engine, DyingMailer(), NOW, notify_settings)

    soon = deliver_pending(engine, mailer, NOW + timedelta(minutes=5), notify_settings)
    later = deliver_pending(engine, mailer, NOW + timedelta(minutes=15), notify_settings)

    assert soon == DeliveryReport()
    assert later == DeliveryReport(sent_mails=1, notices_sent=1)
    assert len(smtp.received) == 1


def test_notices_without_a_manager_or_an_email_address_are_kept_as_no_recipient(
        engine: Engine, notify_settings: Settings, mailer: SmtpMailer, smtp: SmtpServer) -> None:
    add_aed(engine, "NL-ORPHAN", None)
    add_aed(engine, "NL-NOMAIL", add_manager(engine, "Buurtvereniging", None))

    orphan = enqueue(engine, notify_settings, "NL-ORPHAN", "readiness_lost", NOW)
    no_mail = enqueue(engine, notify_settings, "NL-NOMAIL", "readiness_lost", NOW)
    report = deliver_pending(engine, mailer, NOW, notify_settings)

    assert orphan is not None and no_mail is not None
    assert [(n.aed_id, n.status, n.last_error) for n in outbox(engine)] == [
        ("NL-ORPHAN", "no_recipient", "the AED has no manager"),
        ("NL-NOMAIL", "no_recipient", "manager Buurtvereniging has no e-mail address"),
    ]
    assert report == DeliveryReport()
    assert smtp.received == []
    # kept, and still counted for de-duplication
    assert enqueue(engine, notify_settings, "NL-ORPHAN", "readiness_lost", NOW) is None


def test_a_manager_whose_email_was_removed_after_queueing_gets_no_recipient_at_delivery(
        engine: Engine, notify_settings: Settings, mailer: SmtpMailer, smtp: SmtpServer,
        jansen: int) -> None:
    enqueue(engine, notify_settings, "NL-A1", "readiness_lost", NOW)
    with session_scope(engine) as session:
        manager = session.get(Manager, jansen)
        assert manager is not None
        manager.email = None

    report = deliver_pending(engine, mailer, NOW, notify_settings)

    assert report == DeliveryReport(no_recipient=1)
    assert [n.status for n in outbox(engine)] == ["no_recipient"]
    assert smtp.received == []


def test_each_manager_gets_only_the_notices_about_their_own_aeds(
        engine: Engine, notify_settings: Settings, mailer: SmtpMailer, smtp: SmtpServer,
        jansen: int) -> None:
    de_vries = add_manager(engine, "Gemeente Zeist", "aed@zeist.example")
    add_aed(engine, "NL-Z1", de_vries, name="Dorpshuis")
    enqueue(engine, notify_settings, "NL-A1", "readiness_lost", NOW)
    enqueue(engine, notify_settings, "NL-Z1", "door_opened", NOW)
    enqueue(engine, notify_settings, "NL-A2", "pads_expiring", NOW)

    report = deliver_pending(engine, mailer, NOW, notify_settings)

    assert report == DeliveryReport(sent_mails=2, notices_sent=3)
    [to_jansen] = smtp.to("jansen@example.org")
    [to_zeist] = smtp.to("aed@zeist.example")
    assert "NL-A1" in to_jansen.text and "NL-A2" in to_jansen.text
    assert "NL-Z1" not in to_jansen.text and "Dorpshuis" not in to_jansen.text
    assert "NL-Z1" in to_zeist.text
    assert "NL-A1" not in to_zeist.text and "NL-A2" not in to_zeist.text


def test_the_mail_names_the_aed_where_it_hangs_what_happened_and_what_to_do(
        engine: Engine, notify_settings: Settings, mailer: SmtpMailer, smtp: SmtpServer,
        jansen: int) -> None:
    enqueue(engine, notify_settings, "NL-A1", "door_opened", NOW,
            detail="the cabinet door was opened while no incident had sent anyone to it")

    deliver_pending(engine, mailer, NOW, notify_settings)

    [mail] = smtp.received
    assert mail.mail_from == SENDER
    assert mail.message["To"] == "jansen@example.org"
    assert mail.message["Subject"] == f"AED Stadhuis (NL-A1): {NOTICE_KINDS['door_opened']}"
    for words in ("Hello J. Jansen", "Stadhuis", "NL-A1", "Stadsplateau 1, Utrecht",
                  "in the hall, left of the main entrance",
                  "the cabinet door was opened while no incident had sent anyone to it",
                  "2026-11-27 13:00 CET", "possible theft or misuse",
                  "Check that the AED is in its cabinet"):
        assert words in mail.text


def test_workers_delivering_at_once_send_each_manager_exactly_one_mail(
        engine: Engine, notify_settings: Settings, mailer: SmtpMailer, smtp: SmtpServer) -> None:
    managers = [f"manager{i}@example.org" for i in range(8)]
    for i, email in enumerate(managers):
        add_aed(engine, f"NL-W{i}", add_manager(engine, f"Manager {i}", email))
        enqueue(engine, notify_settings, f"NL-W{i}", "readiness_lost", NOW)
        enqueue(engine, notify_settings, f"NL-W{i}", "pads_expiring", NOW)
    reports: list[DeliveryReport] = []
    start = threading.Barrier(4)

    def worker() -> None:
        start.wait()
        reports.append(deliver_pending(engine, mailer, NOW, notify_settings))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(reports) == 4
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == sorted(managers)
    assert sum(r.sent_mails for r in reports) == len(managers)
    assert sum(r.notices_sent for r in reports) == 2 * len(managers)
    assert {n.status for n in outbox(engine)} == {"sent"}


def test_a_password_is_never_sent_to_a_server_that_offers_no_tls(smtp: SmtpServer) -> None:
    mailer = SmtpMailer.from_url(f"smtp://aedfleet:s3cret@127.0.0.1:{smtp.port}", SENDER)

    with pytest.raises(MailError, match="STARTTLS") as caught:
        mailer.send("jansen@example.org", "test", "test")

    assert "s3cret" not in str(caught.value) and "s3cret" not in repr(mailer)
    assert smtp.received == []


def test_smtp_urls_are_read_with_credentials_and_default_ports() -> None:
    plain = SmtpMailer.from_url("smtp://mail.example.org", SENDER)
    secure = SmtpMailer.from_url("smtps://aed%40fleet:p%3Ass@mail.example.org", SENDER)

    assert (plain.host, plain.port, plain.implicit_tls, plain.username) == (
        "mail.example.org", 25, False, None)
    assert (secure.port, secure.implicit_tls, secure.username, secure.password) == (
        465, True, "aed@fleet", "p:ss")
    for bad in ("http://mail.example.org", "smtp://", "smtp://mail.example.org:99999"):
        with pytest.raises(ConfigError):
            SmtpMailer.from_url(bad, SENDER)
    assert make_mailer(Settings(notify=NotifySettings(smtp_url=""))) is None
