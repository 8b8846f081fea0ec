"""Translation catalogues of aedfleet: `extract`, `update`, `compile`, `coverage`, `check`.

    python tools/translations.py extract    # marked strings -> fleet/translations/messages.pot
    python tools/translations.py update     # .pot -> every language's .po (new strings empty)
    python tools/translations.py compile    # .po -> .mo (commit both)
    python tools/translations.py coverage   # per language: strings, translated, fuzzy, share
    python tools/translations.py check      # exit 1 when a .mo is not what its .po compiles to

`update` without `extract` first updates to the template as it is. See docs/languages.md.
"""

from __future__ import annotations

import argparse
import sys

from fleet import catalogues
from fleet.i18n import LANGUAGES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("extract", "update", "compile", "coverage", "check"))
    command = parser.parse_args(argv).command
    if command == "extract":
        template = catalogues.extract()
        print(f"{len(template)} strings -> {catalogues.TEMPLATE.relative_to(catalogues.ROOT)}")
    elif command == "update":
        for path in catalogues.update():
            print(f"updated {path.relative_to(catalogues.ROOT)}")
    elif command == "compile":
        for path in catalogues.compile_all():
            print(f"compiled {path.relative_to(catalogues.ROOT)}")
    elif command == "coverage":
        print(f"{'language':<9} {'strings':>7} {'translated':>10} {'fuzzy':>5} {'share':>7}")
        for language in LANGUAGES:
            found = catalogues.coverage(language)
            print(f"{language:<9} {found.total:>7} {found.translated:>10} {found.fuzzy:>5} "
                  f"{found.share:>7.1%}")
    else:
        stale = catalogues.out_of_sync()
        if stale:
            print(f"out of date .mo files: {', '.join(stale)}: run `tools/translations.py "
                  "compile`", file=sys.stderr)
            return 1
        print("every .mo file matches its .po file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
