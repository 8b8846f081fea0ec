"""Access and opening hours: private, unknown, unreadable hours; agreement with the parser."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opening_hours import OpeningHours, State

from fleet.access import Accessibility, accessible_at, opening_hours_error

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

# Real-world OpenStreetMap `opening_hours` values an AED cabinet may carry.
EXPRESSIONS = [
    "Mo-Fr 08:00-18:00",
    "Mo-Fr 08:00-18:00; PH off",
    "Mo-Sa 07:00-22:00; Su 09:00-17:00",
    "Mo-Fr 08:00-12:00,13:00-17:00",
    "22:00-06:00",
    "Mo-Fr 08:00-18:00 || unknown",
    "sunrise-sunset",
]
# Free text found in real registries (Cologne), which the parser rejects.
UNPARSEABLE = [
    "Mo - Fr 08:00 - 16:00 Uhr und zu Veranstaltungen",
    "6.00-19.30 Uhr",
    "Mo,Mi,Fr 7:30 - 12:00, Di 9:30 - 18:00, Do 7:30 - 16:00",
    "Di-So 10:00 - 17:00, 1.Do im Monat 10:00 - 22:00",
]

utc_moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC))
# Whole hours, where opening and closing times (and daylight saving changes) fall.
on_the_hour = utc_moments.map(lambda t: t.replace(minute=0, second=0, microsecond=0))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@settings(max_examples=50, deadline=None)
@given(at=utc_moments, hours=st.sampled_from([None, "", "24/7", *EXPRESSIONS, *UNPARSEABLE]))
def test_an_aed_with_private_access_is_never_accessible(at: datetime, hours: str | None) -> None:
    assert accessible_at("private", hours, at) == Accessibility(False, "private_access")


@pytest.mark.parametrize("hours", [None, "", "   ", "\t\n"])
def test_an_aed_without_registered_hours_is_not_accessible(hours: str | None) -> None:
    assert accessible_at("public", hours, utc("2026-06-17T10:00")) == Accessibility(
        False, "hours_unknown")


@settings(max_examples=50, deadline=None)
@given(at=utc_moments, hours=st.sampled_from(UNPARSEABLE))
def test_an_aed_with_unparseable_hours_is_never_accessible(at: datetime, hours: str) -> None:
    assert accessible_at("public", hours, at) == Accessibility(False, "hours_unparseable")


@settings(max_examples=50, deadline=None)
@given(at=utc_moments, hours=st.sampled_from(["24/7", " 24/7 "]))
def test_an_aed_open_24_7_is_always_accessible(at: datetime, hours: str) -> None:
    assert accessible_at("public", hours, at) == Accessibility(True, "always_open")


@settings(max_examples=400, deadline=None)
@given(at=utc_moments | on_the_hour, hours=st.sampled_from(EXPRESSIONS))
def test_accessibility_agrees_with_the_opening_hours_library_in_local_time(
        at: datetime, hours: str) -> None:
    expected_open = OpeningHours(hours, timezone=AMSTERDAM, country="NL").state(
        at.astimezone(AMSTERDAM))[0] == State.OPEN
    result = accessible_at("public", hours, at)
    assert result.accessible == expected_open
    assert result.reason == ("open" if expected_open else "closed")


DST_EDGES = [
    # (hours, UTC time, accessible): winter is CET (UTC+1), summer CEST (UTC+2).
    ("Mo-Fr 08:00-18:00", "2026-01-14T06:59:59", False),  # Wednesday, 07:59:59 CET
    ("Mo-Fr 08:00-18:00", "2026-01-14T07:00:00", True),  # 08:00 CET
    ("Mo-Fr 08:00-18:00", "2026-01-14T16:59:59", True),
    ("Mo-Fr 08:00-18:00", "2026-01-14T17:00:00", False),  # 18:00 CET
    ("Mo-Fr 08:00-18:00", "2026-07-15T05:59:59", False),  # Wednesday, 07:59:59 CEST
    ("Mo-Fr 08:00-18:00", "2026-07-15T06:00:00", True),  # 08:00 CEST
    ("Mo-Fr 08:00-18:00", "2026-07-15T06:59:59", True),
    ("Mo-Fr 08:00-18:00", "2026-07-15T16:00:00", False),  # 18:00 CEST
    # Night of 28-29 March 2026: clocks jump from 02:00 CET to 03:00 CEST (01:00Z).
    ("22:00-06:00", "2026-03-28T20:59:59", False),  # 21:59:59 CET on Saturday
    ("22:00-06:00", "2026-03-28T21:00:00", True),  # 22:00 CET
    ("22:00-06:00", "2026-03-29T00:59:59", True),  # 01:59:59 CET
    ("22:00-06:00", "2026-03-29T01:00:00", True),  # 03:00 CEST
    ("22:00-06:00", "2026-03-29T03:59:59", True),  # 05:59:59 CEST
    ("22:00-06:00", "2026-03-29T04:00:00", False),  # 06:00 CEST, not 05:00
    # Night of 24-25 October 2026: clocks fall back from 03:00 CEST to 02:00 CET (01:00Z).
    ("22:00-06:00", "2026-10-25T04:59:59", True),  # 05:59:59 CET
    ("22:00-06:00", "2026-10-25T05:00:00", False),  # 06:00 CET
]


@pytest.mark.parametrize(("hours", "at", "accessible"), DST_EDGES)
def test_opening_hours_are_local_time_on_both_sides_of_daylight_saving_changes(
        hours: str, at: str, accessible: bool) -> None:
    assert accessible_at("public", hours, utc(at)).accessible is accessible


@pytest.mark.parametrize(("at", "accessible"), [
    ("2026-12-24T10:00", True),  # Christmas Eve, a Thursday: a working day
    ("2026-12-25T10:00", False),  # Christmas Day, a Friday
    ("2026-12-28T10:00", True),  # the Monday after
    ("2026-04-27T10:00", False),  # King's Day, a Monday
])
def test_an_aed_closed_on_public_holidays_is_closed_on_dutch_holidays(
        at: str, accessible: bool) -> None:
    result = accessible_at("public", "Mo-Fr 08:00-18:00; PH off", utc(at))
    assert result.accessible is accessible


def test_opening_hours_are_read_in_the_aeds_own_time_zone() -> None:
    at = utc("2026-01-14T07:30")  # 08:30 in Amsterdam, 07:30 in London
    assert accessible_at("public", "Mo-Fr 08:00-18:00", at).accessible
    assert not accessible_at("public", "Mo-Fr 08:00-18:00", at, tz_name="Europe/London",
                             country="GB").accessible


def test_an_unknown_fallback_is_not_a_promise_of_access() -> None:
    saturday_noon = utc("2026-06-20T10:00")
    assert accessible_at("public", "Mo-Fr 08:00-18:00 || unknown", saturday_noon) == (
        Accessibility(False, "closed"))


@pytest.mark.parametrize("hours", ["24/7", *EXPRESSIONS, " Mo-Fr 08:00-18:00 "])
def test_valid_opening_hours_have_no_error(hours: str) -> None:
    assert opening_hours_error(hours) is None


@pytest.mark.parametrize("hours", UNPARSEABLE)
def test_the_error_of_unparseable_hours_names_the_value(hours: str) -> None:
    error = opening_hours_error(hours)
    assert error is not None
    assert repr(hours) in error
    assert error.startswith("unparseable opening_hours")


def test_the_error_of_unparseable_hours_says_where_the_parser_stopped() -> None:
    error = opening_hours_error("Mo - Fr 08:00 - 16:00 Uhr und zu Veranstaltungen")
    assert error is not None
    assert "at character 4" in error
    assert "\n" not in error
