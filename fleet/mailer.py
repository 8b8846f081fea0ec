"""E-mail to AED managers: the `Mailer` interface and its SMTP adapter."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from fleet.errors import ConfigError, FleetError

if TYPE_CHECKING:
    from fleet.settings import Settings

logger = logging.getLogger(__name__)

SMTP_TIMEOUT_S = 10.0
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


class MailError(FleetError):
    """An e-mail could not be handed to the SMTP server (unreachable, refused, rejected)."""


class Mailer(Protocol):
    """Sends one plain-text e-mail, or raises `MailError`."""

    def send(self, to: str, subject: str, body: str) -> None: ...


@dataclass(frozen=True)
class SmtpMailer:
    """Sends through an SMTP server: smtps (TLS from the start) or smtp with STARTTLS if offered.

    A password is only ever sent over TLS: with smtp:// and a server that offers no STARTTLS,
    sending fails rather than log in in clear text.
    """

    host: str
    port: int
    sender: str
    implicit_tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = SMTP_TIMEOUT_S

    @classmethod
    def from_url(cls, smtp_url: str, sender: str) -> SmtpMailer:
        """A mailer for `smtp://[user:password@]host[:port]` or `smtps://...`."""
        parts = urlsplit(smtp_url)
        if parts.scheme not in DEFAULT_PORTS:
            raise ConfigError("notify.smtp_url must start with smtp:// or smtps://")
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"notify.smtp_url has an invalid port: {exc}") from exc
        if not parts.hostname:
            raise ConfigError("notify.smtp_url names no host")
        return cls(
            host=parts.hostname,
            port=port or DEFAULT_PORTS[parts.scheme],
            sender=sender,
            implicit_tls=parts.scheme == "smtps",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    def send(self, to: str, subject: str, body: str) -> None:
        """Hand one plain-text e-mail to the server; `MailError` if it is not accepted."""
        try:
            message = self._message(to, subject, body)
            with self._connect() as smtp:
                self._secure_and_log_in(smtp)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            # ValueError: an address the message or the server's encoding cannot carry.
            raise MailError(f"e-mail to {to} via {self.host}:{self.port} failed: "
                            f"{_describe(exc)}") from exc
        logger.info("e-mail %r sent to %s", subject, to)

    def _message(self, to: str, subject: str, body: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = " ".join(subject.split())  # no line breaks in a header
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or "localhost")
        message.set_content(body)
        return message

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s,
                                    context=ssl.create_default_context())
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)

    def _secure_and_log_in(self, smtp: smtplib.SMTP) -> None:
        encrypted = self.implicit_tls
        if not encrypted:
            smtp.ehlo_or_helo_if_needed()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
                encrypted = True
        if self.username is None:
            return
        if not encrypted:
            raise MailError(f"{self.host}:{self.port} offers no STARTTLS; refusing to send the "
                            "SMTP password unencrypted (use smtps:// or a server with STARTTLS)")
        smtp.login(self.username, self.password or "")


def _describe(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) \
            else str(exc.smtp_error)
        return f"server answered {exc.smtp_code} {text}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "recipient refused: " + "; ".join(
            f"{code} {reply.decode(errors='replace')}" for code, reply in exc.recipients.values())
    return str(exc) or type(exc).__name__


def make_mailer(settings: Settings) -> Mailer | None:
    """The configured mailer, or None when no SMTP server is configured (outbox only)."""
    if not settings.notify.smtp_url:
        return None
    return SmtpMailer.from_url(settings.notify.smtp_url, settings.notify.sender)
