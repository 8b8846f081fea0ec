"""Whose language and time zone a text is written in: console accounts, managers, regions.

The rules themselves live in `fleet.i18n` (no database); this module reads the rows they need.
A manager has no language of their own: their e-mails take the language of a console account
linked to them (`ConsoleUser.manager_id`, the oldest account with a language first), else the
first language of that account's region, else English. See docs/languages.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from fleet.i18n import DEFAULT_LANGUAGE, LANGUAGES, negotiate, primary_language, region_languages
from fleet.models import ConsoleUser, Region


@dataclass(frozen=True)
class Place:
    """What a region says about language and time: its languages (default first), zone, country."""

    languages: tuple[str, ...] = ()
    timezone: str | None = None
    country: str | None = None


@dataclass(frozen=True)
class AccountLanguage:
    """A console account's own language (None: not chosen) and its region's `Place`."""

    locale: str | None
    place: Place


def region_place(session: Session, code: str | None) -> Place:
    """The languages, time zone and country of region `code` (unknown or none: empty)."""
    if not code:
        return Place()
    region = session.get(Region, code)
    if region is None:
        return Place()
    return Place(tuple(region_languages(region.languages)), region.timezone or None,
                 region.country or None)


def account_language(session: Session, user_id: int) -> AccountLanguage:
    """The account's chosen language and its region's place."""
    user = session.get(ConsoleUser, user_id)
    if user is None:
        return AccountLanguage(None, Place())
    locale = primary_language(user.locale)
    return AccountLanguage(locale if locale in LANGUAGES else None,
                           region_place(session, user.region))


def set_account_locale(session: Session, user_id: int, locale: str) -> None:
    """Save the account's language (one of `LANGUAGES`); no commit."""
    if locale not in LANGUAGES:
        raise ValueError(f"unknown language {locale!r}; one of {', '.join(LANGUAGES)}")
    user = session.get(ConsoleUser, user_id)
    if user is not None:
        user.locale = locale


def manager_language(session: Session, manager_id: int | None) -> tuple[str, Place]:
    """The language of a manager's e-mails and the place (time zone) they are written for."""
    if manager_id is None:
        return DEFAULT_LANGUAGE, Place()
    users = session.exec(
        select(ConsoleUser).where(ConsoleUser.manager_id == manager_id,
                                  col(ConsoleUser.disabled_at).is_(None))
        .order_by(col(ConsoleUser.created_at), col(ConsoleUser.id))).all()
    chosen = next((u for u in users if primary_language(u.locale) in LANGUAGES), None)
    region = next((u.region for u in ([chosen] if chosen else []) + list(users) if u.region),
                  None)
    place = region_place(session, region)
    if chosen is not None:
        return negotiate([chosen.locale]), place
    return negotiate(list(place.languages)), place
