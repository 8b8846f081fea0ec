"""Manager notifications: the outbox the ingest writes to, and its delivery as e-mail digests.

The ingest decides *that* a manager must hear of something (readiness lost, cabinet offline, pads
or battery expiring, door opened without an incident) and calls `enqueue_notice` inside the
transaction that noticed it. `deliver_pending`, run periodically, e-mails what the outbox holds:
one e-mail per manager per digest interval at most, several notices in one digest.

A manager's notices are written in the language of a console account linked to the manager, else
their region's first language, else English (`fleet.locales.manager_language`), at the time they
are queued; times in that region's time zone, else `settings.timezone`.

Delivery to one manager is claimed in a short transaction (the manager's row locked, on SQLite the
write lock taken), the e-mail is sent with no transaction open, and the outcome recorded in a
second one. The claim stamps the notices' `sent_at` and pushes `next_attempt_at` out by a lease,
so that a second worker neither sends them again nor sends that manager another e-mail within the
digest interval; a failed send clears `sent_at` again. A worker dying mid-send leaves the notices
to be sent again after the lease: a manager may get an e-mail twice, never none.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, func, or_, update
from sqlmodel import Session, col, select

from fleet.db import session_scope
from fleet.i18n import DEFAULT_LANGUAGE, N_, translator
from fleet.locales import manager_language
from fleet.mailer import Mailer, MailError
from fleet.models import Aed, Manager, Notification
from fleet.settings import Settings

logger = logging.getLogger(__name__)

# kind -> what happened, in the words of a subject line
NOTICE_KINDS: dict[str, str] = {
    "readiness_lost": N_("not ready for deployment"),
    "cabinet_offline": N_("cabinet offline"),
    "pads_expiring": N_("pads expire soon"),
    "battery_expiring": N_("battery expires soon"),
    "door_opened": N_("cabinet door opened without an incident"),
}

ADVICE: dict[str, str] = {
    "readiness_lost": N_("Check the AED and its cabinet and put right what is wrong. Until the "
                         "AED is ready again, aedfleet does not send it to cardiac arrests."),
    "cabinet_offline": N_("The cabinet has stopped reporting, so nobody can tell whether the AED "
                          "is ready. Check the cabinet's power supply and network connection."),
    "pads_expiring": N_("Order new electrode pads and fit them before the expiry date, then "
                        "record the new expiry date."),
    "battery_expiring": N_("Order a new battery and fit it before the expiry date, then record "
                           "the new expiry date."),
    "door_opened": N_("The door was opened while the AED was not called to an incident: "
                      "possible theft or misuse. Check that the AED is in its cabinet and "
                      "undamaged, and that the door is closed."),
}

PENDING, SENT, NO_RECIPIENT = "pending", "sent", "no_recipient"
CLAIM_LEASE = timedelta(minutes=10)
"""How long a claimed notice waits before another worker may take it (its sender died)."""
SUBJECT_MAX = 300
ERROR_MAX = 500


def enqueue_notice(session: Session, *, aed: Aed, kind: str, detail: str, now: datetime,
                   settings: Settings) -> Notification | None:
    """Add a notice to the outbox unless the same one was queued recently (then None); no commit.

    "The same one" is the same kind for the same AED within `notify.repeat_after_hours`,
    whatever became of it. A notice for an AED without a manager, or whose manager has no e-mail
    address, is kept with status `no_recipient`: never sent, but not lost either.
    """
    if kind not in NOTICE_KINDS:
        raise ValueError(f"unknown notice kind {kind!r}; known: {', '.join(NOTICE_KINDS)}")
    dedup_key = f"{aed.id}:{kind}"
    since = now - timedelta(hours=settings.notify.repeat_after_hours)
    with session.no_autoflush:  # leave flushing the caller's objects to the caller
        if _queued_since(session, dedup_key, since):
            logger.debug("notice %s not repeated: one was queued after %s", dedup_key, since)
            return None
        manager = session.get(Manager, aed.manager_id) if aed.manager_id is not None else None
        language, place = manager_language(session, aed.manager_id)
    subject, body = notice_text(aed, kind, detail, now, place.timezone or settings.timezone,
                                language)
    notice = Notification(aed_id=aed.id, manager_id=aed.manager_id, kind=kind,
                          dedup_key=dedup_key, subject=subject, body=body, created_at=now)
    if manager is None or not manager.email:
        notice.status = NO_RECIPIENT
        notice.last_error = ("the AED has no manager" if manager is None
                             else f"manager {manager.name} has no e-mail address")
        logger.warning("notice %s cannot be sent: %s", dedup_key, notice.last_error)
    session.add(notice)
    return notice


def _queued_since(session: Session, dedup_key: str, since: datetime) -> bool:
    """Whether a notice with this key was queued after `since`, flushed or not."""
    for added in session.new:
        if (isinstance(added, Notification) and added.dedup_key == dedup_key
                and added.created_at > since):
            return True
    query = select(Notification.id).where(Notification.dedup_key == dedup_key,
                                          Notification.created_at > since).limit(1)
    return session.exec(query).first() is not None


def notice_text(aed: Aed, kind: str, detail: str, now: datetime, timezone: str,
                language: str = DEFAULT_LANGUAGE) -> tuple[str, str]:
    """Subject and plain-text body of a notice in `language`: which AED, what happened, when
    (as `2026-11-27 13:00 CET` in every language), what to do. `detail` is kept as given."""
    _ = translator(language).gettext
    label = f"{_one_line(aed.name)} ({aed.id})" if aed.name else aed.id
    what = _(NOTICE_KINDS[kind])
    subject = f"AED {label}: {what}"[:SUBJECT_MAX]
    local = now.astimezone(ZoneInfo(timezone))
    facts = [
        (_("What happened:"), detail),
        (_("When:"), f"{local:%Y-%m-%d %H:%M} {local.tzname()}"),
        (_("AED:"), _("%(name)s (id %(id)s)") % {"name": aed.name or _("no name registered"),
                                                "id": aed.id}),
        (_("Address:"), aed.address or _("not registered")),
        (_("Where exactly:"), aed.location_hint or _("not registered")),
    ]
    width = max(len(name) for name, _value in facts) + 1
    body = "\n".join([
        f"AED {label}: {what}.",
        "",
        *(f"{name:<{width}}{value}" for name, value in facts),
        "",
        _("What to do:") + " " + _(ADVICE[kind]),
    ])
    return subject, body


def mail_text(manager_name: str, notices: Sequence[Notification], settings: Settings,
              language: str = DEFAULT_LANGUAGE) -> tuple[str, str]:
    """Subject and body of the one e-mail that carries `notices` to their manager."""
    words = translator(language)
    if len(notices) == 1:
        subject = notices[0].subject
        parts = [notices[0].body]
    else:
        aed_ids = ", ".join(dict.fromkeys(n.aed_id for n in notices))
        subject = words.gettext("%(count)d notices about AEDs you manage (%(aeds)s)") % {
            "count": len(notices), "aeds": aed_ids}
        if len(subject) > 150:
            subject = subject[:149] + "…"
        parts = [f"{number}. {notice.body}" for number, notice in enumerate(notices, 1)]
    notify = settings.notify
    footer = words.ngettext(
        "You receive this e-mail because aedfleet lists you as the manager of the AED above. "
        "A notice about the same AED and the same problem is not repeated within %(hours)s "
        "hours, and notices arriving within %(minutes)s minutes of an e-mail are collected into "
        "the next one.",
        "You receive this e-mail because aedfleet lists you as the manager of the AEDs above. "
        "A notice about the same AED and the same problem is not repeated within %(hours)s "
        "hours, and notices arriving within %(minutes)s minutes of an e-mail are collected into "
        "the next one.",
        len({n.aed_id for n in notices}),
    ) % {"hours": f"{notify.repeat_after_hours:g}",
         "minutes": f"{notify.digest_interval_minutes:g}"}
    greeting = words.gettext("Hello %(name)s,") % {"name": manager_name}
    body = "\n\n".join([greeting, *parts, "-- ", footer])
    return subject, body


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass
class DeliveryReport:
    """What one delivery round did; every count but `sent_mails` counts notices."""

    sent_mails: int = 0
    notices_sent: int = 0
    failed: int = 0
    """Notices whose e-mail failed this round; they are retried after a backoff."""
    deferred: int = 0
    """Notices held back because their manager had an e-mail within the digest interval."""
    no_recipient: int = 0
    """Pending notices found without a recipient (the manager's e-mail removed since)."""

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        return (f"{self.sent_mails} e-mail(s) sent with {self.notices_sent} notice(s); notices "
                f"failed (to be retried): {self.failed}, deferred (digest interval): "
                f"{self.deferred}, without recipient: {self.no_recipient}")


@dataclass(frozen=True)
class _Claim:
    email: str
    manager_name: str
    notices: list[Notification]
    language: str = DEFAULT_LANGUAGE


def deliver_pending(engine: Engine, mailer: Mailer, now: datetime,
                    settings: Settings) -> DeliveryReport:
    """Send what the outbox holds that is due: one e-mail (a digest) per manager at most."""
    report = DeliveryReport()
    interval = timedelta(minutes=settings.notify.digest_interval_minutes)
    for manager_id, due, last_mail in _due_by_manager(engine, now):
        if manager_id is None:
            report.no_recipient += _mark_without_manager(engine, now)
        elif last_mail is not None and now < last_mail + interval:
            report.deferred += due  # without a lock: saves a write; `_claim` checks again
        else:
            claim = _claim(engine, manager_id, now, interval, report)
            if claim is not None:
                _send(engine, mailer, claim, now, settings, report)
    if report != DeliveryReport():
        logger.info("notification round: %s", report.summary())
    return report


def retry_delay(attempts: int, retry_max_minutes: float) -> timedelta:
    """Wait after the `attempts`-th failed send: 1, 2, 4 ... minutes, at most the maximum."""
    return timedelta(minutes=min(2.0 ** min(attempts - 1, 30), retry_max_minutes))


def _due(now: datetime) -> ColumnElement[bool]:
    return (col(Notification.status) == PENDING) & or_(
        col(Notification.next_attempt_at).is_(None), col(Notification.next_attempt_at) <= now)


def _due_by_manager(engine: Engine,
                    now: datetime) -> list[tuple[int | None, int, datetime | None]]:
    """(manager, number of notices due, time of their last e-mail) for each manager with some."""
    with Session(engine) as session:
        due: dict[int | None, int] = dict(session.exec(
            select(Notification.manager_id, func.count())
            .where(_due(now)).group_by(col(Notification.manager_id))).all())
        last_mail = dict(session.exec(
            select(Notification.manager_id, func.max(Notification.sent_at))
            .where(col(Notification.manager_id).in_([m for m in due if m is not None]))
            .group_by(col(Notification.manager_id))).all()) if due else {}
    return [(manager_id, count, last_mail.get(manager_id)) for manager_id, count in due.items()]


def _last_mail_at(session: Session, manager_id: int) -> datetime | None:
    """When the manager's last e-mail went out, or is going out (a claim stamps `sent_at`)."""
    return session.exec(select(func.max(Notification.sent_at))
                        .where(Notification.manager_id == manager_id)).one()


def _mark_without_manager(engine: Engine, now: datetime) -> int:
    """Pending notices with no manager at all (not queued by `enqueue_notice`): no_recipient."""
    with session_scope(engine) as session:
        result = session.exec(
            update(Notification)
            .where(_due(now), col(Notification.manager_id).is_(None))
            .values(status=NO_RECIPIENT, last_error="the AED has no manager"))
        return int(result.rowcount)


def _claim(engine: Engine, manager_id: int, now: datetime, interval: timedelta,
           report: DeliveryReport) -> _Claim | None:
    """Claim the manager's due notices for one e-mail, unless the digest interval forbids it."""
    with session_scope(engine) as session:
        if session.get_bind().dialect.name == "sqlite":
            # pysqlite opens a transaction only at the first write: take the write lock before
            # reading, or two processes could both read the notices as unclaimed.
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        # FOR NO KEY UPDATE: serialises claims per manager without blocking the ingest, whose
        # notice inserts take only a key-share lock on the manager row.
        manager = session.exec(
            select(Manager).where(Manager.id == manager_id)
            .with_for_update(skip_locked=True, key_share=True)).first()
        if manager is None:
            return None  # another worker is claiming this manager's notices right now
        notices = list(session.exec(
            select(Notification)
            .where(Notification.manager_id == manager_id, _due(now))
            .order_by(col(Notification.created_at), col(Notification.id))
            .with_for_update(skip_locked=True)).all())
        if not notices:
            return None
        if not manager.email:
            for notice in notices:
                notice.status = NO_RECIPIENT
                notice.last_error = f"manager {manager.name} has no e-mail address"
            logger.warning("%d notices for manager %s not sent: no e-mail address",
                           len(notices), manager.name)
            report.no_recipient += len(notices)
            return None
        last_mail = _last_mail_at(session, manager_id)
        if last_mail is not None and now < last_mail + interval:
            report.deferred += len(notices)
            return None
        for notice in notices:
            notice.sent_at = now
            notice.next_attempt_at = now + CLAIM_LEASE
        return _Claim(manager.email, manager.name, notices,
                      manager_language(session, manager_id)[0])


def _send(engine: Engine, mailer: Mailer, claim: _Claim, now: datetime, settings: Settings,
          report: DeliveryReport) -> None:
    """E-mail the claimed notices and record the outcome."""
    subject, body = mail_text(claim.manager_name, claim.notices, settings, claim.language)
    claimed = (col(Notification.id).in_([n.id for n in claim.notices])
               & (col(Notification.status) == PENDING))
    try:
        mailer.send(claim.email, subject, body)
    except MailError as exc:
        attempts = max(n.attempts for n in claim.notices) + 1
        retry_at = now + retry_delay(attempts, settings.notify.retry_max_minutes)
        logger.warning("%d notices for %s not sent (attempt %d), retry at %s: %s",
                       len(claim.notices), claim.email, attempts, retry_at, exc)
        with session_scope(engine) as session:
            session.exec(update(Notification).where(claimed).values(
                attempts=col(Notification.attempts) + 1, next_attempt_at=retry_at, sent_at=None,
                last_error=str(exc)[:ERROR_MAX]))
        report.failed += len(claim.notices)
        return
    with session_scope(engine) as session:
        session.exec(update(Notification).where(claimed).values(
            status=SENT, next_attempt_at=None, last_error=None))
    report.sent_mails += 1
    report.notices_sent += len(claim.notices)
