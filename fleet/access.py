"""Whether an AED can be reached at a given moment: access and OpenStreetMap `opening_hours`.

Opening hours are parsed and evaluated by the `opening_hours` library (bindings of the Rust
`opening-hours` crate), in the AED's local time zone and with its country's public holidays.
An AED whose hours are missing or cannot be parsed is treated as inaccessible, never as open.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from opening_hours import OpeningHours, ParserError, State  # type: ignore[attr-defined]

from fleet.i18n import N_

ALWAYS_OPEN = "24/7"


class Access(enum.StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


@dataclass(frozen=True)
class Accessibility:
    accessible: bool
    reason: str
    """`always_open`, `open`, `closed`, `private_access`, `hours_unknown` or `hours_unparseable`."""


ACCESS_REASONS: dict[str, str] = {
    "always_open": N_("open day and night (24/7)"),
    "open": N_("open at this time"),
    "closed": N_("closed at this time"),
    "private_access": N_("on private premises, not reachable for citizen responders"),
    "hours_unknown": N_("opening hours not registered"),
    "hours_unparseable": N_("opening hours cannot be read"),
}


class OpeningHoursError(ValueError):
    """An `opening_hours` value the parser does not accept."""


@lru_cache(maxsize=4096)
def _parse(hours: str, tz_name: str, country: str | None) -> OpeningHours:
    try:
        return OpeningHours(hours, timezone=ZoneInfo(tz_name), country=country)
    except ParserError as exc:
        raise OpeningHoursError(f"unparseable opening_hours {hours!r}: {_explain(str(exc))}") \
            from exc
    except UnicodeEncodeError as exc:  # an unpaired surrogate: no text the parser can take
        raise OpeningHoursError(f"unparseable opening_hours {hours!r}: not valid Unicode") \
            from exc


def _explain(parser_message: str) -> str:
    """The parser's position and expectation, from its multi-line message."""
    position = re.search(r"-->\s*\d+:(\d+)", parser_message)
    expected = re.search(r"=\s*(.+)", parser_message)
    parts = []
    if position:
        parts.append(f"at character {position.group(1)}")
    if expected:
        parts.append(expected.group(1).strip())
    return ", ".join(parts) or parser_message.strip().splitlines()[0]


def parse_opening_hours(hours: str, tz_name: str = "Europe/Amsterdam",
                        country: str | None = "NL") -> OpeningHours:
    """Parse an `opening_hours` value, raising `OpeningHoursError` with the parser's message."""
    return _parse(hours.strip(), tz_name, country)


def opening_hours_error(hours: str) -> str | None:
    """The parse error of an `opening_hours` value, or None when it is valid."""
    try:
        parse_opening_hours(hours)
    except OpeningHoursError as exc:
        return str(exc)
    return None


def is_always_open(hours: str | None) -> bool:
    return hours is not None and hours.strip() == ALWAYS_OPEN


def accessible_at(
    access: str,
    opening_hours: str | None,
    at: datetime,
    tz_name: str = "Europe/Amsterdam",
    country: str | None = "NL",
) -> Accessibility:
    """Whether an AED with this access and these opening hours can be fetched at `at` (aware)."""
    if access != Access.PUBLIC:
        return Accessibility(False, "private_access")
    if opening_hours is None or not opening_hours.strip():
        return Accessibility(False, "hours_unknown")
    if is_always_open(opening_hours):
        return Accessibility(True, "always_open")
    try:
        parsed = parse_opening_hours(opening_hours, tz_name, country)
    except OpeningHoursError:
        return Accessibility(False, "hours_unparseable")
    # Through UTC: a local time the clocks skip (02:30 on the spring change) becomes a real one.
    local = at.astimezone(UTC).astimezone(ZoneInfo(tz_name))
    state, _comment = parsed.state(local)
    # "unknown" (e.g. `Mo-Fr 08:00-18:00 || unknown`) is not a promise that the door is open.
    if state == State.OPEN:
        return Accessibility(True, "open")
    return Accessibility(False, "closed")
