"""`aedfleet audit list`: who changed which AED or account, newest first."""

from __future__ import annotations

import json

import click
from sqlmodel import Session

from fleet.audit import entries
from fleet.cli import Context, pass_context


@click.group()
def audit() -> None:
    """The audit log of changes to AEDs and accounts."""


@audit.command("list")
@click.option("--object", "object_id", help="Only entries about this AED id or user name.")
@click.option("--user", "actor", help="Only changes made by this user (e.g. admin, cli:root).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON list on stdout.")
@pass_context
def list_entries(ctx: Context, object_id: str | None, actor: str | None, limit: int,
                 as_json: bool) -> None:
    """The newest entries first."""
    with Session(ctx.engine) as session:
        found = entries(session, object_id=object_id, actor=actor, limit=limit)
    if as_json:
        click.echo(json.dumps([entry.to_json() for entry in found], ensure_ascii=False,
                              indent=2))
        return
    for entry in found:
        changes = ", ".join(f"{name} {_words(value)}" for name, value in entry.changes.items())
        click.echo(f"{entry.to_json()['at']}  {entry.actor:<20} {entry.action:<24} "
                   f"{entry.object_id}" + (f"  {changes}" if changes else ""))


def _words(value: object) -> str:
    if isinstance(value, list) and len(value) == 2:
        return f"{json.dumps(value[0], ensure_ascii=False)} -> " \
               f"{json.dumps(value[1], ensure_ascii=False)}"
    return json.dumps(value, ensure_ascii=False)
