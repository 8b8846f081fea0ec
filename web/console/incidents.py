"""The dispatcher's incidents: the list, and one incident's live view."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from alarm_core.models import Incident, ResponderLocation
from alarm_core.reports import incident_document
from fleet.models import Aed
from web.authz import INCIDENT_ROLES, account, incident_for, roles_required
from web.context import engine, now, settings

bp = Blueprint("dispatch", __name__, url_prefix="/incidents")


@bp.get("")
@roles_required(*INCIDENT_ROLES)
def incidents() -> str:
    only_open = request.args.get("open") == "1"
    with Session(engine()) as session:
        query = sa_select(Incident).order_by(col(Incident.called_at).desc()).limit(100)
        if only_open:
            query = query.where(col(Incident.state) != "closed")
        rows = list(session.execute(query).scalars())
    return render_template("incidents.html", incidents=rows, only_open=only_open)


@bp.get("/<incident_id>")
@roles_required(*INCIDENT_ROLES)
def incident(incident_id: str) -> str:
    """Victim, alerted responders by role, chosen AEDs and answers; `?part=live` is the part
    the page's script fetches again every few seconds."""
    with Session(engine()) as session:
        found = incident_for(account(), session, incident_id)
        document = incident_document(session, found, settings().dispatch, with_plan=False)
        map_data = _map_data(session, found, document)
    template = "incident_live.html" if request.args.get("part") == "live" else "incident.html"
    return render_template(template, incident=document, map_data=map_data, moment=now())


def _map_data(session: Session, incident: Incident, document: dict[str, Any]) -> dict[str, Any]:
    """Victim, chosen AEDs, and the latest tracked position of each accepted responder (kept
    only while tracking lasts)."""
    aed_ids = [aed["id"] for aed in document["aeds"]]
    places = {aed.id: (aed.lat, aed.lon, aed.name) for aed in session.execute(
        sa_select(Aed).where(col(Aed.id).in_(aed_ids))).scalars()} if aed_ids else {}
    tracks: dict[str, tuple[float, float]] = {}
    for row in session.execute(
            sa_select(ResponderLocation).where(col(ResponderLocation.incident_id) == incident.id)
            .order_by(col(ResponderLocation.ts))).scalars():
        tracks[row.responder_id] = (row.lat, row.lon)
    roles = {r["id"]: r["role"] for r in document["responders"]}
    return {
        "victim": {"lat": incident.lat, "lon": incident.lon},
        "aeds": [{"id": a["id"], "lat": places[a["id"]][0], "lon": places[a["id"]][1],
                  "name": places[a["id"]][2], "picked_up": a["picked_up_at"] is not None}
                 for a in document["aeds"] if a["id"] in places],
        "responders": [{"id": rid, "lat": lat, "lon": lon, "role": roles.get(rid, "")}
                       for rid, (lat, lon) in tracks.items()],
    }
