"""Hypothesis profiles of the fuzz tests, chosen by `AEDFLEET_FUZZ_PROFILE` (`ci` unless set).

- `ci`: sized so that the whole folder runs in well under a minute on two cores; random each run
  (not derandomized), so that every CI run tries new inputs. The example database, which replays
  earlier failures first, is used locally only (not where the `CI` variable is set).
- `long`: 200,000 examples per property, for runs of hours that a person starts, e.g.
  `AEDFLEET_FUZZ_PROFILE=long .venv/bin/pytest tests/fuzz -p no:cacheprovider
  --hypothesis-show-statistics`; the suite's per-test timeout is lifted for the fuzz tests.

The profiles are registered as `fuzz-ci` and `fuzz-long` and applied by `hostile.fuzzing` to the
fuzz tests only: loading them globally would change the settings of every other test in the same
session, and registering a profile named `ci` would replace Hypothesis's own CI profile.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from .hostile import PROFILE_VARIABLE

_SHARED = settings(
    deadline=None,  # the parsers' own time limits are asserted where they matter
    derandomize=False,
    print_blob=True,  # a CI failure prints the blob that reproduces it (@reproduce_failure)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_CI = settings(_SHARED, max_examples=100)
settings.register_profile("fuzz-ci", settings(_CI, database=None) if "CI" in os.environ else _CI)
settings.register_profile("fuzz-long", _SHARED, max_examples=200_000)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under the long profile a property runs for hours: no per-test timeout for the fuzz tests."""
    if os.environ.get(PROFILE_VARIABLE) != "long":
        return
    folder = Path(__file__).parent
    for item in items:
        if folder in item.path.parents:
            item.add_marker(pytest.mark.timeout(0))
