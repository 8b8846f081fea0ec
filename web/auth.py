"""API tokens of machine callers (the 112 centre's system, a responder-app backend)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from functools import wraps
from typing import Any

from flask import current_app, g, request
from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlmodel import Session, col

from alarm_core.errors import Refused
from alarm_core.models import ApiToken
from fleet.db import session_scope


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: Any, caller: str, now: datetime) -> str:
    """A new token for `caller`; only its digest is stored, so it is shown once."""
    token = secrets.token_urlsafe(32)
    with session_scope(engine) as session:
        session.add(ApiToken(caller=caller, token_sha256=token_digest(token), created_at=now))
    return token


def revoke_tokens(engine: Any, caller: str, now: datetime) -> int:
    with session_scope(engine) as session:
        result = session.execute(update(ApiToken).where(
            col(ApiToken.caller) == caller, col(ApiToken.revoked_at).is_(None))
            .values(revoked_at=now))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def caller_of(engine: Any, token: str) -> str | None:
    with Session(engine) as session:
        return session.execute(sa_select(col(ApiToken.caller)).where(
            col(ApiToken.token_sha256) == token_digest(token),
            col(ApiToken.revoked_at).is_(None))).scalar_one_or_none()


def token_required(view: Any) -> Any:
    """The request must carry `Authorization: Bearer <token>` of a known, unrevoked caller."""
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused("unauthorized", "send Authorization: Bearer <token>", status=401)
        caller = caller_of(current_app.config["ENGINE"], token.strip())
        if caller is None:
            raise Refused("unauthorized", "unknown or revoked token", status=401)
        g.caller = caller
        return view(*args, **kwargs)
    return wrapped
