"""The committed translation catalogues: compiled files in step with their sources, complete."""

from __future__ import annotations

from string import Formatter

import pytest
from babel.messages.pofile import read_po

from fleet import catalogues
from fleet.i18n import LANGUAGES


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_committed_mo_file_is_what_its_po_file_compiles_to(language: str) -> None:
    assert catalogues.mo_path(language).read_bytes() == catalogues.compiled(language), (
        f"{catalogues.mo_path(language)} is out of date: run `python tools/translations.py "
        "compile` and commit it")


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_language_has_every_string_of_the_template(language: str) -> None:
    with catalogues.TEMPLATE.open("rb") as found:
        template = {message.id for message in read_po(found) if message.id}
    with catalogues.po_path(language).open("rb") as found:
        catalogue = {message.id for message in read_po(found) if message.id}
    assert template - catalogue == set(), "run `python tools/translations.py update`"


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders_of_their_source(language: str) -> None:
    with catalogues.po_path(language).open("rb") as found:
        catalogue = read_po(found, locale=language)
    assert [(message.id, error) for message in catalogue if message.id
            for error in message.check(catalogue)] == []


def _fields(text: str) -> list[str]:
    return sorted(name for _, name, _, _ in Formatter().parse(text) if name is not None)


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_brace_placeholders_of_their_source(language: str) -> None:
    """`{incident}`-style texts (`str.format`, the SMS texts): babel checks only `%` formats."""
    with catalogues.po_path(language).open("rb") as found:
        catalogue = read_po(found, locale=language)
    braced = [message for message in catalogue
              if message.id and "python-brace-format" in message.flags]
    assert braced, "the SMS texts are extracted as python-brace-format"
    assert [(message.id, message.string) for message in braced
            if message.string and _fields(message.id) != _fields(message.string)] == []


def test_coverage_counts_strings_translated_and_fuzzy_per_language() -> None:
    for language in LANGUAGES:
        found = catalogues.coverage(language)
        assert found.total > 300
        assert found.translated + found.fuzzy <= found.total
        assert 0.0 <= found.share <= 1.0
