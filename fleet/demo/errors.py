"""Errors of the demo; the command line turns each into a one-line message and exit status 1."""

from __future__ import annotations

from fleet.errors import FleetError


class DemoError(FleetError):
    """The demo cannot start, or cannot go on."""


class PartFailed(DemoError):
    """A part of the running demo (a process, the embedded broker, a player) stopped on its
    own; the message says which, and ends with the last lines it logged."""


class Interrupted(DemoError):
    """Ctrl-C or SIGTERM arrived while the demo was still starting."""
