"""The console's language and time zone (Flask-Babel), the header's language switcher, and the
templates' helpers that write times, dates and numbers the way the reader's locale does.

The language of a page, first that applies: the logged-in account's own (`ConsoleUser.locale`),
the language chosen in the switcher (a cookie; anonymous visitors too), the first language of
the account's region, the browser's `Accept-Language`, English. Times are shown in the
account's region's time zone, else `settings.timezone`. See docs/languages.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from flask import Blueprint, Flask, g, make_response, redirect, request, url_for
from flask_babel import Babel
from flask_babel import format_date as babel_format_date
from flask_babel import format_datetime as babel_format_datetime
from flask_babel import format_decimal as babel_format_decimal
from flask_babel import format_time as babel_format_time
from flask_login import current_user
from markupsafe import Markup, escape
from sqlmodel import Session
from werkzeug.wrappers import Response

from fleet.db import session_scope
from fleet.i18n import (
    LANGUAGES,
    TRANSLATIONS_DIR,
    format_locale,
    negotiate,
    parse_accept_language,
    primary_language,
)
from fleet.locales import AccountLanguage, Place, account_language, set_account_locale
from web.context import engine, settings

COOKIE = "aedfleet_language"
COOKIE_DAYS = 365
LANGUAGE_NAMES = {"nl": "Nederlands", "en": "English", "de": "Deutsch", "fr": "Français"}
"""Each language in its own words, as the switcher offers it."""
SAFE_NEXT = re.compile(r"/(?![/\\])[!-~]*")

bp = Blueprint("language", __name__)


@dataclass(frozen=True)
class Reader:
    """Who reads the page: their language, the locale that writes numbers, their time zone."""

    language: str
    locale: str
    timezone: str


def init_app(app: Flask) -> None:
    """Flask-Babel over the shared catalogues, the switcher's route, the templates' helpers."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    Babel(app, default_locale="en", locale_selector=lambda: reader().locale,
          timezone_selector=lambda: reader().timezone)
    app.register_blueprint(bp)
    app.jinja_env.globals.update(
        when=when, day=day, month=month, clock=clock, number=number, percent=percent,
        page_language=page_language, languages=lambda: LANGUAGE_NAMES)


def reader() -> Reader:
    """The request's reader, worked out once per request."""
    found: Reader | None = g.get("aedfleet_reader")
    if found is None:
        found = g.aedfleet_reader = _reader()
    return found


def _reader() -> Reader:
    mine = AccountLanguage(None, Place())
    if current_user.is_authenticated:
        with Session(engine()) as session:
            mine = account_language(session, current_user.account.id)
    chosen = request.cookies.get(COOKIE)
    language = negotiate([mine.locale, chosen if chosen in LANGUAGES else None,
                          *mine.place.languages,
                          *parse_accept_language(request.headers.get("Accept-Language"))])
    return Reader(language, format_locale(language, mine.place.country),
                  mine.place.timezone or settings().timezone)


def page_language() -> str:
    """The language the page is written in: its `lang` attribute."""
    return reader().language


@bp.post("/language")
def choose() -> Response:
    """The switcher: remember the language (cookie; the account's too) and go back."""
    language = primary_language(request.form.get("language"))
    target = request.form.get("next", "")
    if SAFE_NEXT.fullmatch(target) is None:
        target = url_for("auth.home")
    response = make_response(redirect(target, code=303))
    if language not in LANGUAGES:
        return response
    if current_user.is_authenticated:
        with session_scope(engine()) as session:
            set_account_locale(session, current_user.account.id, language)
    web = settings().web
    response.set_cookie(COOKIE, language, max_age=COOKIE_DAYS * 86_400, httponly=True,
                        samesite="Lax", secure=web.secure_cookies)
    return response


# -- the templates' helpers -----------------------------------------------------------------------

def _iso(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def when(moment: datetime | str | None, style: str = "short", empty: str = "—") -> Markup:
    """A moment (or an ISO 8601 string of one) in the reader's time zone and locale, inside
    `<time datetime="…Z">`: `short` to the minute, `medium` to the second."""
    if moment is None or moment == "":
        return Markup(escape(empty))
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            return Markup(escape(moment))
    try:
        shown = babel_format_datetime(moment, style)
    except OverflowError:  # a device's time at the calendar's edge: past year 9999 locally
        shown = _iso(moment)
    return Markup('<time datetime="{}">{}</time>').format(_iso(moment), shown)


def clock(moment: datetime) -> Markup:
    """Only the time of day, to the second, in the reader's time zone."""
    try:
        shown = babel_format_time(moment, "medium")
    except OverflowError:
        shown = _iso(moment)
    return Markup('<time datetime="{}">{}</time>').format(_iso(moment), shown)


def day(value: date | str | None, empty: str = "—") -> Markup:
    """A calendar date (`1 mrt 2026`); an ISO string is read first, anything else shown as is."""
    if value is None or value == "":
        return Markup(escape(empty))
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            return Markup(escape(value))
    if isinstance(value, datetime):
        value = value.date()
    return Markup('<time datetime="{}">{}</time>').format(
        value.isoformat(), babel_format_date(value, "medium"))


def tick_label(moment: datetime) -> str:
    """A chart's time tick: day, short month and time (`01 mrt 14:05`)."""
    return babel_format_datetime(moment, "dd MMM HH:mm")


def month(value: date) -> str:
    """A month and year, spelled out (`maart 2026`)."""
    return babel_format_date(value, "LLLL y")


def number(value: float | int | Decimal | None, digits: int = 0, empty: str = "—") -> str:
    """A number with the locale's decimal and grouping signs and `digits` decimals."""
    if value is None:
        return empty
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return babel_format_decimal(value, pattern)


def percent(share: float, digits: int = 1) -> str:
    """A share (0..1) as a number of per cent, without the sign (the text adds ` %`)."""
    return number(100 * share, digits)
