"""German free-text opening hours read into OpenStreetMap syntax: the real Cologne strings,
common patterns, what is refused, and that a refusal never makes an AED count as open."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.access import accessible_at, opening_hours_error
from fleet.opening_hours_de import GermanHours, read_german_hours

TEST_DATA = Path(__file__).resolve().parents[1] / "data"
BERLIN = ZoneInfo("Europe/Berlin")

# Every distinct opening-hours text of Cologne's AED list (tests/data/koeln_aed.csv).
COLOGNE = [
    ("6.00-19.30 Uhr", "Mo-Su 06:00-19:30"),
    ("Di-So 10:00 - 17:00, 1.Do im Monat 10:00 - 22:00 ",
     "Tu-Su 10:00-17:00; Th[1] 10:00-22:00"),
    ("Di-So 10:00 - 18:00, 1.Do im Monat 10:00 - 22:00 ",
     "Tu-Su 10:00-18:00; Th[1] 10:00-22:00"),
    ("Di-So 10:00 - 18:00, Do 10:00 - 21:00, Feiertags 10:00 - 18:00, "
     "1.Do im Monat 10:00 - 22:00 ",
     "Tu-Su 10:00-18:00; Th 10:00-21:00; Th[1] 10:00-22:00; PH 10:00-18:00"),
    ("Di 10:00 - 20:00, Feiertags 10:00 - 17:00, Mi-So 10:00 - 17:00, "
     "1.Do im Monat 10:00 - 22:00",
     "Tu 10:00-20:00; We-Su 10:00-17:00; Th[1] 10:00-22:00; PH 10:00-17:00"),
    ("Mo,Mi,Fr 7:30 - 12:00, Di 9:30 - 18:00, Do 7:30 - 16:00",
     "Mo,We,Fr 07:30-12:00; Tu 09:30-18:00; Th 07:30-16:00"),
    ("Mo,Mi,Do 8:00 - 16:00, Di 8:00 - 18:00, Fr 8:00 - 14:00",
     "Mo,We,Th 08:00-16:00; Tu 08:00-18:00; Fr 08:00-14:00"),
    ("Di,Do,Fr 9:00 - 16:30, Mi 9:00 - 19:45", "Tu,Th,Fr 09:00-16:30; We 09:00-19:45"),
    ("Mo,Di,Do 8:30 - 16:00, Mi 8:30 - 15:00, Fr 8:30 - 12:00 Pause von 13:00 - 13:30",
     "Mo,Tu,Th 08:30-13:00,13:30-16:00; We 08:30-13:00,13:30-15:00; Fr 08:30-12:00"),
    ("Mo,Mi,Fr 7:15-12:00, Di 7:15 - 16:00, Do 7:15 - 18:00, Sa 10:00 - 15:00",
     "Mo,We,Fr 07:15-12:00; Tu 07:15-16:00; Th 07:15-18:00; Sa 10:00-15:00"),
    ("Mo-Do 8:00 - 16:00, Fr 8:00 - 12:00", "Mo-Th 08:00-16:00; Fr 08:00-12:00"),
    ("Mo,Do 8:00 - 16:00, Di 8:00 - 18:00, Mi,Fr 8:00 - 12:00",
     "Mo,Th 08:00-16:00; Tu 08:00-18:00; We,Fr 08:00-12:00"),
    ("Mo - Fr 09:00 - 18:00 Uhr und zu Veranstaltungen", "Mo-Fr 09:00-18:00"),
    ("Mo - Fr 08:00 - 16:00 Uhr und zu Veranstaltungen", "Mo-Fr 08:00-16:00"),
    ("Di, Mi, Fr, Sa, So 10-18 Uhr; Do 10-20 Uhr; 1. Do im Monat 10-22 Uhr",
     "Tu,We,Fr-Su 10:00-18:00; Th 10:00-20:00; Th[1] 10:00-22:00"),
]

# Common ways of writing hours in German registries and on signs.
COMMON = [
    ("Mo-Fr 8-18 Uhr", "Mo-Fr 08:00-18:00"),
    ("Mo.-Fr. 07:00-19:00 Uhr", "Mo-Fr 07:00-19:00"),
    ("Mo bis Fr von 8 bis 12 und 14 bis 18 Uhr", "Mo-Fr 08:00-12:00,14:00-18:00"),
    ("Montag bis Freitag 8–18 Uhr", "Mo-Fr 08:00-18:00"),
    ("Montags 9-12", "Mo 09:00-12:00"),
    ("Mo-Fr: 8-16", "Mo-Fr 08:00-16:00"),
    ("täglich 8-20 Uhr", "Mo-Su 08:00-20:00"),
    ("jeden Tag 6-22 Uhr", "Mo-Su 06:00-22:00"),
    ("rund um die Uhr", "24/7"),
    ("24 Stunden geöffnet", "24/7"),
    ("24/7", "24/7"),
    ("Mo-So 0-24 Uhr", "24/7"),
    ("Mo-Fr rund um die Uhr", "Mo-Fr 00:00-24:00"),
    ("22-6 Uhr", "Mo-Su 22:00-06:00"),
    ("Mo-Fr 8-18 Uhr, Sa 9-13 Uhr, So und feiertags geschlossen",
     "Mo-Fr 08:00-18:00; Sa 09:00-13:00; Su off; PH off"),
    ("Mo-Fr 8-18 Uhr außer feiertags", "Mo-Fr 08:00-18:00; PH off"),
    ("Mo-Fr 8-18 Uhr, Mittagspause 12-13 Uhr", "Mo-Fr 08:00-12:00,13:00-18:00"),
    ("Mo-Fr 8-12, 14-18 Uhr", "Mo-Fr 08:00-12:00,14:00-18:00"),
    ("letzten Freitag im Monat 10-12 Uhr", "Fr[-1] 10:00-12:00"),
    # A rule for fewer days is the exception, wherever it is written.
    ("Mo-Fr 8-18, Mi 8-12", "Mo-Fr 08:00-18:00; We 08:00-12:00"),
    ("Mi 8-12, Mo-Fr 8-18", "Mo-Fr 08:00-18:00; We 08:00-12:00"),
    ("8-18 Uhr, Sa 10-14 Uhr", "Mo-Su 08:00-18:00; Sa 10:00-14:00"),
]

REFUSED = [
    ("während der Öffnungszeiten", "refers to opening hours without giving them"),
    ("zu den Geschäftszeiten", "refers to opening hours without giving them"),
    ("nach Vereinbarung", "refers to opening hours without giving them"),
    ("", "no hours given"),
    ("   ", "no hours given"),
    ("werktags 8-18 Uhr", "'werktags' may mean Monday to Friday or Monday to Saturday"),
    ("wochentags 8-18 Uhr", "'wochentags' may mean Monday to Friday or Monday to Saturday"),
    ("ab 8 Uhr", "'ab' gives no closing time"),
    ("Sommer 8-20 Uhr", "cannot read 'sommer'"),
    ("Mo-Fr 8-18 Uhr, im Winter bis 16 Uhr", "cannot read 'im'"),
    ("Sa, So und feiertags geschlossen", "no opening time given"),
    ("durchgehend geöffnet", "no opening time given"),
    ("Mo-Mi 8-12, Mi-Fr 14-18", "day groups Mo-We and We-Fr overlap"),
    ("Mo 8-18, Mo geschlossen", "Mo is given as both open and closed"),
    ("Mo-Fr 8-18 Uhr, 10-12", "time spans of one day overlap"),
    ("Mo-Fr 8-18; 10-12", "hours without days after a rule"),
    ("Mo 25-26", "'25' is not a time of day"),
    ("Mo 8-8", "a time span must not be empty"),
    ("Mo-Fr", "expected a time at the end"),
    ("1. Do 10-22 Uhr", "expected 'im Monat' at '10'"),
]


@pytest.mark.parametrize(("text", "expected"), COLOGNE)
def test_every_opening_hours_text_of_cologne_is_read_into_valid_osm_hours(
        text: str, expected: str) -> None:
    read = read_german_hours(text)

    assert (read.opening_hours, read.reason) == (expected, None)
    assert opening_hours_error(expected) is None


def test_the_cologne_table_holds_every_distinct_text_of_the_file() -> None:
    with (TEST_DATA / "koeln_aed.csv").open(encoding="utf-8-sig", newline="") as source:
        texts = {row["opening_hours"] for row in csv.DictReader(source) if row["opening_hours"]}

    assert texts == {text for text, _ in COLOGNE}


@pytest.mark.parametrize(("text", "expected"), COMMON)
def test_common_german_patterns_are_read(text: str, expected: str) -> None:
    assert read_german_hours(text) == GermanHours(text, expected)


@pytest.mark.parametrize(("text", "reason"), REFUSED)
def test_text_that_cannot_be_read_safely_gives_no_hours_and_says_why(
        text: str, reason: str) -> None:
    assert read_german_hours(text) == GermanHours(text, None, reason)


def test_an_addition_without_hours_is_left_out_and_named() -> None:
    read = read_german_hours("Mo - Fr 08:00 - 16:00 Uhr und zu Veranstaltungen")

    assert read.opening_hours == "Mo-Fr 08:00-16:00"
    assert read.dropped == ("und zu Veranstaltungen",)


@pytest.mark.parametrize("text", [
    "Sa und bei Bedarf So 10-12",
    "Sa, und bei Bedarf, So 10-12",
    "Mo-Fr und nach Vereinbarung Sa 8-12",
    "Mo-Fr 8-18, und nach Vereinbarung, 19-20",
])
def test_an_addition_in_the_middle_never_gives_its_days_or_hours_to_a_rule(text: str) -> None:
    read = read_german_hours(text)

    assert read.opening_hours is None and read.reason


def test_an_addition_between_two_rules_is_left_out_and_both_rules_are_read() -> None:
    read = read_german_hours("Mo-Fr 8-18 und nach Vereinbarung, Sa 9-12")

    assert read.opening_hours == "Mo-Fr 08:00-18:00; Sa 09:00-12:00"
    assert read.dropped == ("und nach Vereinbarung",)


@pytest.mark.parametrize(("text", "reason"), [
    ("Mo-Fr 8-18, feiertags geschlossen, feiertags 10-12", "PH is given as both open and closed"),
    ("Di-So 10-17, 1. Do im Monat geschlossen, 1. Do im Monat 10-22",
     "Th[1] is given as both open and closed"),
])
def test_holidays_or_a_weekday_of_the_month_given_as_open_and_closed_are_refused(
        text: str, reason: str) -> None:
    assert read_german_hours(text) == GermanHours(text, None, reason)


def test_two_spans_for_the_same_weekday_of_the_month_are_both_kept() -> None:
    read = read_german_hours("Mo-Fr 8-18, 1. Sa im Monat 9-12, 1. Sa im Monat 14-16")

    assert read.opening_hours == "Mo-Fr 08:00-18:00; Sa[1] 09:00-12:00,14:00-16:00"


def berlin(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


@pytest.mark.parametrize(("text", "at", "open_"), [
    ("Mo - Fr 08:00 - 16:00 Uhr und zu Veranstaltungen", "2026-11-25T10:00", True),  # Wed
    ("Mo - Fr 08:00 - 16:00 Uhr und zu Veranstaltungen", "2026-11-28T10:00", False),  # Sat
    ("Mo - Fr 08:00 - 16:00 Uhr und zu Veranstaltungen", "2026-11-25T19:00", False),
    # The break is taken out of every day.
    ("Mo,Di,Do 8:30 - 16:00, Mi 8:30 - 15:00, Fr 8:30 - 12:00 Pause von 13:00 - 13:30",
     "2026-11-23T13:15", False),
    ("Mo,Di,Do 8:30 - 16:00, Mi 8:30 - 15:00, Fr 8:30 - 12:00 Pause von 13:00 - 13:30",
     "2026-11-23T13:45", True),
    # The first Thursday of the month is open late, the others are not.
    ("Di-So 10:00 - 17:00, 1.Do im Monat 10:00 - 22:00 ", "2026-12-03T21:00", True),
    ("Di-So 10:00 - 17:00, 1.Do im Monat 10:00 - 22:00 ", "2026-12-10T21:00", False),
    ("Di-So 10:00 - 17:00, 1.Do im Monat 10:00 - 22:00 ", "2026-12-07T11:00", False),  # Mon
    # Christmas Day (a German holiday) on a Friday: the holiday rule's hours hold.
    ("Di-So 10:00 - 18:00, Do 10:00 - 21:00, Feiertags 10:00 - 18:00, "
     "1.Do im Monat 10:00 - 22:00 ", "2026-12-25T17:30", True),
    ("Mo-Fr 8-18 Uhr außer feiertags", "2026-12-25T10:00", False),
    ("Mo-Fr 8-18 Uhr außer feiertags", "2026-12-23T10:00", True),
])
def test_read_hours_open_and_close_as_the_german_text_says(text: str, at: str,
                                                            open_: bool) -> None:
    hours = read_german_hours(text).opening_hours

    assert accessible_at("public", hours, berlin(at), "Europe/Berlin", "DE").accessible == open_


@pytest.mark.parametrize("text", [text for text, _ in REFUSED])
def test_an_aed_whose_german_hours_cannot_be_read_is_never_accessible(text: str) -> None:
    hours = read_german_hours(text).opening_hours

    for at in ("2026-11-25T10:00", "2026-11-28T03:00", "2026-12-25T12:00"):
        assert not accessible_at("public", hours, berlin(at), "Europe/Berlin", "DE").accessible


WORDS = ["Mo", "Di", "Mi", "Do", "Fr", "Sa", "So", "Montag", "täglich", "feiertags", "1.",
         "im Monat", "Uhr", "von", "bis", "-", ",", ";", "und", "geschlossen", "Pause",
         "außer", "rund um die Uhr", "8", "12:00", "13.30", "18", "24", "0", "25", ":",
         "(", ")", "ab", "werktags", "Veranstaltungen", "zu", "x"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join) | st.text(max_size=40))
def test_any_text_gives_valid_osm_hours_or_a_reason_and_never_an_error(text: str) -> None:
    read = read_german_hours(text)

    if read.opening_hours is None:
        assert read.reason
    else:
        assert read.reason is None
        assert opening_hours_error(read.opening_hours) is None
