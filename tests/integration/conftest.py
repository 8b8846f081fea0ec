"""Fixtures of the integration tests that talk to a broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .mqtt_support import Mosquitto


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running Mosquitto with the generated configuration (services only, no cabinets)."""
    mosquitto = Mosquitto(tmp_path / "broker", [])
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()
