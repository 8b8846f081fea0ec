"""Console accounts: who may log in, with which role, tied to which manager or municipality.

Passwords are stored only as salted scrypt hashes (werkzeug.security).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select
from werkzeug.security import check_password_hash, generate_password_hash

import alarm_core.models  # noqa: F401  (the responder table console_user refers to)
from fleet import audit
from fleet.db import session_scope
from fleet.errors import FleetError
from fleet.models import ConsoleUser, Manager, Municipality, Region, utcnow

MIN_PASSWORD_LENGTH = 10
# Checked against for unknown user names, so that a log-in takes as long with or without one.
_DUMMY_HASH = generate_password_hash("not a password of anyone")


class Role(enum.StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    MUNICIPALITY = "municipality"
    DISPATCHER = "dispatcher"
    RESPONDER = "responder"


ROLE_DESCRIPTIONS = {
    Role.ADMIN: "everything, all AEDs and accounts",
    Role.MANAGER: "the AEDs of one AED manager: health, detail, declarations, edits",
    Role.MUNICIPALITY: "one municipality, aggregated: coverage, AED counts and map",
    Role.DISPATCHER: "incidents: live view of alerts, AEDs and answers",
    Role.RESPONDER: "one citizen responder's own profile, questionnaires and aftercare",
}


class AccountError(FleetError):
    """An account cannot be created or changed as asked."""


@dataclass(frozen=True)
class Account:
    """A logged-in user as the console needs it (no password hash)."""

    id: int
    username: str
    role: Role
    manager_id: int | None
    manager: str | None
    municipality_id: int | None
    municipality: str | None
    responder_id: str | None
    session_key: str = ""
    region: str | None = None
    """The region an account works in; None: every region."""
    """Changes with the password: a session made before a password change no longer counts."""

    def to_json(self) -> dict[str, Any]:
        return {"username": self.username, "role": self.role.value, "manager": self.manager,
                "municipality": self.municipality, "responder": self.responder_id,
                "region": self.region}


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    return None


def create_account(engine: Any, username: str, password: str, role: str, now: datetime, *,
                   manager: str | None = None, municipality: str | None = None,
                   responder_id: str | None = None, actor: str = audit.SYSTEM,
                   region: str | None = None) -> Account:
    """Create an account; a manager account names its manager, a municipality account its
    municipality, a responder account its responder; `region` limits an administrator's or
    dispatcher's view to one region. `actor` is who creates it (the audit log's entry)."""
    with session_scope(engine) as session:
        return add_account(session, username, password, role, now, manager=manager,
                           municipality=municipality, responder_id=responder_id, actor=actor,
                           region=region)


def add_account(session: Session, username: str, password: str, role: str, now: datetime, *,
                manager: str | None = None, municipality: str | None = None,
                responder_id: str | None = None, actor: str = audit.SYSTEM,
                region: str | None = None) -> Account:
    """`create_account` inside the caller's transaction."""
    kind = _role(role)
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError("a user name has 1 to 64 characters")
    problem = password_problem(password)
    if problem:
        raise AccountError(problem)
    _check_scope(kind, manager, municipality, responder_id)
    if _user(session, username) is not None:
        raise AccountError(f"user name {username!r} is taken")
    user = ConsoleUser(username=username, password_hash=generate_password_hash(password),
                       role=kind.value, created_at=now)
    _give_role(session, user, kind, manager, municipality, responder_id)
    user.region = _region(session, region)
    session.add(user)
    session.flush()
    account = _account(session, user)
    audit.record(session, now, actor, audit.AuditAction.USER_CREATED, username,
                 audit.changed_fields({}, _scope_of(account)))
    return account


def change_role(engine: Any, username: str, role: str, now: datetime, *,
                manager: str | None = None, municipality: str | None = None,
                responder_id: str | None = None, actor: str = audit.SYSTEM,
                region: str | None = None) -> Account:
    """Give an account another role (or the same role another scope, or another region);
    takes effect with the account's next request."""
    with session_scope(engine) as session:
        user = _named_user(session, username)
        before = _scope_of(_account(session, user))
        kind = _role(role)
        _check_scope(kind, manager, municipality, responder_id)
        _give_role(session, user, kind, manager, municipality, responder_id)
        user.region = _region(session, region)
        session.flush()
        account = _account(session, user)
        changes = audit.changed_fields(before, _scope_of(account))
        if changes:
            audit.record(session, now, actor, audit.AuditAction.USER_ROLE_CHANGED, username,
                         changes)
        return account


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise AccountError(f"unknown role {role!r}; one of {', '.join(Role)}") from None


