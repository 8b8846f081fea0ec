"""`aedfleet notify`: an operator delivers the outbox to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from integration.smtp_support import SmtpServer
from sqlalchemy import Engine

from fleet.db import session_scope
from fleet.models import Aed, Manager
from fleet.notifications import enqueue_notice
from fleet.settings import NotifySettings, Settings

from .cli import Cli


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def queued(engine: Engine, database_url: str) -> Engine:
    """One AED whose manager has an e-mail address, with one notice in the outbox."""
    settings = Settings(database_url=database_url, notify=NotifySettings(repeat_after_hours=24))
    with session_scope(engine) as session:
        manager = Manager(name="J. Jansen", email="jansen@example.org")
        session.add(manager)
        session.flush()
        aed = Aed(id="NL-N1", name="Stadhuis", lat=52.0907, lon=5.1214, manager_id=manager.id)
        session.add(aed)
        session.flush()
        assert enqueue_notice(session, aed=aed, kind="readiness_lost",
                              detail="the battery charge fell below 20%",
                              now=datetime.now(UTC), settings=settings) is not None
    return engine


def test_notify_once_json_sends_the_outbox_and_prints_the_report_on_stdout(
        cli: Cli, queued: Engine, smtp: SmtpServer) -> None:
    result = cli("notify", "--once", "--json",
                 env={"AEDFLEET_NOTIFY__SMTP_URL": smtp.url})

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "sent_mails": 1, "notices_sent": 1, "failed": 0, "deferred": 0, "no_recipient": 0}
    assert "1 e-mail(s) sent with 1 notice(s)" in result.stderr
    [mail] = [received.message for received in smtp.received]
    assert mail["To"] == "jansen@example.org"
    assert mail["Subject"] == "AED Stadhuis (NL-N1): not ready for deployment"

    again = cli("notify", "--once", "--json",
                env={"AEDFLEET_NOTIFY__SMTP_URL": smtp.url})
    assert json.loads(again.stdout)["sent_mails"] == 0
    assert len(smtp.received) == 1


def test_notify_without_an_smtp_server_configured_says_so_and_fails(
        cli: Cli, queued: Engine) -> None:
    result = cli("notify", "--once")

    assert result.returncode != 0
    assert "no SMTP server configured" in result.stderr
    assert "AEDFLEET_NOTIFY__SMTP_URL" in result.stderr
