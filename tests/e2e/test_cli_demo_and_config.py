"""The first things a new user runs: --help, the demo, and a mistake in the configuration."""

from __future__ import annotations

import re

from .cli import Cli

COMMANDS = {"aeds", "db", "declare", "demo", "import", "municipalities"}


def test_help_lists_every_command(plain_cli: Cli) -> None:
    result = plain_cli.ok("--help")

    listed = result.stdout.split("Commands:", 1)[1]
    names = {line.split()[0] for line in listed.splitlines() if line.strip()}
    assert names >= COMMANDS


def demo_counts(output: str) -> list[tuple[int, ...]]:
    """The import counts of each registry the demo loads (Utrecht's, then Cologne's)."""
    found = re.findall(r"(\d+) rows: (\d+) new, (\d+) updated, (\d+) unchanged, (\d+) rejected",
                       output)
    assert found, output
    return [tuple(int(n) for n in counts) for counts in found]


def test_demo_setup_runs_twice_in_the_same_folder_and_the_second_run_changes_nothing(
        cli: Cli) -> None:
    first = cli.ok("demo", "--setup-only")
    second = cli.ok("demo", "--setup-only")

    assert demo_counts(first.stdout) == [(539, 536, 0, 0, 3), (121, 121, 0, 0, 0)]
    assert demo_counts(second.stdout) == [(539, 0, 0, 536, 3), (121, 0, 0, 121, 0)]
    assert "regions NL, DE-NW-KOELN from" in first.stdout
    assert "(2 changed)" in first.stdout and "(0 changed)" in second.stdout
    assert "Traceback" not in first.stderr + second.stderr
    declared = [re.search(r"(\d+) AEDs declared ready", out.stdout) for out in (first, second)]
    assert declared[0] and declared[1]
    assert declared[0].group(1) == declared[1].group(1)


def test_demo_setup_with_the_shipped_configuration_keeps_its_database_under_var(
        plain_cli: Cli) -> None:
    result = plain_cli.ok("demo", "--setup-only")

    assert "sqlite:///var/aedfleet.db" in result.stdout
    assert (plain_cli.cwd / "var" / "aedfleet.db").is_file()
    assert len(plain_cli.json("aeds", "list", "--municipality", "Utrecht")) == 536


def test_demo_setup_loads_the_dutch_and_the_cologne_region_with_cologne_s_real_aeds(
        plain_cli: Cli) -> None:
    plain_cli.ok("demo", "--setup-only")

    regions = {r["code"]: r for r in plain_cli.json("regions", "list")}
    assert sorted(regions) == ["DE-NW-KOELN", "NL"]
    assert (regions["DE-NW-KOELN"]["timezone"], regions["DE-NW-KOELN"]["languages"]) == (
        "Europe/Berlin", ["de", "en"])
    assert regions["DE-NW-KOELN"]["dispatch"] == {"aed_access": "open_now"}
    koeln = plain_cli.json("aeds", "list", "--municipality", "Köln")
    assert len(koeln) == 121
    assert plain_cli.ok("regions", "where", "50.9413", "6.9583").stdout.startswith(
        "DE-NW-KOELN Köln")
    dom = plain_cli.ok("aeds", "show", "DE-K-0018").stdout
    assert "Kölner Dom" in dom and "Mo-Su 06:00-19:30" in dom


def test_invalid_battery_threshold_gives_a_one_line_configuration_error(plain_cli: Cli) -> None:
    result = plain_cli("aeds", "list", env={"AEDFLEET_READINESS__BATTERY_LOW_PCT": "abc"})

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "Error: invalid configuration: readiness.battery_low_pct: "
        "Input should be a valid integer, unable to parse string as an integer"]


def test_config_file_named_in_the_environment_but_missing_is_one_line_error(
        plain_cli: Cli) -> None:
    result = plain_cli("aeds", "list", env={"AEDFLEET_CONFIG": "config/nowhere.toml"})

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: AEDFLEET_CONFIG names config/nowhere.toml, which is not a file"]


def test_aeds_list_on_a_database_never_upgraded_says_so_in_one_line(plain_cli: Cli) -> None:
    result = plain_cli("aeds", "list")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error:")
