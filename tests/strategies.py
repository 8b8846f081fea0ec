"""Hypothesis strategies shared by the unit and fuzz tests."""

from __future__ import annotations

from datetime import date

from hypothesis import strategies as st

from device_agents.reading import ControllerReading

readings = st.builds(
    ControllerReading,
    battery_pct=st.integers(0, 100),
    pads_expiry=st.none() | st.dates(date(1970, 1, 1), date(2099, 12, 31)),
    door_open=st.booleans(),
    aed_present=st.booleans(),
    temperature_c=st.integers(-400, 850).map(lambda tenths: tenths / 10),
    self_test=st.sampled_from(["pass", "fail", "unknown"]),
)
"""Any reading a cabinet controller can give (temperatures in its tenths of a degree)."""
