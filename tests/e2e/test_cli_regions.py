"""`aedfleet regions` and what regions change for a user of the command line: loading the
shipped region files, tokens bound to a region, and a dry run that says why each responder."""

from __future__ import annotations

from pathlib import Path

from .cli import Cli

REGIONS = Path(__file__).resolve().parents[2] / "config" / "regions"
UTRECHT = ("52.0907", "5.1214")
COLOGNE = ("50.9413", "6.9583")


def test_the_shipped_region_files_load_and_say_where_a_place_belongs(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    files = sorted(str(p) for p in REGIONS.glob("*.toml"))

    loaded = cli.ok("regions", "load", *files)
    again = cli.ok("regions", "load", *files)

    assert f"{len(files)} region(s) read, {len(files)} changed" in loaded.stdout
    assert "0 changed" in again.stdout
    codes = [r["code"] for r in cli.json("regions", "list")]
    assert {"NL", "DE-NW-KOELN"} <= set(codes)
    assert cli.ok("regions", "where", *UTRECHT).stdout.startswith("NL ")
    assert cli.ok("regions", "where", *COLOGNE).stdout.startswith("DE-NW-KOELN ")
    nowhere = cli("regions", "where", "--", "40.0", "-30.0")  # "--": a negative longitude
    assert nowhere.returncode == 1 and "lies in no served region" in nowhere.stderr
    audit = cli.ok("audit", "list", "--object", "NL").stdout
    assert "region.saved" in audit


def test_a_bad_region_file_is_refused_and_nothing_of_the_command_is_loaded(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    bad = cli.cwd / "bad.toml"
    bad.write_text('code = "NL-X"\nname = "X"\ntimezone = "Mars/Olympus"\nlanguages = ["nl"]\n'
                   f'area = "{REGIONS / "nl.geojson"}"\n', encoding="utf-8")

    result = cli("regions", "load", str(REGIONS / "de-nw-koeln.toml"), str(bad))

    assert result.returncode == 1
    assert "no region loaded" in result.stderr and "unknown time zone" in result.stderr
    assert cli.json("regions", "list") == []


def test_a_token_can_be_bound_only_to_a_loaded_region(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    refused = cli("tokens", "create", "112-koeln", "--region", "DE-NW-KOELN")
    assert refused.returncode == 1 and "no region 'DE-NW-KOELN'" in refused.stderr
    cli.ok("regions", "load", str(REGIONS / "de-nw-koeln.toml"))
    token = cli.ok("tokens", "create", "112-koeln", "--region", "DE-NW-KOELN").stdout.strip()
    assert len(token) > 30


def test_a_dry_run_names_why_each_responder_and_refuses_an_infant_call_where_not_allowed(
        cli: Cli) -> None:
    cli.ok("db", "upgrade")
    cli.ok("regions", "load", str(REGIONS / "nl.toml"))
    (cli.cwd / "responders.csv").write_text(
        "id,name,date_of_birth,certificate_date,training,home_lat,home_lon,competences\n"
        "r-1,Anna,1980-01-01,2026-09-01,medical,52.0910,5.1214,paediatric_life_support\n"
        "r-2,Bart,1981-01-01,2026-09-01,non_medical,52.0920,5.1214,\n", encoding="utf-8")
    cli.ok("responders", "import", "responders.csv")

    plan = cli.json("dispatch", "--lat", UTRECHT[0], "--lon", UTRECHT[1],
                    "--at", "2026-11-16T12:00:00Z")
    infant = cli("dispatch", "--lat", UTRECHT[0], "--lon", UTRECHT[1], "--infant")

    assert [(r["id"], r["why"]) for r in plan["responders"]] == [
        ("r-1", ["nearest"]), ("r-2", ["cpr_no_aed"])]
    assert plan["selection"]["region"] == "NL"
    assert infant.returncode == 1 and "no citizen alarm" in infant.stderr
