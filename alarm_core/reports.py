"""Incidents as documents for the API and the command line."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from alarm_core.models import Incident, IncidentAed, IncidentResponder, ResponderLocation
from alarm_core.policy import DispatchPolicy
from alarm_core.wire import rfc3339
from fleet.models import Aed


def _time(value: Any) -> str | None:
    return None if value is None else rfc3339(value)


def incident_document(session: Session, incident: Incident, policy: DispatchPolicy,
                      with_plan: bool = True) -> dict[str, Any]:
    """The incident, its exclusions in words, who was alerted and how they answered."""
    explained = policy.exclusions()
    alerts = session.execute(sa_select(IncidentResponder).where(
        col(IncidentResponder.incident_id) == incident.id)
        .order_by(col(IncidentResponder.eta_s))).scalars().all()
    links = session.execute(sa_select(IncidentAed).where(
        col(IncidentAed.incident_id) == incident.id).order_by(col(IncidentAed.id))).scalars().all()
    statuses = [a.status for a in alerts]
    try:
        why = {r["id"]: r.get("why", []) for r in json.loads(incident.plan).get("responders", [])}
    except (ValueError, AttributeError, KeyError, TypeError):
        why = {}  # a plan coarsened by the retention job keeps no reasons
    document: dict[str, Any] = {
        "id": incident.id, "reference": incident.reference, "state": incident.state,
        "outcome": incident.outcome, "source": incident.source,
        "incident_type": incident.incident_type or "cardiac_arrest", "region": incident.region,
        "exclusions": [{"code": code, "reason": explained.get(code, code)}
                       for code in incident.exclusions.split()],
        "citizen_alarm": incident.outcome == "dispatched",
        "victim": {"lat": incident.lat, "lon": incident.lon, "address": incident.address},
        "called_at": _time(incident.called_at), "received_at": _time(incident.received_at),
        "enough_at": _time(incident.enough_at), "closed_at": _time(incident.closed_at),
        "close_reason": incident.close_reason,
        "expected_first_cpr_s": incident.expected_first_cpr_s,
        "expected_first_aed_s": incident.expected_first_aed_s,
        "counts": {"alerted": len(alerts), "waiting": statuses.count("alerted"),
                   **{s: statuses.count(s) for s in ("accepted", "declined", "cancelled")}},
        "responders": [{"id": a.responder_id, "role": a.role, "aed_id": a.aed_id,
                        "designated_fetcher": a.designated, "status": a.status,
                        "distance_m": round(a.distance_m, 1), "eta_s": round(a.eta_s, 1),
                        "answered_at": _time(a.answered_at),
                        "why": why.get(a.responder_id, [])} for a in alerts],
        "aeds": [{"id": li.aed_id, "distance_m": round(li.distance_m, 1),
                  "unverified": li.unverified, "fetcher_id": li.fetcher_id,
                  "fetcher_accepted": li.fetcher_accepted,
                  "picked_up_at": _time(li.picked_up_at),
                  "returned_at": _time(li.released_at)} for li in links],
    }
    if with_plan:
        document["plan"] = json.loads(incident.plan)
    return document


def recent_incidents(session: Session, only_open: bool, limit: int = 100,
                     region: str | None = None) -> list[Incident]:
    """The newest incidents first (of one region, when given)."""
    query = sa_select(Incident).order_by(col(Incident.called_at).desc()).limit(limit)
    if region is not None:
        query = query.where(col(Incident.region) == region)
    if only_open:
        query = query.where(col(Incident.state) != "closed")
    return list(session.execute(query).scalars())


def incident_map(session: Session, incident: Incident, document: dict[str, Any],
                 now: datetime) -> dict[str, Any]:
    """Victim, the AEDs sent, and the latest position of each accepted responder on the way:
    only positions still inside their tracking time (they are deleted after it)."""
    aed_ids = [aed["id"] for aed in document["aeds"]]
    places = {aed.id: aed for aed in session.execute(
        sa_select(Aed).where(col(Aed.id).in_(aed_ids))).scalars()} if aed_ids else {}
    tracks: dict[str, tuple[float, float]] = {}
    for row in session.execute(
            sa_select(ResponderLocation)
            .where(col(ResponderLocation.incident_id) == incident.id,
                   col(ResponderLocation.expires_at) > now)
            .order_by(col(ResponderLocation.ts))).scalars():
        tracks[row.responder_id] = (row.lat, row.lon)
    roles = {r["id"]: r["role"] for r in document["responders"]}
    return {
        "victim": {"lat": incident.lat, "lon": incident.lon},
        "aeds": [{"id": a["id"], "lat": places[a["id"]].lat, "lon": places[a["id"]].lon,
                  "name": places[a["id"]].name, "picked_up": a["picked_up_at"] is not None}
                 for a in document["aeds"] if a["id"] in places],
        "responders": [{"id": rid, "lat": lat, "lon": lon, "role": roles.get(rid, "")}
                       for rid, (lat, lon) in tracks.items()],
    }
