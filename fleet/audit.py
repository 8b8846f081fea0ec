"""The audit log: who changed which AED or account, when, and what changed.

An entry is written by the function that makes the change, inside the same transaction, so a
change is never stored without its entry (nor an entry without its change). Entries are never
updated (the database refuses it); the retention job deletes them after `[retention]
audit_years`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from fleet.models import Aed, AuditEntry

SYSTEM = "system"
"""The actor of a change no person made: a job, an import by the demo, a test's setup."""
SECRET = "(secret)"
"""What the log shows instead of a secret's value (a cabinet's access code)."""


class AuditAction(enum.StrEnum):
    AED_CREATED = "aed.created"
    AED_EDITED = "aed.edited"
    AED_READINESS_DECLARED = "aed.readiness_declared"
    AEDS_IMPORTED = "aed.imported"
    USER_CREATED = "user.created"
    USER_ROLE_CHANGED = "user.role_changed"
    USER_PASSWORD_SET = "user.password_set"
    USER_DISABLED = "user.disabled"
    REGION_SAVED = "region.saved"


def json_value(value: Any) -> Any:
    """A value as the log stores it: dates and times as ISO 8601, the rest as JSON has it."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any],
                   secret: Collection[str] = ()) -> dict[str, list[Any]]:
    """Each field whose value differs, as [old, new]; a secret field's values are hidden
    (whether it was set, changed or cleared still shows)."""
    found: dict[str, list[Any]] = {}
    for name in sorted(set(old) | set(new)):
        before, after = json_value(old.get(name)), json_value(new.get(name))
        if before == after:
            continue
        if name in secret:
            before = None if before is None else SECRET
            after = None if after is None else SECRET
        found[name] = [before, after]
    return found


def record(session: Session, at: datetime, actor: str, action: AuditAction, object_id: str,
           changes: Mapping[str, Any] | None = None) -> None:
    """Add an entry to the caller's transaction."""
    session.add(AuditEntry(at=at, actor=actor[:200], action=action.value,
                           object_id=object_id[:200],
                           changes=json.dumps(dict(changes or {}), sort_keys=True,
                                              ensure_ascii=False)))


@dataclass(frozen=True)
class AuditView:
    """One entry as people read it."""

    id: int
    at: datetime
    actor: str
    action: str
    object_id: str
    changes: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat().replace("+00:00", "Z"),
                "actor": self.actor, "action": self.action, "object": self.object_id,
                "changes": self.changes}


AED_ACTIONS = (AuditAction.AED_CREATED, AuditAction.AED_EDITED,
               AuditAction.AED_READINESS_DECLARED)


def entries(session: Session, *, object_id: str | None = None, actor: str | None = None,
            region: str | None = None, limit: int = 50, offset: int = 0) -> list[AuditView]:
    """The newest entries first, optionally of one object or one actor; with `region`, only
    those about the AEDs standing in that region (not accounts, imports or regions)."""
    query = sa_select(AuditEntry).order_by(col(AuditEntry.id).desc())
    if region is not None:
        query = query.join(Aed, col(Aed.id) == col(AuditEntry.object_id)).where(
            col(Aed.region) == region,
            col(AuditEntry.action).in_([a.value for a in AED_ACTIONS]))
    if object_id:
        query = query.where(col(AuditEntry.object_id) == object_id)
    if actor:
        query = query.where(col(AuditEntry.actor) == actor)
    rows = session.execute(query.limit(limit).offset(offset)).scalars()
    return [AuditView(id=int(row.id or 0), at=row.at, actor=row.actor, action=row.action,
                      object_id=row.object_id, changes=json.loads(row.changes))
            for row in rows]
