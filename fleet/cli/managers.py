"""`aedfleet managers`: the people and organisations who look after AEDs, and how to reach them."""

from __future__ import annotations

import json
import re

import click
from sqlalchemy import func
from sqlmodel import Session, col, select

from fleet.cli import Context, pass_context
from fleet.db import session_scope
from fleet.models import Aed, Manager

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@click.group()
def managers() -> None:
    """AED managers: who gets the e-mail when an AED needs attention."""


@managers.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON list on stdout.")
@pass_context
def list_managers(ctx: Context, as_json: bool) -> None:
    """Managers with their contact details and number of AEDs."""
    with Session(ctx.engine) as session:
        rows = session.exec(
            select(Manager, func.count(col(Aed.id)))
            .outerjoin(Aed, col(Aed.manager_id) == Manager.id)
            .group_by(col(Manager.id)).order_by(col(Manager.name))).all()
    documents = [{"name": m.name, "kind": m.kind, "email": m.email, "phone": m.phone,
                  "aeds": int(count)} for m, count in rows]
    if as_json:
        click.echo(json.dumps(documents, ensure_ascii=False, indent=2))
        return
    for doc in documents:
        email = doc["email"] or "(none: notices are kept, not sent)"
        click.echo(f"{doc['name']}: {doc['aeds']} AEDs, e-mail {email}, "
                   f"phone {doc['phone'] or '-'}")


@managers.command("set")
@click.argument("name")
@click.option("--email", help="Where notices about this manager's AEDs are e-mailed.")
@click.option("--phone")
@click.option("--kind", type=click.Choice(["person", "organisation"]))
@pass_context
def set_manager(ctx: Context, name: str, email: str | None, phone: str | None,
                kind: str | None) -> None:
    """Create the manager NAME or change its contact details."""
    if email is not None and email and not EMAIL.fullmatch(email):
        raise click.BadParameter(f"{email!r} is not an e-mail address", param_hint="--email")
    with session_scope(ctx.engine) as session:
        manager = session.exec(select(Manager).where(Manager.name == name)).first()
        created = manager is None
        manager = manager or Manager(name=name)
        if email is not None:
            manager.email = email or None
        if phone is not None:
            manager.phone = phone or None
        if kind is not None:
            manager.kind = kind
        session.add(manager)
    click.echo(f"{'created' if created else 'updated'} manager {name}", err=True)
