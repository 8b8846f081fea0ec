"""OpenStreetMap `opening_hours` at any moment: a clear answer or a clear error, fast.

`fleet.access.accessible_at` must answer with an `Accessibility` (never raise) for any string at
any aware moment, within ~50 ms; `opening_hours_error` returns None or a message. Values are real
ones (tests/data, the unit tests), mutations of them, OSM token soup and any text; moments are any
time from 1900 to 2200 and the daylight saving changes of Europe/Amsterdam.
"""

from __future__ import annotations

import contextlib
import csv
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet import access
from fleet.access import ACCESS_REASONS, Accessibility, accessible_at, opening_hours_error

from .hostile import (
    MEMORY_SLACK,
    any_text,
    fuzzing,
    memory_growth,
    mutated_text,
    random_variants,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
BUDGET_S = 0.050
TEST_DATA = Path(__file__).resolve().parents[1] / "data"


def real_values() -> list[str]:
    """The opening_hours values of the real exports in tests/data, and common OSM ones."""
    found = {"24/7", "Mo-Fr 08:00-18:00", "Mo-Fr 08:00-18:00; PH off", "22:00-06:00",
             "Mo-Sa 07:00-22:00; Su 09:00-17:00", "Mo-Fr 08:00-12:00,13:00-17:00",
             "Mo-Fr 08:00-18:00 || unknown", "sunrise-sunset", "Mo-Su 00:00-24:00",
             "Jan-Mar,Oct-Dec Mo-Fr 08:00-17:00", "week 1-53/2 Mo 10:00-12:00",
             "easter -2 days off", "Mo[1,-1] 10:00-12:00", "SH off; 10:00+",
             "(sunrise+01:00)-(sunset-01:00)", '"by appointment" 10:00-12:00',
             "2026 Jan 01-2027 Dec 31 10:00-20:00", "Dec 25-Jan 05 off", "Mo 10:00-26:00"}
    for name in ("koeln_aed.csv", "ch_osm_defibrillators_2020-12_head200.csv"):
        with (TEST_DATA / name).open(encoding="utf-8-sig", newline="") as file:
            found |= {row["opening_hours"] for row in csv.DictReader(file) if row["opening_hours"]}
    return sorted(found)


REAL_VALUES = real_values()
TOKENS = ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su", "PH", "SH", "off", "open", "closed",
          "unknown", "week", "Jan", "Feb", "Dec", "easter", "sunrise", "sunset", "dawn", "dusk",
          "24/7", "||", ";", ",", "-", "+", "/", "[", "]", "(", ")", ":", " ", "00", "24", "26",
          "48", "60", "99", "1900", "9999", "10000", "-1", "10:00", "23:59", "+01:00", '"x"',
          "days", "day", "53", "54", "0", "1"]
tokens = st.sampled_from(TOKENS)
hours_values = st.one_of(
    st.sampled_from(REAL_VALUES),
    st.sampled_from(REAL_VALUES).flatmap(lambda value: mutated_text(value, tokens | any_text)),
    st.lists(tokens, max_size=20).map("".join),
    st.lists(st.sampled_from(REAL_VALUES), min_size=2, max_size=30).map("; ".join).map(
        lambda rules: rules[:500]),  # the registry's limit
    any_text)


def dst_changes() -> list[datetime]:
    """The instants of Europe/Amsterdam's changes to and from summer time, 2020-2035 (01:00Z)."""
    changes = []
    for year in range(2020, 2036):
        for month in (3, 10):
            last_sunday = max(day for day in range(25, 32) if date(year, month, day).weekday() == 6)
            changes.append(datetime(year, month, last_sunday, 1, tzinfo=UTC))
    return changes


instants = st.one_of(
    st.builds(lambda change, offset: change + offset, st.sampled_from(dst_changes()),
              st.timedeltas(timedelta(hours=-3), timedelta(hours=3))),
    st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC)))
