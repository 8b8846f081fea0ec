"""Errors of the cabinet agent; callers catch `AgentError`."""

from __future__ import annotations


class AgentError(Exception):
    """Root of every error the device_agents package raises on purpose."""


class CabinetReadError(AgentError):
    """The cabinet controller could not be read (timeout, exception response, closed port)."""


class FrameError(AgentError):
    """A serial line that is not a valid RCC-1 frame; the message says why, `code` what kind.

    Codes: `noise`, `framing`, `checksum`, `field_count`, `bad_value`, `not_status`.
    """

    def __init__(self, message: str, code: str = "framing") -> None:
        super().__init__(message)
        self.code = code


class RegisterMapError(AgentError):
    """A register map file in config/cabinets is invalid."""


class CommandError(AgentError):
    """A fleet command that is malformed or cannot be carried out."""

    def __init__(self, message: str, cmd_id: str | None = None) -> None:
        super().__init__(message)
        self.cmd_id = cmd_id
