"""Test count and time per database from the JUnit report that every `make test` run writes
(tests/artifacts/junit.xml): `python tools/test_figures.py [report]`.

A test parametrized over the databases carries `[sqlite` or `[postgresql` in its id (alone or
with other parameters); the rest runs once, without a database or with its own.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPORT = Path(__file__).parents[1] / "tests" / "artifacts" / "junit.xml"


def database_of(name: str) -> str:
    match = re.search(r"\[(?:.*-)?(sqlite|postgresql)(?:-.*)?\]$", name)
    return match.group(1) if match else "other"


def main(report: Path) -> None:
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome = "skipped" if case.find("skipped") is not None else \
            "failed" if case.find("failure") is not None or case.find("error") is not None \
            else "passed"
        figures = counts[database_of(case.get("name", ""))]
        figures[outcome] += 1
        figures["seconds"] += float(case.get("time", 0))
    for database in ("sqlite", "postgresql", "other"):
        figures = counts[database]
        print(f"{database:11} passed {int(figures['passed']):5}  failed "
              f"{int(figures['failed']):3}  skipped {int(figures['skipped']):3}  "
              f"{figures['seconds'] / 60:6.1f} min")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPORT)