# The same instants, written in UTC, in Amsterdam's time or in another zone.
zones = st.sampled_from([UTC, AMSTERDAM, ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")])


def answer(hours: str, at: datetime) -> Accessibility:
    return accessible_at("public", hours, at)


def timed_answer(hours: str, at: datetime) -> tuple[Accessibility, float]:
    """The answer and the shorter of two uncached runs' times (parse and evaluation)."""
    times = []
    for _ in range(2):
        access._parse.cache_clear()  # time the parse too, not a cache hit
        started = time.perf_counter()
        result = answer(hours, at)
        times.append(time.perf_counter() - started)
    return result, min(times)


@fuzzing(ci_examples=300)
@given(hours=hours_values, instant=instants)
def test_any_opening_hours_at_any_moment_is_a_clear_answer_within_50_ms(
        hours: str, instant: datetime) -> None:
    result, seconds = timed_answer(hours, instant)
    assert isinstance(result.accessible, bool) and result.reason in ACCESS_REASONS
    assert seconds < BUDGET_S, f"{seconds * 1000:.0f} ms for {hours!r} at {instant}"
    error = opening_hours_error(hours)
    assert error is None or (error.startswith("unparseable opening_hours") and "\n" not in error)
    if not hours.strip():
        assert result.reason == "hours_unknown"
    elif hours.strip() == "24/7":
        assert result.reason == "always_open"
    elif error is not None:
        assert result == Accessibility(False, "hours_unparseable")
    else:  # hours the importer accepts are always evaluated
        assert result.reason in ("open", "closed")


@fuzzing(ci_examples=200)
@given(hours=st.sampled_from(REAL_VALUES) | hours_values, instant=instants, zone=zones)
def test_the_answer_depends_on_the_instant_not_on_the_zone_it_is_written_in(
        hours: str, instant: datetime, zone: ZoneInfo) -> None:
    assert answer(hours, instant.astimezone(zone)) == answer(hours, instant)


@fuzzing(ci_examples=200)
@given(hours=st.sampled_from(REAL_VALUES),
       local=st.datetimes(datetime(2020, 1, 1), datetime(2036, 1, 1),
                          timezones=st.just(AMSTERDAM)))
def test_an_ambiguous_or_skipped_local_time_is_answered_like_its_instant(
        hours: str, local: datetime) -> None:
    # Wall-clock times in Amsterdam, with fold 0 or 1 and times the spring change skips.
    at_local = answer(hours, local)
    assert at_local == answer(hours, local.astimezone(UTC))


def test_a_skipped_local_time_is_answered_like_its_instant() -> None:
    skipped = datetime(2026, 3, 29, 2, 30, tzinfo=AMSTERDAM)
    assert accessible_at("public", "Mo-Fr 08:00-18:00", skipped) == accessible_at(
        "public", "Mo-Fr 08:00-18:00", skipped.astimezone(UTC))


@pytest.mark.parametrize("hours", ["\ud800", "Mo-Fr 08:00-18:00\udfff"])
def test_opening_hours_with_a_lone_surrogate_are_unparseable(hours: str) -> None:
    assert opening_hours_error(hours) is not None
    assert accessible_at("public", hours, datetime(2026, 6, 17, 10, tzinfo=UTC)) == (
        Accessibility(False, "hours_unparseable"))


def test_evaluating_keeps_no_memory_per_hostile_value() -> None:
    seeds = [value.encode() for value in REAL_VALUES]
    hostile = [raw.decode("utf-8", errors="replace")
               for raw in random_variants(seeds, 1000, seed=6)]
    moments = [change + timedelta(minutes=minutes) for change in dst_changes()[:2]
               for minutes in (-61, 0, 59)]

    def evaluate_all() -> None:
        for hours in hostile:
            # What is raised is the other tests' business; here only what stays behind counts.
            with contextlib.suppress(Exception):
                opening_hours_error(hours)
                for moment in moments:
                    accessible_at("public", hours, moment)

    assert memory_growth(evaluate_all) < MEMORY_SLACK
