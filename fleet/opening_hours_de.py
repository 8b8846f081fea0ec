"""German free-text opening hours ("Mo-Fr 8-18 Uhr", "Di-So 10-17, 1. Do im Monat 10-22")
read into OpenStreetMap `opening_hours`.

Registries such as Cologne's write hours as people say them. This module reads the common
patterns -- days and day ranges (`Mo`, `Di.`, `Montag`, `Mo-Fr`, `Mo bis Fr`, `täglich`),
public holidays (`feiertags`), the n-th weekday of the month (`1. Do im Monat`), time spans
(`8-18 Uhr`, `7:30 - 12:00`, `6.00-19.30`, `von 8 bis 12 und 14 bis 18 Uhr`), closed days
(`Sa, So geschlossen`, `außer feiertags`), a break (`Pause von 13:00 - 13:30`) and
`rund um die Uhr` -- and refuses everything else with a reason.

It never guesses: text it cannot read completely gives None, and an AED without hours is
never sent as open. Where the text is ambiguous it takes the reading that opens less:

* a rule for fewer days overrides one for more days (`Mo-Fr 8-18, Mi 8-12`: Wednesday
  closes at 12), the n-th weekday of a month overrides the weekdays, and holidays override both;
* a break is taken out of every day (the text seldom says which days it means);
* additions that give no hours (`und zu Veranstaltungen`) are left out and named in `dropped`;
* `werktags` (Monday to Friday, or to Saturday?) and day groups that partly overlap are refused.

Pure: no I/O; the result is checked with the same parser the fleet evaluates hours with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from fleet.access import opening_hours_error

OSM_DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
ALL_DAYS = frozenset(range(7))
DAY_MINUTES = 24 * 60

_DAY_WORDS = {
    "mo": 0, "montag": 0, "di": 1, "dienstag": 1, "mi": 2, "mittwoch": 2,
    "do": 3, "donnerstag": 3, "fr": 4, "freitag": 4, "sa": 5, "samstag": 5, "sonnabend": 5,
    "so": 6, "sonntag": 6,
}
_ORDINAL_WORDS = {"erste": 1, "zweite": 2, "dritte": 3, "vierte": 4, "fünfte": 5,
                  "letzte": -1}
_DAY = (r"(?:montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonnabend|sonntag)s?"
        r"|(?:mo|di|mi|do|fr|sa|so)\b\.?")

# Additions that could only give more opening time, and name none: left out. One ends the
# rule before it, so the days or hours around it never join ("Sa und bei Bedarf So 10-12").
_ADDITIONS = re.compile(
    r"[,;]?\s*(?:und|sowie|oder)\s+(?:zu|bei|nach|während)\s+(?:den\s+)?"
    r"(?:veranstaltungen|vereinbarung|absprache|bedarf)\s*[,;]?", re.IGNORECASE)
# Text that refers to hours without giving any.
_NO_HOURS = re.compile(
    r"öffnungszeit|geschäftszeit|dienstzeit|betriebszeit|sprechzeit|vereinbarung|absprache"
    r"|bedarf|anfrage|veranstaltung|aushang")
_AMBIGUOUS = {
    "werktags": "'werktags' may mean Monday to Friday or Monday to Saturday",
    "werktag": "'werktags' may mean Monday to Friday or Monday to Saturday",
    "wochentags": "'wochentags' may mean Monday to Friday or Monday to Saturday",
}

_TOKEN = re.compile(
    rf"""
    (?P<always>rund\s+um\s+die\s+uhr|24\s*/\s*7|24\s*(?:h|std\.?|stunden)\b)
    |(?P<daily>täglich|tägl\.?|alle\s+tage|jeden\s+tag)
    |(?P<ordinal>(?:(?P<number>[1-5])\.|(?P<word>erste|zweite|dritte|vierte|fünfte|letzte)[nrs]?)
                 \s*(?=(?:{_DAY})))
    |(?P<space>\s+|\b(?:geöffnet|geoeffnet|offen|zugänglich|erreichbar|frei|durchgehend
                       |jeden|jede|jeder|uhr)\b)
    |(?P<month>im\s+monat|des\s+monats|eines\s+monats)
    |(?P<holiday>(?:an\s+)?feiertag(?:en|s|e)?)
    |(?P<day>{_DAY})
    |(?P<closed>geschlossen|ruhetag)
    |(?P<pause>(?:mittags)?pause)
    |(?P<except>au(?:ß|ss)er|nicht\s+an|nicht)
    |(?P<von>von)
    |(?P<open_end>ab)
    |(?P<time>(?P<hour>\d{{1,2}})(?:[:.](?P<minute>\d{{2}}))?(?:\s*uhr\b|\s*h\b)?)
    |(?P<dash>-|bis\b)
    |(?P<comma>,|\(|\))
    |(?P<semicolon>;|\n)
    |(?P<colon>:)
    |(?P<und>und\b|sowie\b|&|\+)
    |(?P<word_>\S+)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class GermanHours:
    """What a German opening-hours text says in OSM syntax, or why it cannot be read."""

    text: str
    opening_hours: str | None
    reason: str | None = None
    """Why `opening_hours` is None."""
    dropped: tuple[str, ...] = ()
    """Parts of the text left out because they give no hours (they could only add some)."""


