"""Who may be alerted: the registration checks and the alertability of a citizen responder.

Pure functions over plain data. The same rules exist in vectorised form in `pools.py` for the
in-memory index; tests hold the two to the same answers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache

from dateutil.relativedelta import relativedelta

from alarm_core.policy import DispatchPolicy


class Training(enum.StrEnum):
    MEDICAL = "medical"
    NON_MEDICAL = "non_medical"


class Channel(enum.StrEnum):
    APP = "app"
    SMS = "sms"


# Why a responder is not alerted, in words for operators and for the responder's own page.
NOT_ALERTABLE: dict[str, str] = {
    "under_age": "younger than the minimum age",
    "certificate_missing": "no CPR/AED certificate registered",
    "certificate_expired": "CPR/AED certificate expired; renew it to receive alarms again",
    "unavailable": "switched availability off",
    "quiet_hours": "inside their quiet hours",
    "inactive": "flagged inactive after unanswered alarms; confirms their profile to return",
    "busy": "already on another incident",
    "no_location": "no known location",
}


@dataclass(frozen=True)
class ResponderFacts:
    """What the alertability rules look at."""

    date_of_birth: date
    certificate_date: date | None
    available: bool = True
    quiet_from: time | None = None
    quiet_until: time | None = None
    active: bool = True
    busy: bool = False


def adult_from(date_of_birth: date, policy: DispatchPolicy) -> date:
    """The first day on which a responder born on `date_of_birth` is old enough."""
    return _plus_months(date_of_birth, 12 * policy.min_age_years, 0)


def certificate_valid_until(certificate_date: date, policy: DispatchPolicy) -> date:
    """The last day a certificate counts (refreshed yearly by default)."""
    return _plus_months(certificate_date, policy.certificate_valid_months, -1)


@lru_cache(maxsize=131_072)
def _plus_months(day: date, months: int, days: int) -> date:
    return day + relativedelta(months=months) + relativedelta(days=days)


def in_quiet_hours(quiet_from: time | None, quiet_until: time | None, local: time) -> bool:
    """Whether local wall-clock time `local` is inside [quiet_from, quiet_until), which may wrap."""
    if quiet_from is None or quiet_until is None:
        return False
    # Whole minutes, as the pools keep them: both ways of asking must give one answer.
    start, end = _minute(quiet_from), _minute(quiet_until)
    now = _minute(local)
    if start == end:
        return False
    if start < end:
        return start <= now < end
    return now >= start or now < end


def _minute(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def not_alertable_reason(facts: ResponderFacts, local_now: datetime,
                         policy: DispatchPolicy) -> str | None:
    """Why this responder must not be alerted at `local_now` (local, aware), or None."""
    today = local_now.date()
    if today < adult_from(facts.date_of_birth, policy):
        return "under_age"
    if facts.certificate_date is None:
        return "certificate_missing"
    if today > certificate_valid_until(facts.certificate_date, policy):
        return "certificate_expired"
    if not facts.active:
        return "inactive"
    if not facts.available:
        return "unavailable"
    if in_quiet_hours(facts.quiet_from, facts.quiet_until, local_now.time()):
        return "quiet_hours"
    if facts.busy:
        return "busy"
    return None


def certificate_reminder_due(certificate_date: date | None, today: date,
                             policy: DispatchPolicy) -> bool:
    """Whether the certificate runs out within the reminder window (or already has)."""
    if certificate_date is None:
        return True
    until = certificate_valid_until(certificate_date, policy)
    return (until - today).days <= policy.certificate_reminder_days


def registration_problems(date_of_birth: date | None, certificate_date: date | None,
                          today: date, policy: DispatchPolicy) -> list[str]:
    """What stops a registration being accepted, in words; empty when it may be stored.

    An expired certificate does not stop registration (the responder is stored and told to
    renew); being under age or a certificate dated in the future does.
    """
    problems = []
    if date_of_birth is None:
        problems.append("date_of_birth is required")
    elif date_of_birth > today:
        problems.append("date_of_birth is in the future")
    elif today < adult_from(date_of_birth, policy):
        problems.append(f"responders must be at least {policy.min_age_years} years old")
    if certificate_date is not None and certificate_date > today:
        problems.append("certificate_date is in the future")
    return problems


@dataclass(frozen=True)
class Whereabouts:
    """The places a responder may be: last app location (with its time), home and work."""

    app: tuple[float, float] | None = None
    app_at: datetime | None = None
    home: tuple[float, float] | None = None
    work: tuple[float, float] | None = None


def position_at(places: Whereabouts, now: datetime, at_work: bool,
                policy: DispatchPolicy) -> tuple[tuple[float, float] | None, str]:
    """Where to look for a responder at `now`: a fresh app location, else work in work hours,
    else home. Returns the position and its source (`app`, `work`, `home` or `none`)."""
    if places.app is not None and places.app_at is not None and \
            (now - places.app_at).total_seconds() <= policy.app_location_max_age_minutes * 60:
        return places.app, "app"
    if at_work and places.work is not None:
        return places.work, "work"
    if places.home is not None:
        return places.home, "home"
    if places.work is not None:
        return places.work, "work"
    return None, "none"
