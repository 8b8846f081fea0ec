"""`aedfleet notify`: an operator delivers the outbox to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from fleet.db import session_scope
from fleet.models import Aed, Manager
from fleet.notifications import enqueue_notice
from fleet.settings import NotifySettings, Settings

from .cli import Cli


class RecordingSmtpServer:
    """aiosmtpd on a free loopback port, keeping each message it accepts."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.messages: list[Message] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                     server_hostname="localhost")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[RecordingSmtpServer]:
    server = RecordingSmtpServer()
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


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
        cli: Cli, queued: Engine, smtp: RecordingSmtpServer) -> None:
    result = cli("notify", "--once", "--json",
                 env={"AEDFLEET_NOTIFY__SMTP_URL": f"smtp://127.0.0.1:{smtp.port}"})

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "sent_mails": 1, "notices_sent": 1, "failed": 0, "deferred": 0, "no_recipient": 0}
    assert "1 e-mail(s) sent with 1 notice(s)" in result.stderr
    [mail] = smtp.messages
    assert mail["To"] == "jansen@example.org"
    assert mail["Subject"] == "AED Stadhuis (NL-N1): not ready for deployment"

    again = cli("notify", "--once", "--json",
                env={"AEDFLEET_NOTIFY__SMTP_URL": f"smtp://127.0.0.1:{smtp.port}"})
    assert json.loads(again.stdout)["sent_mails"] == 0
    assert len(smtp.messages) == 1


def test_notify_without_an_smtp_server_configured_says_so_and_fails(
        cli: Cli, queued: Engine) -> None:
    result = cli("notify", "--once")

    assert result.returncode != 0
    assert "no SMTP server configured" in result.stderr
    assert "AEDFLEET_NOTIFY__SMTP_URL" in result.stderr