def _check_scope(kind: Role, manager: str | None, municipality: str | None,
                 responder_id: str | None) -> None:
    """A manager account names its manager, a municipality account its municipality, a
    responder account its responder."""
    needs = {Role.MANAGER: ("manager", manager), Role.MUNICIPALITY: ("municipality", municipality),
             Role.RESPONDER: ("responder", responder_id)}
    if kind in needs and not needs[kind][1]:
        raise AccountError(f"a {kind.value} account needs --{needs[kind][0]}")


def _give_role(session: Session, user: ConsoleUser, kind: Role, manager: str | None,
               municipality: str | None, responder_id: str | None) -> None:
    """Set the role and the one scope it has (manager, municipality or responder)."""
    user.role = kind.value
    user.manager_id = _id_of(session, Manager, manager) if kind == Role.MANAGER else None
    user.municipality_id = (_id_of(session, Municipality, municipality)
                            if kind == Role.MUNICIPALITY else None)
    if kind == Role.RESPONDER and session.execute(
            text("SELECT 1 FROM responder WHERE id = :id"), {"id": responder_id}).first() is None:
        raise AccountError(f"no responder with id {responder_id!r}")
    user.responder_id = responder_id if kind == Role.RESPONDER else None


def _region(session: Session, code: str | None) -> str | None:
    if code is not None and session.get(Region, code) is None:
        raise AccountError(f"no region {code!r} (see `aedfleet regions list`)")
    return code


def _scope_of(account: Account) -> dict[str, Any]:
    """An account's role and scope as the audit log compares them."""
    return {"role": account.role.value, "manager": account.manager,
            "municipality": account.municipality, "responder_id": account.responder_id,
            "region": account.region}


def _user(session: Session, username: str) -> ConsoleUser | None:
    return session.exec(select(ConsoleUser).where(ConsoleUser.username == username)).first()


def _named_user(session: Session, username: str) -> ConsoleUser:
    user = _user(session, username)
    if user is None:
        raise AccountError(f"no user named {username!r}")
    return user


def _id_of(session: Session, model: Any, name: str | None) -> int:
    found = session.exec(select(model).where(model.name == name)).first()
    if found is None:
        raise AccountError(f"no {model.__name__.lower()} named {name!r}")
    return int(found.id)


def _account(session: Session, user: ConsoleUser) -> Account:
    manager = session.get(Manager, user.manager_id) if user.manager_id else None
    municipality = (session.get(Municipality, user.municipality_id)
                    if user.municipality_id else None)
    assert user.id is not None
    return Account(id=user.id, username=user.username, role=Role(user.role),
                   manager_id=user.manager_id, manager=manager.name if manager else None,
                   municipality_id=user.municipality_id,
                   municipality=municipality.name if municipality else None,
                   responder_id=user.responder_id, region=user.region,
                   session_key=hashlib.sha256(user.password_hash.encode()).hexdigest()[:24])


def username_taken(engine: Any, username: str) -> bool:
    with Session(engine) as session:
        return _user(session, username.strip()) is not None


def authenticate(engine: Any, username: str, password: str) -> Account | None:
    """The account when the name and password match an enabled account, else None."""
    with Session(engine) as session:
        user = _user(session, username.strip())
        if user is None or user.disabled_at is not None:
            check_password_hash(_DUMMY_HASH, password)
            return None
        if not check_password_hash(user.password_hash, password):
            return None
        return _account(session, user)


def load_account(engine: Any, user_id: int) -> Account | None:
    """An enabled account by id (a session's user)."""
    with Session(engine) as session:
        user = session.get(ConsoleUser, user_id)
        if user is None or user.disabled_at is not None:
            return None
        return _account(session, user)


def list_accounts(engine: Any) -> list[tuple[Account, datetime | None]]:
    """Every account with the time it was disabled (None: enabled)."""
    with Session(engine) as session:
        users = session.exec(select(ConsoleUser).order_by(col(ConsoleUser.username))).all()
        return [(_account(session, user), user.disabled_at) for user in users]


def set_password(engine: Any, username: str, password: str, *, actor: str = audit.SYSTEM,
                 now: datetime | None = None) -> None:
    """A new password: every session made before it ends (the audit entry says who set it,
    never the password or its hash)."""
    problem = password_problem(password)
    if problem:
        raise AccountError(problem)
    with session_scope(engine) as session:
        _named_user(session, username).password_hash = generate_password_hash(password)
        audit.record(session, now or utcnow(), actor, audit.AuditAction.USER_PASSWORD_SET,
                     username)


def disable_account(engine: Any, username: str, now: datetime, *,
                    actor: str = audit.SYSTEM) -> None:
    with session_scope(engine) as session:
        user = _named_user(session, username)
        changes = audit.changed_fields({"disabled_at": user.disabled_at}, {"disabled_at": now})
        user.disabled_at = now
        audit.record(session, now, actor, audit.AuditAction.USER_DISABLED, username, changes)
