"""Language negotiation and locale formatting of fleet.i18n (no Flask, no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleet.i18n import (
    LANGUAGES,
    format_datetime,
    format_decimal,
    format_locale,
    negotiate,
    parse_accept_language,
    region_languages,
    translator,
)


@pytest.mark.parametrize(
    ("preferred", "expected"),
    [
        (["nl-BE", "fr"], "nl"),
        (["fr-BE", "nl"], "fr"),
        (["de_DE.UTF-8"], "de"),
        (["es", "it", "de"], "de"),
        (["es", "it"], "en"),
        ([None, "", "NL"], "nl"),
        ([], "en"),
        (["x-klingon", "1234", "en-IE"], "en"),
    ],
)
def test_negotiation_picks_the_first_preferred_language_that_is_offered(
    preferred: list[str | None], expected: str
) -> None:
    assert negotiate(preferred) == expected


def test_negotiation_falls_back_to_the_given_default_when_nothing_matches() -> None:
    assert negotiate(["es"], available=("nl", "fr"), default="nl") == "nl"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("nl-BE,nl;q=0.9,en;q=0.8", ["nl-BE", "nl", "en"]),
        ("en;q=0.5, de", ["de", "en"]),
        ("fr;q=0, de;q=0.1, *", ["de"]),
        ("de;q=abc, fr", ["fr"]),
        ("", []),
        (None, []),
    ],
)
def test_accept_language_is_ranked_by_quality_then_position(
    header: str | None, expected: list[str]
) -> None:
    assert parse_accept_language(header) == expected


def test_region_languages_keep_known_languages_in_order_default_first() -> None:
    assert region_languages("nl,fr,de") == ["nl", "fr", "de"]
    assert region_languages(" de-DE , xx, de, en") == ["de", "en"]
    assert region_languages("") == []
    assert region_languages(None) == []


def test_english_and_unknown_languages_leave_the_source_text_unchanged() -> None:
    assert translator("en").gettext("Fleet") == "Fleet"
    assert translator("es").gettext("Fleet") == "Fleet"


def test_every_language_has_a_translator() -> None:
    for language in LANGUAGES:
        assert translator(language).gettext("") is not None


def test_a_moment_is_written_in_the_locale_and_time_zone_asked_for() -> None:
    moment = datetime(2026, 3, 1, 13, 5, tzinfo=UTC)
    assert format_datetime(moment, "nl", "Europe/Amsterdam", "short") == "01-03-2026, 14:05"
    assert format_datetime(moment, "de", "Europe/Berlin", "short") == "01.03.26, 14:05"
    assert format_datetime(moment, "en", "Europe/Dublin", "short") == "01/03/2026, 13:05"
    assert format_datetime(moment, "fr", "Europe/Brussels", "short") == "01/03/2026 14:05"
    assert format_datetime(moment, "nl_BE", "Europe/Brussels", "short") == "1/03/2026, 14:05"


@pytest.mark.parametrize(
    ("language", "country", "expected"),
    [("nl", "BE", "nl_BE"), ("fr", "be", "fr_BE"), ("de", "DE", "de_DE"), ("en", "IE", "en_IE"),
     ("en", None, "en_150"), ("nl", None, "nl"), ("de", "XX", "de")],
)
def test_dates_are_written_as_the_language_is_in_the_region_country(
    language: str, country: str | None, expected: str
) -> None:
    assert format_locale(language, country) == expected


def test_a_naive_moment_is_taken_as_utc() -> None:
    noon = datetime(2026, 7, 1, 12, 0)
    assert format_datetime(noon, "nl", "Europe/Amsterdam", "HH:mm") == "14:00"


def test_numbers_use_the_locale_decimal_sign() -> None:
    assert format_decimal(1234.5, "nl") == "1.234,5"
    assert format_decimal(1234.5, "en") == "1,234.5"
    assert format_decimal(1234.5, "fr") == "1\u202f234,5"
