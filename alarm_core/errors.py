"""Errors of the alarm core. Each refusal has a stable snake_case code and an HTTP status."""

from __future__ import annotations


class AlarmError(Exception):
    """Root of the alarm core's errors."""


class Refused(AlarmError):
    """A request the alarm core will not carry out; nothing was alerted or changed."""

    status = 422

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status


class NotFound(Refused):
    status = 404


class Conflict(Refused):
    status = 409


class RegistrationError(AlarmError):
    """A responder record that cannot be stored, with every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