class _Unreadable(ValueError):
    """The text cannot be read safely; the message says why."""


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    value: int = 0  # minutes of a time, the day of a day, the n of an ordinal


Span = tuple[int, int]  # minutes from midnight; an end before the start runs past midnight


@dataclass(frozen=True)
class _Rule:
    days: frozenset[int]  # weekdays 0-6; empty for a holiday rule
    spans: tuple[Span, ...] | None  # None: closed
    nth: int = 0  # the n-th `days` of the month (-1: the last)
    holiday: bool = False


def read_german_hours(text: str) -> GermanHours:
    """Read a German opening-hours text; None with a reason when it cannot be read safely."""
    cleaned = " ".join(text.replace("–", "-").replace("—", "-").replace("‑", "-").split())
    dropped = tuple(m.group(0).strip(" ,;") for m in _ADDITIONS.finditer(cleaned))
    cleaned = _ADDITIONS.sub("; ", cleaned).strip(" ,;.").lower()
    try:
        if not cleaned:
            raise _Unreadable("no hours given")
        rules, pauses = _parse(_tokens(cleaned))
        hours = _to_osm(rules, pauses)
    except _Unreadable as exc:
        return GermanHours(text, None, str(exc), dropped)
    error = opening_hours_error(hours)
    if error:  # a pattern read into something the parser refuses: a bug here, never guessed
        return GermanHours(text, None, f"read as {hours!r}, which is not valid: {error}",
                           dropped)
    return GermanHours(text, hours, None, dropped)


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        word = match.group(0)
        if kind == "space":
            continue
        if kind == "word_":
            if word.rstrip(".,;") in _AMBIGUOUS:
                raise _Unreadable(_AMBIGUOUS[word.rstrip(".,;")])
            if _NO_HOURS.search(text):
                raise _Unreadable("refers to opening hours without giving them")
            raise _Unreadable(f"cannot read {word!r}")
        assert kind is not None
        if kind == "open_end":
            raise _Unreadable("'ab' gives no closing time")
        if kind == "always":
            found += [_Token("time", word, 0), _Token("dash", "-"),
                      _Token("time", word, DAY_MINUTES)]
        elif kind == "time":
            hour, minute = int(match.group("hour")), int(match.group("minute") or 0)
            if hour > 24 or minute > 59 or (hour == 24 and minute):
                raise _Unreadable(f"{word!r} is not a time of day")
            found.append(_Token("time", word, hour * 60 + minute))
        elif kind == "day":
            name = word.rstrip(".")
            found.append(_Token("day", word, _DAY_WORDS.get(name, _DAY_WORDS.get(name[:-1], 0))))
        elif kind == "ordinal":
            number = match.group("number")
            nth = int(number) if number else _ORDINAL_WORDS[match.group("word")]
            found.append(_Token("ordinal", word, nth))
        else:
            found.append(_Token(kind, word))
    return found


_WHAT = {"dash": "'-' or 'bis'", "time": "a time", "day": "a day", "month": "'im Monat'",
         "comma": "','", "semicolon": "';'", "end": "the end", "daily": "'täglich'",
         "holiday": "'feiertags'", "ordinal": "'1.'"}


