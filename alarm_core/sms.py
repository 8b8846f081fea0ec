"""SMS delivery for responders without the app, through an HTTP gateway.

Most SMS providers (and self-hosted gateways) accept a JSON POST; the adapter posts
`{"to": "+316...", "text": "..."}` to the configured URL and treats any 2xx as accepted.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Protocol

from alarm_core.errors import AlarmError


class SmsError(AlarmError):
    """The gateway did not accept a message."""


class SmsGateway(Protocol):
    def send(self, to: str, text: str) -> None: ...


class HttpSmsGateway:
    """Posts each SMS as JSON to a gateway URL."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    def send(self, to: str, text: str) -> None:
        body = json.dumps({"to": to, "text": text}).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                if not 200 <= response.status < 300:
                    raise SmsError(f"SMS gateway answered {response.status}")
        except (urllib.error.URLError, OSError) as exc:
            raise SmsError(f"SMS gateway unreachable: {exc}") from exc
