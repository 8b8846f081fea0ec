"""Responder rules: age, certificate, quiet hours, why not alertable, registration, whereabouts."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alarm_core.policy import DispatchPolicy
from alarm_core.responders import (
    NOT_ALERTABLE,
    ResponderFacts,
    Whereabouts,
    adult_from,
    certificate_reminder_due,
    certificate_valid_until,
    in_quiet_hours,
    not_alertable_reason,
    position_at,
    registration_problems,
)

POLICY = DispatchPolicy()
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# Wednesday 17 June 2026, noon in Amsterdam.
LOCAL_NOW = datetime(2026, 6, 17, 12, 0, tzinfo=AMSTERDAM)
TODAY = LOCAL_NOW.date()

# A responder who may be alerted: adult, certified half a year ago, no quiet hours.
ALERTABLE = ResponderFacts(date_of_birth=date(1990, 5, 1), certificate_date=date(2026, 1, 10))


# --- adult_from ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("born", "min_age", "adult"),
    [
        (date(2000, 6, 17), 18, date(2018, 6, 17)),
        (date(2000, 12, 31), 18, date(2018, 12, 31)),
        (date(2000, 1, 1), 16, date(2016, 1, 1)),
        # Born on a leap day: of age on 28 February of a common year (same rule as readiness).
        (date(2004, 2, 29), 18, date(2022, 2, 28)),
        # ...and on 29 February when the birthday falls in a leap year.
        (date(2004, 2, 29), 20, date(2024, 2, 29)),
    ],
    ids=["ordinary birthday", "new year's eve", "policy minimum age 16",
         "leap day born, common year", "leap day born, leap year"],
)
def test_a_responder_is_of_age_from_the_birthday_of_the_minimum_age(
        born: date, min_age: int, adult: date) -> None:
    assert adult_from(born, DispatchPolicy(min_age_years=min_age)) == adult


# --- certificate_valid_until ------------------------------------------------------------------

@pytest.mark.parametrize(
    ("issued", "months", "last_day"),
    [
        (date(2025, 3, 15), 12, date(2026, 3, 14)),
        (date(2025, 1, 1), 12, date(2025, 12, 31)),
        (date(2024, 2, 29), 12, date(2025, 2, 27)),
        (date(2025, 1, 31), 1, date(2025, 2, 27)),
        (date(2025, 3, 15), 24, date(2027, 3, 14)),
    ],
    ids=["twelve months less a day", "first of january", "leap day certificate",
         "one month from the 31st", "policy of 24 months"],
)
def test_a_certificate_counts_until_the_day_before_its_anniversary(
        issued: date, months: int, last_day: date) -> None:
    assert certificate_valid_until(issued, DispatchPolicy(certificate_valid_months=months)) \
        == last_day


def test_the_last_day_of_a_certificate_is_inclusive() -> None:
    certified = replace(ALERTABLE, certificate_date=date(2025, 6, 18))
    assert certificate_valid_until(date(2025, 6, 18), POLICY) == TODAY
    assert not_alertable_reason(certified, LOCAL_NOW, POLICY) is None
    assert not_alertable_reason(certified, LOCAL_NOW + timedelta(days=1), POLICY) \
        == "certificate_expired"


# --- in_quiet_hours ---------------------------------------------------------------------------

QUIET = [
    # (name, quiet_from, quiet_until, local, quiet)
    ("inside a daytime window", time(9), time(17), time(12), True),
    ("at the start of a window", time(9), time(17), time(9), True),
    ("at the end of a window (exclusive)", time(9), time(17), time(17), False),
    ("a second before the end of a window", time(9), time(17), time(16, 59, 59), True),
    ("before a daytime window", time(9), time(17), time(8, 59, 59), False),
    ("wrapping window, late evening", time(22), time(7), time(23, 30), True),
    ("wrapping window, at its start", time(22), time(7), time(22), True),
    ("wrapping window, just after midnight", time(22), time(7), time(0), True),
    ("wrapping window, early morning", time(22), time(7), time(6, 59, 59), True),
    ("wrapping window, at its end", time(22), time(7), time(7), False),
    ("wrapping window, midday", time(22), time(7), time(12), False),
    ("wrapping window, a second before it starts", time(22), time(7), time(21, 59, 59), False),
    ("equal from and until mean no quiet hours", time(8), time(8), time(8), False),
    ("equal from and until, other time", time(8), time(8), time(3), False),
    ("no start", None, time(7), time(3), False),
    ("no end", time(22), None, time(23), False),
    ("neither", None, None, time(23), False),
]


@pytest.mark.parametrize(("quiet_from", "quiet_until", "local", "quiet"),
                         [case[1:] for case in QUIET], ids=[case[0] for case in QUIET])
def test_quiet_hours_are_a_half_open_window_that_may_wrap_over_midnight(
        quiet_from: time | None, quiet_until: time | None, local: time, quiet: bool) -> None:
    assert in_quiet_hours(quiet_from, quiet_until, local) is quiet


# --- not_alertable_reason ---------------------------------------------------------------------

def test_the_baseline_responder_is_alertable() -> None:
    assert not_alertable_reason(ALERTABLE, LOCAL_NOW, POLICY) is None


REASONS = [
    ("under_age", replace(ALERTABLE, date_of_birth=date(2008, 6, 18))),
    ("certificate_missing", replace(ALERTABLE, certificate_date=None)),
    ("certificate_expired", replace(ALERTABLE, certificate_date=date(2025, 6, 17))),
    ("inactive", replace(ALERTABLE, active=False)),
    ("unavailable", replace(ALERTABLE, available=False)),
    ("quiet_hours", replace(ALERTABLE, quiet_from=time(11), quiet_until=time(13))),
    ("busy", replace(ALERTABLE, busy=True)),
]


@pytest.mark.parametrize(("reason", "facts"), REASONS, ids=[r for r, _ in REASONS])
def test_each_rule_alone_gives_its_own_reason(reason: str, facts: ResponderFacts) -> None:
    assert not_alertable_reason(facts, LOCAL_NOW, POLICY) == reason
    assert reason in NOT_ALERTABLE


def test_a_responder_is_of_age_on_the_eighteenth_birthday_itself() -> None:
    facts = replace(ALERTABLE, date_of_birth=date(2008, 6, 17))
    assert not_alertable_reason(facts, LOCAL_NOW, POLICY) is None


def test_the_local_date_decides_age_not_the_utc_date() -> None:
    # 00:30 on the 18th birthday in Amsterdam is 22:30 UTC on the day before.
    facts = replace(ALERTABLE, date_of_birth=date(2008, 6, 18))
    local = datetime(2026, 6, 18, 0, 30, tzinfo=AMSTERDAM)
    assert local.astimezone(ZoneInfo("UTC")).date() == date(2026, 6, 17)
    assert not_alertable_reason(facts, local, POLICY) is None


@pytest.mark.parametrize(
    "present",
    [[REASONS[i][0] for i in range(start, len(REASONS))] for start in range(len(REASONS))],
    ids=[f"from {REASONS[start][0]}" for start in range(len(REASONS))],
)
def test_the_first_failing_rule_in_order_is_the_reason_given(present: list[str]) -> None:
    changes: dict[str, dict[str, Any]] = {
        "under_age": {"date_of_birth": date(2008, 6, 18)},
        "certificate_missing": {"certificate_date": None},
        "certificate_expired": {"certificate_date": date(2025, 6, 17)},
        "inactive": {"active": False},
        "unavailable": {"available": False},
        "quiet_hours": {"quiet_from": time(11), "quiet_until": time(13)},
        "busy": {"busy": True},
    }
    facts = ALERTABLE
    for reason in present:
        if reason == "certificate_expired" and "certificate_missing" in present:
            continue  # a missing certificate cannot also be an expired one
        facts = replace(facts, **changes[reason])
    assert not_alertable_reason(facts, LOCAL_NOW, POLICY) == present[0]


def test_the_quiet_hours_rule_uses_the_local_wall_clock_time() -> None:
    facts = replace(ALERTABLE, quiet_from=time(22), quiet_until=time(7))
    assert not_alertable_reason(facts, datetime(2026, 6, 17, 3, tzinfo=AMSTERDAM), POLICY) \
        == "quiet_hours"
    assert not_alertable_reason(facts, datetime(2026, 6, 17, 7, tzinfo=AMSTERDAM), POLICY) \
        is None


# --- registration_problems --------------------------------------------------------------------

REGISTRATIONS = [
    # (name, date_of_birth, certificate_date, problems)
    ("adult with a current certificate", date(1990, 1, 1), date(2026, 1, 1), []),
    ("adult without certificate", date(1990, 1, 1), None, []),
    ("expired certificate is allowed", date(1990, 1, 1), date(2020, 1, 1), []),
    ("certificate dated today", date(1990, 1, 1), TODAY, []),
    ("eighteen today", date(2008, 6, 17), None, []),
    ("missing date of birth", None, None, ["date_of_birth is required"]),
    ("birth date in the future", TODAY + timedelta(days=1), None,
     ["date_of_birth is in the future"]),
    ("eighteen tomorrow", date(2008, 6, 18), None, ["responders must be at least 18 years old"]),
    ("certificate dated tomorrow", date(1990, 1, 1), TODAY + timedelta(days=1),
     ["certificate_date is in the future"]),
    ("under age and a future certificate", date(2012, 1, 1), TODAY + timedelta(days=3),
     ["responders must be at least 18 years old", "certificate_date is in the future"]),
]


@pytest.mark.parametrize(("born", "certified", "problems"), [r[1:] for r in REGISTRATIONS],
                         ids=[r[0] for r in REGISTRATIONS])
def test_registration_is_refused_only_for_age_and_dates_in_the_future(
        born: date | None, certified: date | None, problems: list[str]) -> None:
    assert registration_problems(born, certified, TODAY, POLICY) == problems


def test_registration_uses_the_policy_minimum_age() -> None:
    assert registration_problems(date(2010, 1, 1), None, TODAY,
                                 DispatchPolicy(min_age_years=16)) == []
    assert registration_problems(date(2010, 1, 1), None, TODAY,
                                 DispatchPolicy(min_age_years=21)) \
        == ["responders must be at least 21 years old"]


# --- certificate_reminder_due -----------------------------------------------------------------

# A certificate of 15 July 2025 counts until 14 July 2026: 27 days after TODAY.
REMINDERS = [
    ("no certificate at all", None, TODAY, True),
    ("fresh certificate", date(2026, 6, 1), TODAY, False),
    ("runs out in exactly the reminder window", date(2025, 7, 15), date(2026, 6, 14), True),
    ("runs out a day after the reminder window", date(2025, 7, 15), date(2026, 6, 13), False),
    ("runs out today", date(2025, 7, 15), date(2026, 7, 14), True),
    ("already expired", date(2024, 1, 1), TODAY, True),
]


@pytest.mark.parametrize(("certified", "today", "due"), [r[1:] for r in REMINDERS],
                         ids=[r[0] for r in REMINDERS])
def test_a_reminder_is_due_within_thirty_days_of_the_last_valid_day(
        certified: date | None, today: date, due: bool) -> None:
    assert certificate_reminder_due(certified, today, POLICY) is due


# --- position_at ------------------------------------------------------------------------------

APP = (52.3700, 4.8900)
HOME = (52.3500, 4.9100)
WORK = (52.3800, 4.8700)
NOW = datetime(2026, 6, 17, 10, 0, tzinfo=ZoneInfo("UTC"))
MAX_AGE = timedelta(minutes=POLICY.app_location_max_age_minutes)
EVERYWHERE = Whereabouts(app=APP, app_at=NOW - timedelta(minutes=5), home=HOME, work=WORK)
STALE = replace(EVERYWHERE, app_at=NOW - MAX_AGE - timedelta(seconds=1))

WHEREABOUTS = [
    # (name, places, at_work, position, source)
    ("a fresh app location wins over work in work hours", EVERYWHERE, True, APP, "app"),
    ("a fresh app location wins over home", EVERYWHERE, False, APP, "app"),
    ("an app location exactly at the maximum age still counts",
     replace(EVERYWHERE, app_at=NOW - MAX_AGE), False, APP, "app"),
    ("a stale app location falls back to work in work hours", STALE, True, WORK, "work"),
    ("a stale app location falls back to home outside work hours", STALE, False, HOME, "home"),
    ("an app location without a time is ignored", replace(EVERYWHERE, app_at=None), False,
     HOME, "home"),
    ("no work address in work hours gives home", replace(STALE, work=None), True, HOME, "home"),
    ("no home address outside work hours gives work", replace(STALE, home=None), False,
     WORK, "work"),
    ("nothing known", Whereabouts(), True, None, "none"),
    ("only a stale app location", replace(STALE, home=None, work=None), False, None, "none"),
]


@pytest.mark.parametrize(("places", "at_work", "position", "source"),
                         [w[1:] for w in WHEREABOUTS], ids=[w[0] for w in WHEREABOUTS])
def test_a_responder_is_looked_for_at_the_freshest_known_place(
        places: Whereabouts, at_work: bool, position: tuple[float, float] | None,
        source: str) -> None:
    assert position_at(places, NOW, at_work, POLICY) == (position, source)