class _Reader:
    """A cursor over the tokens."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self, ahead: int = 0) -> str:
        index = self.at + ahead
        return self.tokens[index].kind if index < len(self.tokens) else "end"

    def take(self, *kinds: str) -> _Token:
        token = self.tokens[self.at] if self.at < len(self.tokens) else _Token("end", "")
        if token.kind not in kinds:
            where = f"at {token.text!r}" if token.text else "at the end"
            raise _Unreadable(f"expected {' or '.join(_WHAT.get(k, k) for k in kinds)} {where}")
        self.at += 1
        return token


def _parse(tokens: list[_Token]) -> tuple[list[_Rule], list[Span]]:
    """Rules in the order written, and the breaks."""
    reader = _Reader(tokens)
    rules: list[_Rule] = []
    pauses: list[Span] = []
    while reader.peek() != "end":
        kind = reader.peek()
        if kind == "pause":
            reader.take("pause")
            pauses += _spans(reader)
        elif kind == "except":
            reader.take("except")
            rules += _rules_for(_day_selectors(reader), None)
        elif kind in ("time", "von"):
            if rules:
                raise _Unreadable("hours without days after a rule")
            rules += _rules_for([(ALL_DAYS, 0, False)], _spans(reader))
        else:
            selectors = _day_selectors(reader)
            if reader.peek() == "colon":
                reader.take("colon")
            if reader.peek() == "closed":
                reader.take("closed")
                rules += _rules_for(selectors, None)
            else:
                rules += _rules_for(selectors, _spans(reader))
        if reader.peek() in ("comma", "semicolon", "und"):
            reader.take("comma", "semicolon", "und")
        elif reader.peek() not in ("end", "pause", "except"):
            reader.take("comma", "semicolon", "end")
    if not any(rule.spans for rule in rules):
        raise _Unreadable("no opening time given")
    return rules, pauses


Selector = tuple[frozenset[int], int, bool]  # days, n-th of the month (0: every), holiday


def _day_selectors(reader: _Reader) -> list[Selector]:
    """`Mo-Fr`, `Di, Mi und Fr`, `täglich`, `feiertags`, `1. Do im Monat`, in any list."""
    selectors: list[Selector] = []
    while True:
        kind = reader.peek()
        if kind == "day":
            first = reader.take("day").value
            if reader.peek() == "dash" and reader.peek(1) == "day":
                reader.take("dash")
                last = reader.take("day").value
                days = frozenset((first + i) % 7 for i in range((last - first) % 7 + 1))
            else:
                days = frozenset({first})
            selectors.append((days, 0, False))
        elif kind == "daily":
            reader.take("daily")
            selectors.append((ALL_DAYS, 0, False))
        elif kind == "holiday":
            reader.take("holiday")
            selectors.append((frozenset(), 0, True))
        elif kind == "ordinal":
            nth = reader.take("ordinal").value
            day = reader.take("day").value
            reader.take("month")
            selectors.append((frozenset({day}), nth, False))
        else:
            reader.take("day", "daily", "holiday", "ordinal")
        # A comma or "und" between two day words continues the list.
        if reader.peek() in ("comma", "und") and reader.peek(1) in (
                "day", "daily", "holiday", "ordinal"):
            reader.take("comma", "und")
            continue
        if reader.peek() in ("day", "daily", "holiday", "ordinal"):
            continue
        return selectors


def _spans(reader: _Reader) -> list[Span]:
    """`8-18 Uhr`, `von 8 bis 12 und 14 bis 18 Uhr`, `8-12, 14-18`: one or more spans."""
    spans: list[Span] = []
    while True:
        if reader.peek() == "von":
            reader.take("von")
        start = reader.take("time").value
        reader.take("dash")
        end = reader.take("time").value
        if start == end:
            raise _Unreadable("a time span must not be empty")
        if start == DAY_MINUTES:
            raise _Unreadable("a time span cannot start at 24:00")
        spans.append((start, end))
        if reader.peek() in ("comma", "und") and reader.peek(1) in ("time", "von"):
            reader.take("comma", "und")
            continue
        return spans


def _rules_for(selectors: list[Selector], spans: list[Span] | None) -> list[_Rule]:
    """One rule for the listed weekdays together, one for each n-th weekday and holidays."""
    frozen = None if spans is None else tuple(spans)
    weekdays = frozenset().union(*(days for days, nth, holiday in selectors
                                   if not nth and not holiday))
    rules = [_Rule(days=weekdays, spans=frozen)] if weekdays else []
    return rules + [_Rule(days=days, spans=frozen, nth=nth, holiday=holiday)
                    for days, nth, holiday in selectors if nth or holiday]


def _to_osm(rules: list[_Rule], pauses: list[Span]) -> str:
    """The rules in OSM syntax: weekdays (general before special), n-th weekdays, holidays."""
    weekly = _merge_weekly([r for r in rules if not r.nth and not r.holiday])
    ordered = (weekly + _merge_same([r for r in rules if r.nth])
               + _merge_same([r for r in rules if r.holiday]))
    ordered = [_without_pauses(rule, pauses) for rule in ordered]
    if len(ordered) == 1 and ordered[0].days == ALL_DAYS and not ordered[0].nth \
            and ordered[0].spans == ((0, DAY_MINUTES),):
        return "24/7"
    return "; ".join(f"{_selector(rule)} {_times(rule.spans)}" for rule in ordered)


def _merge_same(rules: list[_Rule]) -> list[_Rule]:
    """Rules for the same days given twice as one with both spans; open and closed both
    cannot be read safely (in OSM the later would win)."""
    merged: list[_Rule] = []
    for rule in rules:
        same = next((i for i, kept in enumerate(merged)
                     if (kept.days, kept.nth, kept.holiday) == (rule.days, rule.nth,
                                                                 rule.holiday)), None)
        if same is None:
            merged.append(rule)
            continue
        kept = merged[same]
        if kept.spans is None or rule.spans is None:
            if kept.spans != rule.spans:
                raise _Unreadable(f"{_selector(rule)} is given as both open and closed")
            continue
        merged[same] = _Rule(rule.days, kept.spans + rule.spans, rule.nth, rule.holiday)
    return merged


def _merge_weekly(rules: list[_Rule]) -> list[_Rule]:
    """Same days given twice: both spans; a rule for a subset of another's days after it;
    day groups that only partly overlap cannot be read safely."""
    merged = _merge_same(rules)
    for a, b in ((a, b) for i, a in enumerate(merged) for b in merged[i + 1:]):
        if a.days & b.days and not (a.days <= b.days or b.days <= a.days):
            raise _Unreadable(f"day groups {_days(a.days)} and {_days(b.days)} overlap")
    depth = {id(r): sum(r.days < other.days for other in merged) for r in merged}
    return sorted(merged, key=lambda r: depth[id(r)])  # stable: the written order otherwise


def _without_pauses(rule: _Rule, pauses: list[Span]) -> _Rule:
    if rule.spans is None or not pauses:
        return rule
    spans = list(rule.spans)
    for pause_start, pause_end in pauses:
        if pause_end <= pause_start:
            raise _Unreadable("a break past midnight")
        kept: list[Span] = []
        for start, end in spans:
            if end <= start:  # past midnight: the break is taken out of the evening part only
                raise _Unreadable("a break in hours past midnight")
            if pause_end <= start or pause_start >= end:
                kept.append((start, end))
                continue
            if start < pause_start:
                kept.append((start, pause_start))
            if pause_end < end:
                kept.append((pause_end, end))
        spans = kept
    return _Rule(rule.days, tuple(spans) if spans else None, rule.nth, rule.holiday)


def _selector(rule: _Rule) -> str:
    if rule.holiday:
        return "PH"
    if rule.nth:
        (day,) = rule.days
        return f"{OSM_DAYS[day]}[{rule.nth}]"
    return _days(rule.days)


def _days(days: frozenset[int]) -> str:
    """`Mo,We,Fr`, `Tu-Su`, `Tu,We,Fr-Su` (a range from three days on)."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{OSM_DAYS[run[0]]}-{OSM_DAYS[run[-1]]}")
        else:
            parts += [OSM_DAYS[day] for day in run]
    return ",".join(parts)


def _times(spans: tuple[Span, ...] | None) -> str:
    if spans is None:
        return "off"
    ordered = sorted(spans)
    for (_, end), (start, _) in pairwise(ordered):
        if start < end:
            raise _Unreadable("time spans of one day overlap")
    return ",".join(f"{_clock(start)}-{_clock(end)}" for start, end in ordered)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
