"""Languages of aedfleet's texts, usable without Flask (e-mails, alerts, SMS, the questionnaire).

One gettext domain, `messages`, in `fleet/translations/<lang>/LC_MESSAGES/`; the console
(Flask-Babel) reads the same catalogues. Source strings are English, so `en` needs no
translation. Mark a string for extraction where it is defined with `N_()` and translate it
where it is shown: `translator(locale).gettext(text)`. See docs/languages.md.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers

LANGUAGES: tuple[str, ...] = ("nl", "en", "de", "fr")
"""The languages aedfleet speaks; English is the source language."""
DEFAULT_LANGUAGE = "en"
DEFAULT_FORMATS = {"en": "en_150"}
"""Where a language has no country: English as written in Europe (24-hour clock, day first)."""
DOMAIN = "messages"
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"

Translations = gettext.GNUTranslations | gettext.NullTranslations
DateFormat = Literal["short", "medium", "long", "full"] | str

_TAG = re.compile(r"^[A-Za-z]{2,3}")


def N_(message: str) -> str:
    """Mark `message` for extraction without translating it (translate where it is shown)."""
    return message


def primary_language(tag: str | None) -> str | None:
    """The language part of a tag, lower case: `nl-BE` -> `nl`, `de_DE.UTF-8` -> `de`."""
    if not tag:
        return None
    match = _TAG.match(tag.strip())
    return match.group(0).lower() if match else None


def negotiate(
    preferred: Iterable[str | None],
    available: Sequence[str] = LANGUAGES,
    default: str = DEFAULT_LANGUAGE,
) -> str:
    """The first of `preferred` (tags like `nl-BE`, best first) that is offered, else `default`."""
    offered = {language.lower() for language in available}
    for tag in preferred:
        language = primary_language(tag)
        if language and language in offered:
            return language
    return default


def parse_accept_language(header: str | None) -> list[str]:
    """The language tags of an HTTP `Accept-Language` header, best first (q=0 dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def region_languages(languages: str | None) -> list[str]:
    """A region's comma-separated `languages` column as a list of known languages, default first."""
    found: list[str] = []
    for tag in (languages or "").split(","):
        language = primary_language(tag)
        if language in LANGUAGES and language not in found:
            found.append(language)
    return found


@lru_cache(maxsize=16)
def translator(locale: str | None) -> Translations:
    """The catalogue of `locale` (a language or tag); English or an unknown language: none."""
    language = negotiate([locale], default=DEFAULT_LANGUAGE)
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    return gettext.translation(
        DOMAIN, localedir=str(TRANSLATIONS_DIR), languages=[language], fallback=True
    )


def format_datetime(
    moment: datetime,
    locale: str | None,
    tz: str | ZoneInfo | None = None,
    format: DateFormat = "medium",
) -> str:
    """`moment` (naive is taken as UTC) in time zone `tz`, written the way `locale` writes it."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    return babel_dates.format_datetime(
        moment, format=format, tzinfo=zone, locale=_babel_locale(locale)
    )


def format_date(day: date, locale: str | None, format: DateFormat = "medium") -> str:
    """A calendar date written the way `locale` writes it."""
    return babel_dates.format_date(day, format=format, locale=_babel_locale(locale))


def format_decimal(number: float | Decimal | int, locale: str | None) -> str:
    """A number with the decimal and grouping signs of `locale` (`1.234,5` in Dutch)."""
    return babel_numbers.format_decimal(number, locale=_babel_locale(locale))


def format_locale(locale: str | None, country: str | None = None) -> str:
    """The CLDR locale that writes dates and numbers: the language as written in `country`
    (`nl` in `BE`: `nl_BE`) when CLDR knows it, else the language's default."""
    language = negotiate([locale])
    if country:
        try:
            return str(Locale.parse(f"{language}_{country.upper()}"))
        except (UnknownLocaleError, ValueError):
            pass
    return DEFAULT_FORMATS.get(language, language)


def _babel_locale(locale: str | None) -> str:
    """`locale` as given when it is a known locale of one of our languages (`nl_BE`), else
    the default locale of its language."""
    if locale and primary_language(locale) in LANGUAGES and "_" in locale.replace("-", "_"):
        try:
            return str(Locale.parse(locale.replace("-", "_")))
        except (UnknownLocaleError, ValueError):
            pass
    return format_locale(locale)
