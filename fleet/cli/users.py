"""`aedfleet users`: console accounts (add, list, change the role, set a password, disable).

Every change is written to the audit log as made by `cli:<os user>`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from fleet.accounts import (
    ROLE_DESCRIPTIONS,
    Role,
    change_role,
    create_account,
    disable_account,
    list_accounts,
    set_password,
)
from fleet.cli import Context, pass_context

ROLE_HELP = "; ".join(f"{role.value}: {words}" for role, words in ROLE_DESCRIPTIONS.items())


@click.group()
def users() -> None:
    """Console accounts and their roles."""


def scope_options(command: Any) -> Any:
    """The options that say what an account's role covers (`users add` and `users role`)."""
    for option in reversed([
            click.option("--role", required=True, type=click.Choice([r.value for r in Role]),
                         help=ROLE_HELP),
            click.option("--manager", help="The AED manager a manager account looks after."),
            click.option("--municipality", help="The municipality of a municipality account."),
            click.option("--responder", "responder_id",
                         help="The responder id of a responder account."),
            click.option("--region", help="Limit an admin or dispatcher to one region (its "
                         "AEDs, incidents and news); default: every region.")]):
        command = option(command)
    return command


@users.command("add")
@click.argument("username")
@scope_options
@click.password_option(help="At least 10 characters (asked when not given).")
@pass_context
def add(ctx: Context, username: str, role: str, manager: str | None, municipality: str | None,
        responder_id: str | None, region: str | None, password: str) -> None:
    """Create an account."""
    account = create_account(ctx.engine, username, password, role, datetime.now(UTC),
                             manager=manager, municipality=municipality,
                             responder_id=responder_id, actor=ctx.actor, region=region)
    click.echo(f"created {account.username} ({account.role.value})")


@users.command("role")
@click.argument("username")
@scope_options
@pass_context
def role(ctx: Context, username: str, role: str, manager: str | None, municipality: str | None,
         responder_id: str | None, region: str | None) -> None:
    """Give an account another role or scope (from its next page on)."""
    account = change_role(ctx.engine, username, role, datetime.now(UTC), manager=manager,
                          municipality=municipality, responder_id=responder_id,
                          actor=ctx.actor, region=region)
    scope = account.manager or account.municipality or account.responder_id
    click.echo(f"{account.username} is now {account.role.value}"
               + (f" ({scope})" if scope else "")
               + (f" in {account.region}" if account.region else ""))


@users.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def list_users(ctx: Context, as_json: bool) -> None:
    """Every account with its role."""
    found = list_accounts(ctx.engine)
    if as_json:
        click.echo(json.dumps([{**a.to_json(), "disabled": d is not None} for a, d in found]))
        return
    for account, disabled in found:
        scope = account.manager or account.municipality or account.responder_id or ""
        click.echo(f"{account.username:<24} {account.role.value:<13} {scope}"
                   + ("  (disabled)" if disabled else ""))


@users.command("passwd")
@click.argument("username")
@click.password_option()
@pass_context
def passwd(ctx: Context, username: str, password: str) -> None:
    """Set a new password."""
    set_password(ctx.engine, username, password, actor=ctx.actor, now=datetime.now(UTC))
    click.echo(f"password of {username} changed")


@users.command("disable")
@click.argument("username")
@pass_context
def disable(ctx: Context, username: str) -> None:
    """Stop an account from logging in (its history stays)."""
    disable_account(ctx.engine, username, datetime.now(UTC), actor=ctx.actor)
    click.echo(f"{username} disabled")
