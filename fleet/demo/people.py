"""The demo's people: citizen responders around the city, a log-in per role, a 112 token."""

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
from fleet.models import Municipality
from fleet.settings import Settings

RESPONDER_PREFIX = "demo-r-"
DISPATCH_CALLER = "demo-112"


def municipality_area(engine: Engine, name: str) -> BaseGeometry:
    """The boundary of a loaded municipality."""
    with Session(engine) as session:
        found = session.exec(select(Municipality).where(Municipality.name == name)).first()
    if found is None or not found.boundary_geojson:
        raise DemoError(f"municipality {name!r} has no boundary loaded")
    return area_from_geojson(found.boundary_geojson)


def responder_record(number: int, area: BaseGeometry, today: date,
                     rng: random.Random) -> dict[str, Any]:
    """A synthetic adult responder with a valid certificate who lives (and may work) in `area`."""
    responder_id = f"{RESPONDER_PREFIX}{number:04d}"
    home = random_place(area, rng)
    record: dict[str, Any] = {
        "id": responder_id, "name": f"Demo responder {number}",
        "email": f"{responder_id}@example.org", "phone": f"+316{rng.randrange(10**8):08d}",
        "date_of_birth": date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28)),
        "certificate_date": today - timedelta(days=rng.randint(10, 300)),
        "training": "medical" if rng.random() < 0.2 else "non_medical",
        "home_lat": home[0], "home_lon": home[1]}
    if rng.random() < 0.4:
        record["work_lat"], record["work_lon"] = random_place(area, rng)
    return record


def seed_responders(engine: Engine, settings: Settings, area: BaseGeometry, count: int,
                    now: datetime, seed: int) -> list[str]:
    """Register (or refresh) `count` synthetic responders; the same seed gives the same people."""
    rng = random.Random(seed)
    ids = []
    for number in range(1, count + 1):
        record = responder_record(number, area, now.date(), rng)
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


def ensure_logins(engine: Engine, now: datetime, manager: str | None, municipality: str,
                  responder_id: str | None) -> list[DemoLogin]:
    """One account per role, made on the first run; every run gives each a new password."""
    wanted: list[tuple[str, dict[str, str], str]] = [
        ("admin", {}, "everything"),
        ("municipality", {"municipality": municipality}, municipality),
        ("dispatcher", {}, "incidents"),
    ]
    if manager:
        wanted.insert(1, ("manager", {"manager": manager}, manager))
    if responder_id:
        wanted.append(("responder", {"responder_id": responder_id}, responder_id))
    logins = []
    for role, link, scope in wanted:
        username, password = f"demo-{role}", secrets.token_urlsafe(9)
        if username_taken(engine, username):
            set_password(engine, username, password)  # made by an earlier run
        else:
            create_account(engine, username, password, role, now, **link)
        logins.append(DemoLogin(username, password, role, scope))
    return logins


def dispatch_token(engine: Engine, now: datetime) -> str:
    """A fresh API token of the demo's 112 centre; tokens of earlier runs are revoked."""
    from web.auth import create_token, revoke_tokens

    revoke_tokens(engine, DISPATCH_CALLER, now)
    return create_token(engine, DISPATCH_CALLER, now, "dispatch")
