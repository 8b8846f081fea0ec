"""What stays of an incident once its personal data goes, and the register's figures of it.

Pure functions over an incident's rows: the retention job stores what they return, the
national resuscitation register's export writes it. Nothing here names a person: no responder
id, no address, no exact place, no free text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from alarm_core.aftercall import ARRIVED_AFTER_MINUTES, minutes_answer, structured_answers
from alarm_core.models import Incident, IncidentAed, IncidentResponder, Questionnaire
from fleet.population import Pc4Place

REASON_CODE = re.compile(r"[a-z0-9_]{1,40}")
OTHER_REASON = "other"
FETCH_AED = "fetch_aed"
"""`alarm_core.selection.Role.FETCH_AED` (not imported: this module stays light for the
ingest worker, whose sweep shares the retention job's dead-letter purge)."""
COARSE_DECIMALS = 2
"""Outside every PC4 area a place is rounded to 0.01 degree (about 1 km)."""


def reason_code(reason: str | None) -> str | None:
    """A close reason that is a code (`timeout`, `closed_by_dispatch`) stays; words a person
    typed become `other`."""
    if reason is None or REASON_CODE.fullmatch(reason):
        return reason
    return OTHER_REASON


def coarse_point(lat: float, lon: float, place: Pc4Place | None) -> tuple[float, float]:
    """Where a coarsened incident is: the centroid of its PC4 area; outside every area the
    place rounded to about a kilometre."""
    if place is not None:
        return place.lat, place.lon
    return round(lat, COARSE_DECIMALS), round(lon, COARSE_DECIMALS)


def coarse_plan(plan: dict[str, Any], victim: tuple[float, float]) -> dict[str, Any]:
    """The dispatch plan without people or places: the victim at the coarse place, the alerted
    by role with their distances and times but without who they were, the AEDs without fetcher,
    position or distance."""
    kept = {key: value for key, value in plan.items()
            if key not in ("responders", "skipped_aeds")}
    if "victim" in plan:
        kept["victim"] = {"lat": victim[0], "lon": victim[1]}
    kept["responders"] = [{key: value for key, value in entry.items() if key != "id"}
                          for entry in plan.get("responders", [])]
    # An AED's public place and its exact distance would give the victim's place back.
    kept["aeds"] = [{key: value for key, value in aed.items()
                     if key not in ("lat", "lon", "distance_m")} | {"fetcher_id": None}
                    for aed in plan.get("aeds", [])]
    return kept


def answers_without_free_text(answers: str | None) -> str | None:
    """Stored questionnaire answers (JSON) with only their closed answers left."""
    if answers is None:
        return None
    try:
        parsed = json.loads(answers)
    except ValueError:
        return json.dumps({})
    return json.dumps(structured_answers(parsed) if isinstance(parsed, dict) else {})


@dataclass(frozen=True)
class RegisterRecord:
    """The register's figures of one incident. Times are seconds after the alert (the
    incident's intake); `alert_delay_s` is from the 112 call to the alert."""

    outcome: str
    source: str
    alert_delay_s: int
    responders_alerted: int
    responders_accepted: int
    responders_on_scene: int
    """Responders who answered in their questionnaire that they reached the patient."""
    aeds_sent: int
    aeds_picked_up: int
    """AEDs whose cabinet reported them taken (door opened or AED removed)."""
    aed_brought: bool
    """An AED was picked up, or a responder sent to fetch one reported one attached."""
    expected_first_cpr_s: int | None
    expected_first_aed_s: int | None
    reported_first_cpr_s: int | None
    """The earliest arrival (alert time plus the minutes answered) of a responder who
    reported giving chest compressions."""
    reported_first_aed_s: int | None
    """The same for a responder sent via an AED who reported it attached."""
    questionnaires_sent: int
    questionnaires_answered: int
    reported_cpr: int
    reported_aed_attached: int
    aftercare_requested: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> RegisterRecord:
        values: dict[str, Any] = {name: document.get(name)
                                  for name in cls.__dataclass_fields__}
        return cls(**values)


def _seconds(value: float | None) -> int | None:
    return None if value is None else round(value)


def register_record(incident: Incident, alerts: Sequence[IncidentResponder],
                    links: Sequence[IncidentAed], questionnaires: Sequence[Questionnaire],
                    aftercare_requested: int) -> RegisterRecord:
    """The register's figures of an incident from its alerts, AEDs and questionnaires."""
    alert_of = {alert.responder_id: alert for alert in alerts}
    answered = [(q, _answers(q)) for q in questionnaires if q.answered_at is not None]
    reached: list[tuple[IncidentResponder | None, dict[str, Any], int | None]] = []
    for questionnaire, answers in answered:
        alert = alert_of.get(questionnaire.responder_id or "")
        minutes = minutes_answer(answers.get(ARRIVED_AFTER_MINUTES))
        arrival = None
        if alert is not None and minutes is not None and answers.get("arrived") == "yes":
            arrival = round((alert.alerted_at - incident.received_at).total_seconds()
                            + 60 * minutes)
        reached.append((alert, answers, arrival))
    first_cpr = [t for _, a, t in reached if t is not None and a.get("cpr") == "yes"]
    first_aed = [t for alert, a, t in reached if t is not None and alert is not None
                 and alert.role == FETCH_AED and a.get("aed_used") == "yes"]
    fetched = sum(1 for link in links if link.picked_up_at is not None)
    brought_reported = any(alert is not None and alert.role == FETCH_AED
                           and a.get("aed_used") == "yes" for alert, a, _ in reached)
    return RegisterRecord(
        outcome=incident.outcome, source=incident.source,
        alert_delay_s=max(0, round((incident.received_at - incident.called_at)
                                   .total_seconds())),
        responders_alerted=len(alerts),
        responders_accepted=sum(1 for a in alerts if a.status == "accepted"),
        responders_on_scene=sum(1 for _, a in answered if a.get("arrived") == "yes"),
        aeds_sent=len(links), aeds_picked_up=fetched,
        aed_brought=fetched > 0 or brought_reported,
        expected_first_cpr_s=_seconds(incident.expected_first_cpr_s),
        expected_first_aed_s=_seconds(incident.expected_first_aed_s),
        reported_first_cpr_s=min(first_cpr, default=None),
        reported_first_aed_s=min(first_aed, default=None),
        questionnaires_sent=len(questionnaires), questionnaires_answered=len(answered),
        reported_cpr=sum(1 for _, a in answered if a.get("cpr") == "yes"),
        reported_aed_attached=sum(1 for _, a in answered if a.get("aed_used") == "yes"),
        aftercare_requested=aftercare_requested)


def _answers(questionnaire: Questionnaire) -> dict[str, Any]:
    try:
        parsed = json.loads(questionnaire.answers or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
