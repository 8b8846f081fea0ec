"""API tokens of machine callers (the 112 centre's system, a responder-app backend)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from functools import wraps
from typing import Any, NamedTuple

from flask import current_app, g, request
from flask_login import current_user
from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlmodel import Session, col

from alarm_core.errors import Refused
from alarm_core.models import ApiToken
from fleet.db import session_scope
from fleet.models import Region


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


SCOPES = {"dispatch": "a 112 dispatch centre: posts, reads and closes its incidents",
          "responders": "a responder-app backend: posts responders' answers",
          "coverage": "a municipality's or the console's map: reads coverage",
          "fleet": "a registry or reporting system: reads every AED and its readiness"}

# Console roles that may read an API of a scope with their log-in session (GET only: a
# session is a cookie, and cookies must not authorise changes a form's CSRF token does not).
SESSION_ROLES = {"dispatch": ("admin", "dispatcher"), "coverage": ("admin", "municipality"),
                 "fleet": ("admin", "manager", "municipality")}


def create_token(engine: Any, caller: str, now: datetime, scope: str = "dispatch",
                 region: str | None = None) -> str:
    """A new token for `caller` (a dispatch centre's for its `region`, whose area its calls
    must lie in); only its digest is stored, so it is shown once."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; one of {', '.join(SCOPES)}")
    token = secrets.token_urlsafe(32)
    with session_scope(engine) as session:
        if region is not None and session.get(Region, region) is None:
            raise ValueError(f"no region {region!r} (see `aedfleet regions list`)")
        session.add(ApiToken(caller=caller, scope=scope, token_sha256=token_digest(token),
                             created_at=now, region=region))
    return token


def revoke_tokens(engine: Any, caller: str, now: datetime) -> int:
    with session_scope(engine) as session:
        result = session.execute(update(ApiToken).where(
            col(ApiToken.caller) == caller, col(ApiToken.revoked_at).is_(None))
            .values(revoked_at=now))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


class TokenCaller(NamedTuple):
    caller: str
    scope: str
    region: str | None


def caller_of(engine: Any, token: str) -> TokenCaller | None:
    """The caller, scope and region of an unrevoked token."""
    with Session(engine) as session:
        row = session.execute(sa_select(col(ApiToken.caller), col(ApiToken.scope),
                                        col(ApiToken.region)).where(
            col(ApiToken.token_sha256) == token_digest(token),
            col(ApiToken.revoked_at).is_(None))).first()
        return None if row is None else TokenCaller(row[0], row[1], row[2])


def token_required(scope: str) -> Any:
    """The request must carry `Authorization: Bearer <token>` of a known, unrevoked caller
    whose token has this scope, or be a GET by a logged-in console user whose role reads this
    scope (`g.account` is then set, and the view narrows what it shows to that account)."""
    def decorate(view: Any) -> Any:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            g.account = None
            g.caller_region = None
            header = request.headers.get("Authorization", "")
            if not header and request.method in ("GET", "HEAD") \
                    and current_user.is_authenticated:
                if current_user.account.role.value not in SESSION_ROLES.get(scope, ()):
                    raise Refused("forbidden", "your role does not read this", status=403)
                g.account = current_user.account
                g.caller = current_user.account.username
                return view(*args, **kwargs)
            kind, _, token = header.partition(" ")
            if kind.lower() != "bearer" or not token.strip():
                raise Refused("unauthorized", "send Authorization: Bearer <token>", status=401)
            found = caller_of(current_app.config["ENGINE"], token.strip())
            if found is None:
                raise Refused("unauthorized", "unknown or revoked token", status=401)
            if found[1] != scope:
                raise Refused("forbidden", f"this token's scope is {found[1]}, not {scope}",
                              status=403)
            g.caller = found.caller
            g.caller_region = found.region
            return view(*args, **kwargs)
        return wrapped
    return decorate
