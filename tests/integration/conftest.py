"""Fixtures of the integration tests that talk to a broker."""

from __future__ import annotations

from .mqtt_support import broker

__all__ = ["broker"]
