"""`aedfleet managers`: giving a manager an e-mail address so that notices reach them."""

from __future__ import annotations

from .cli import Cli


def test_a_manager_created_by_an_import_gets_an_email_address(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    (cli.cwd / "registry.csv").write_text(
        "id,lat,lon,manager\nNL-1,52.09,5.12,Stichting Hart\nNL-2,52.10,5.13,Stichting Hart\n",
        encoding="utf-8")
    cli.ok("import", "registry.csv")
    before = cli.json("managers", "list")
    assert before == [{"name": "Stichting Hart", "kind": "organisation", "email": None,
                       "phone": None, "aeds": 2}]

    cli.ok("managers", "set", "Stichting Hart", "--email", "aed@hart.example")

    after = cli.json("managers", "list")
    assert after[0]["email"] == "aed@hart.example" and after[0]["aeds"] == 2


def test_an_invalid_email_address_is_refused_and_nothing_is_stored(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    result = cli("managers", "set", "Stichting Hart", "--email", "not-an-address")
    assert result.returncode == 2
    assert "is not an e-mail address" in result.stderr
    assert cli.json("managers", "list") == []
