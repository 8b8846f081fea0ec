"""Upkeep of the translation catalogues (babel.messages): extract, update, compile, coverage.

The catalogues live in `fleet/translations/<lang>/LC_MESSAGES/messages.po`, compiled beside
them to `messages.mo` (committed, so a clean checkout runs without a build step). The command
line is `tools/translations.py`; docs/languages.md says when to run what.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from fleet.i18n import DEFAULT_LANGUAGE, DOMAIN, LANGUAGES, TRANSLATIONS_DIR

logger = logging.getLogger(__name__)

ROOT = TRANSLATIONS_DIR.parents[1]
"""The source tree's root, where `babel.cfg` names what to read."""
TEMPLATE = TRANSLATIONS_DIR / f"{DOMAIN}.pot"
SOURCES = ("fleet", "alarm_core", "web")
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "lazy_gettext": None}
HEADER = "Translations of aedfleet: the console, manager e-mails, alerts and the questionnaire."


@dataclass(frozen=True)
class Coverage:
    """How much of one language's catalogue is translated."""

    language: str
    total: int
    translated: int
    fuzzy: int

    @property
    def share(self) -> float:
        return self.translated / self.total if self.total else 1.0


def po_path(language: str) -> Path:
    return TRANSLATIONS_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_path(language: str) -> Path:
    return po_path(language).with_suffix(".mo")


def extract(root: Path = ROOT) -> Catalog:
    """Every marked string of the sources, as a template catalogue written to `TEMPLATE`."""
    template = Catalog(project="aedfleet", msgid_bugs_address=None, header_comment=f"# {HEADER}",
                       charset="utf-8", creation_date=datetime(2026, 1, 1))
    with (root / "babel.cfg").open() as config:
        methods, options = parse_mapping_cfg(config, "babel.cfg")
    for source in SOURCES:
        for filename, lineno, message, comments, context in extract_from_dir(
                root / source, methods, options, KEYWORDS,
                comment_tags=("TRANSLATORS:",), strip_comment_tags=True):
            template.add(message, None, [(f"{source}/{filename}", lineno)],
                         auto_comments=comments, context=context)
    with TEMPLATE.open("wb") as out:
        write_po(out, template, width=100, sort_output=True, omit_header=False)
    return template


def update() -> list[Path]:
    """Bring every language's catalogue up to `TEMPLATE` (new languages start empty)."""
    written = []
    for language in LANGUAGES:
        with TEMPLATE.open("rb") as found:
            template = read_po(found)  # afresh: a catalogue's update takes over its messages
        path = po_path(language)
        if path.exists():
            with path.open("rb") as found:
                catalogue = read_po(found, locale=language)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalogue = Catalog(locale=language, project="aedfleet", charset="utf-8",
                                header_comment=f"# {HEADER}", creation_date=datetime(2026, 1, 1))
        catalogue.update(template, no_fuzzy_matching=False, update_creation_date=False)
        if language == DEFAULT_LANGUAGE:
            for message in catalogue:  # the source language translates itself
                if message.id:
                    message.string = message.id
                    message.flags.discard("fuzzy")
        catalogue.obsolete.clear()
        with path.open("wb") as out:
            write_po(out, catalogue, width=100, sort_output=True, include_previous=False)
        written.append(path)
    return written


def compiled(language: str) -> bytes:
    """The `.mo` file that the language's `.po` file compiles to (fuzzy entries left out)."""
    with po_path(language).open("rb") as found:
        catalogue = read_po(found, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalogue, use_fuzzy=False)
    return buffer.getvalue()


def compile_all() -> list[Path]:
    """Write every language's `.mo` file from its `.po` file."""
    written = []
    for language in LANGUAGES:
        mo_path(language).write_bytes(compiled(language))
        written.append(mo_path(language))
    return written


def out_of_sync() -> list[str]:
    """The languages whose committed `.mo` file is not what their `.po` file compiles to."""
    return [language for language in LANGUAGES
            if not mo_path(language).exists() or mo_path(language).read_bytes() != compiled(
                language)]


def coverage(language: str) -> Coverage:
    """Strings in the catalogue, translated (not fuzzy, every plural form), fuzzy."""
    with po_path(language).open("rb") as found:
        catalogue = read_po(found, locale=language)
    total = translated = fuzzy = 0
    for message in catalogue:
        if not message.id:
            continue  # the header
        total += 1
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy:
            fuzzy += 1
        elif all(strings):
            translated += 1
    return Coverage(language, total, translated, fuzzy)
