"""The demo's people, per region: citizen responders around the city, a log-in per role, a
112 token."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import Engine
from sqlmodel import Session, select

from alarm_core.registry import register_responder
from fleet.accounts import create_account, set_password, username_taken
from fleet.demo.errors import DemoError
from fleet.demo.places import area_from_geojson, random_place
from fleet.demo.regions import NL, DemoRegion
from fleet.models import ConsoleUser, Municipality
from fleet.settings import Settings

DISPATCH_CALLER = NL.caller


def municipality_area(engine: Engine, name: str) -> BaseGeometry:
    """The boundary of a loaded municipality."""
    with Session(engine) as session:
        found = session.exec(select(Municipality).where(Municipality.name == name)).first()
    if found is None or not found.boundary_geojson:
        raise DemoError(f"municipality {name!r} has no boundary loaded")
    return area_from_geojson(found.boundary_geojson)


def responder_record(number: int, area: BaseGeometry, today: date, rng: random.Random,
                     region: DemoRegion = NL, region_loaded: bool = False) -> dict[str, Any]:
    """A synthetic adult responder with a valid certificate who lives (and may work) in `area`,
    speaking the region's language (and registered in it, when it is loaded)."""
    responder_id = f"{region.responder_prefix}{number:04d}"
    home = random_place(area, rng)
    record: dict[str, Any] = {
        "id": responder_id, "name": f"Demo responder {number}",
        "email": f"{responder_id}@example.org",
        "phone": f"{region.phone_prefix}{rng.randrange(10**8):08d}",
        "date_of_birth": date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28)),
        "certificate_date": today - timedelta(days=rng.randint(10, 300)),
        "training": "medical" if rng.random() < 0.2 else "non_medical",
        "home_lat": home[0], "home_lon": home[1]}
    if rng.random() < 0.4:
        record["work_lat"], record["work_lon"] = random_place(area, rng)
    record["language"] = region.language
    if region_loaded:
        record["region"] = region.code
    return record


def seed_responders(engine: Engine, settings: Settings, area: BaseGeometry, count: int,
                    now: datetime, seed: int, region: DemoRegion = NL,
                    region_loaded: bool = False) -> list[str]:
    """Register (or refresh) `count` synthetic responders; the same seed gives the same people."""
    rng = random.Random(seed if region is NL else f"{seed}-{region.code}")
    ids = []
    for number in range(1, count + 1):
        record = responder_record(number, area, now.date(), rng, region, region_loaded)
        register_responder(engine, record, now, settings.dispatch)
        ids.append(record["id"])
    return ids


@dataclass(frozen=True)
class DemoLogin:
    """A console account of the demo, with this run's password."""

    username: str
    password: str
    role: str
    scope: str
    region: str | None = None
    """The region the account works in; None: every region."""


def ensure_logins(engine: Engine, now: datetime, manager: str | None,
                  municipality: str | None, responder_id: str | None, region: DemoRegion = NL,
                  region_loaded: bool = False) -> list[DemoLogin]:
    """One account per role of a region, made on the first run; every run gives each a new
    password. The platform's admin (every region) comes with the Dutch region's accounts."""
    wanted: list[tuple[str, dict[str, str], str]] = []
    if region is NL:
        wanted.append(("admin", {}, "everything"))
    if manager:
        wanted.append(("manager", {"manager": manager}, manager))
    if municipality:
        wanted.append(("municipality", {"municipality": municipality}, municipality))
    wanted.append(("dispatcher", {}, "incidents"))
    if responder_id:
        wanted.append(("responder", {"responder_id": responder_id}, responder_id))
    logins = []
    for role, link, scope in wanted:
        username, password = f"{region.login_prefix}{role}", secrets.token_urlsafe(9)
        works_in = region.code if region_loaded and role != "admin" else None
        if username_taken(engine, username):
            set_password(engine, username, password)  # made by an earlier run
        else:
            create_account(engine, username, password, role, now, region=works_in, **link)
        _place_account(engine, username, works_in, None if role == "admin" else region.language)
        logins.append(DemoLogin(username, password, role, scope, works_in))
    return logins


def _place_account(engine: Engine, username: str, region: str | None,
                   locale: str | None) -> None:
    """The region an account works in (again, for accounts of an earlier run) and its
    language."""
    with Session(engine) as session, session.begin():
        user = session.exec(select(ConsoleUser).where(ConsoleUser.username == username)).one()
        user.region, user.locale = region, locale
        session.add(user)


def dispatch_token(engine: Engine, now: datetime, caller: str = DISPATCH_CALLER,
                   region: str | None = None) -> str:
    """A fresh API token of a region's 112 centre; tokens of earlier runs are revoked."""
    from web.auth import create_token, revoke_tokens

    revoke_tokens(engine, caller, now)
    return create_token(engine, caller, now, "dispatch", region=region)
