"""The audit log for administrators: who changed which AED or account, filtered and paged."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from sqlmodel import Session

from fleet.audit import entries
from web.authz import AUDIT_ROLES, account, roles_required
from web.context import engine, settings, whole_number

bp = Blueprint("audit", __name__, url_prefix="/audit")
PAGE_SIZE = 50


@bp.get("")
@roles_required(*AUDIT_ROLES)
def log() -> str:
    """The newest entries first; `object` (an AED id or user name) and `user` filter; a
    regional administrator reads the entries about the region's AEDs."""
    object_id = (request.args.get("object") or "").strip()[:200] or None
    actor = (request.args.get("user") or "").strip()[:200] or None
    page = whole_number("page", 1, 1, 100_000)
    with Session(engine()) as session:
        found = entries(session, object_id=object_id, actor=actor, region=account().region,
                        limit=PAGE_SIZE + 1,
                        offset=(page - 1) * PAGE_SIZE)
    return render_template("audit.html", entries=found[:PAGE_SIZE],
                           has_next=len(found) > PAGE_SIZE, page=page, object_id=object_id,
                           actor=actor, years=settings().retention.audit_years)
