"""Errors raised by the fleet package; callers catch `FleetError`."""

from __future__ import annotations


class FleetError(Exception):
    """Root of every error the fleet package raises on purpose."""


class ConfigError(FleetError):
    """The configuration file or an `AEDFLEET_*` override is invalid."""


class UnknownAedError(FleetError):
    """No AED with the given id is registered."""


class ImportFileError(FleetError):
    """A registry file cannot be read at all (unknown format, not JSON, no header)."""


class InvalidDeclarationError(FleetError):
    """A readiness declaration that cannot be recorded (future date, no declarant)."""


class SchemaError(FleetError):
    """The database is missing or its schema is not at the revision this aedfleet needs."""
