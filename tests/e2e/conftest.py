"""The `aedfleet` executable as a user runs it: a subprocess in a folder holding `config/`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .cli import AEDFLEET, Cli

CONFIG = Path(__file__).parents[2] / "config"


def user_environment() -> dict[str, str]:
    """The caller's environment without any aedfleet setting, so that only the test's count."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AEDFLEET_")}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An operator's folder: a copy of the shipped `config/`, nothing else."""
    folder = tmp_path / "site"
    shutil.copytree(CONFIG, folder / "config")
    return folder


@pytest.fixture
def plain_cli(workdir: Path) -> Cli:
    """aedfleet with the shipped configuration only (its database: ./var/aedfleet.db)."""
    assert AEDFLEET.is_file(), f"{AEDFLEET} missing: pip install -e . in this virtualenv"
    return Cli(workdir, user_environment())


@pytest.fixture
def cli(plain_cli: Cli, database_url: str) -> Cli:
    """aedfleet on the test's own database (SQLite or PostgreSQL) through AEDFLEET_DATABASE_URL."""
    return Cli(plain_cli.cwd, {**plain_cli.env, "AEDFLEET_DATABASE_URL": database_url})
