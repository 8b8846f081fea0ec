"""Payloads between the alarm core, the 112 centre and responder apps (contract §1), as pure code.

Parsing raises `Refused` with a stable code; building returns dicts ready for `json.dumps`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from alarm_core.errors import Refused
from alarm_core.policy import INCIDENT_TYPES
from device_agents.payloads import load_json
from fleet.i18n import format_date, format_datetime, translator

SOURCES = ("112", "wearable")
ANSWERS = ("accept", "decline")
REFERENCE = re.compile(r"[A-Za-z0-9_.:/-]{1,100}")
RESPONDER_TOPIC = re.compile(
    r"responders/([A-Za-z0-9_-]{1,64})/(response|location|inbox/read)")
NEWS_ROOT = "regions"
"""Region news: `regions/{code}/news`, retained, readable by every responder app."""
MAX_PAYLOAD = 4096


@dataclass(frozen=True)
class IncidentRequest:
    """A cardiac-arrest notification from the dispatch centre."""

    reference: str
    lat: float | None
    lon: float | None
    address: str | None
    called_at: datetime | None
    source: str
    exclusions: tuple[str, ...]
    incident_type: str | None = None
    """What the dispatch centre says the call is (`INCIDENT_TYPES`); None: a cardiac arrest."""

    def fingerprint(self) -> str:
        """SHA-256 of the request's content: the same reference must always carry the same."""
        document: dict[str, Any] = {
            "reference": self.reference, "lat": self.lat, "lon": self.lon,
            "address": self.address, "source": self.source,
            "called_at": None if self.called_at is None else self.called_at.isoformat(),
            "exclusions": sorted(self.exclusions)}
        if self.incident_type is not None:  # calls without one keep their earlier fingerprint
            document["incident_type"] = self.incident_type
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def parse_time(value: Any, name: str) -> datetime:
    """An RFC 3339 time with an offset, as aware UTC."""
    if not isinstance(value, str):
        raise Refused("invalid_field", f"{name} must be an RFC 3339 time string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Refused("invalid_field", f"{name} is not an RFC 3339 time: {value[:40]!r}") from exc
    if parsed.tzinfo is None:
        raise Refused("invalid_field", f"{name} must carry a time zone offset (e.g. Z)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise Refused("invalid_field", f"{name} is out of range: {value[:40]!r}") from exc


def _coordinate(body: dict[str, Any], name: str, limit: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or abs(value) > limit or not math.isfinite(value):  # abs first: 10**309
        raise Refused("invalid_field", f"{name} must be a number between -{limit} and {limit}")
    return float(value)


def parse_incident(body: Any, known_exclusions: dict[str, str]) -> IncidentRequest:
    """Validate the JSON body of `POST /api/v1/incidents`."""
    body = _object(body)
    reference = body.get("reference")
    if not isinstance(reference, str) or not REFERENCE.fullmatch(reference):
        raise Refused("invalid_field", "reference is required: 1-100 characters of "
                                       "letters, digits and _ . : / -")
    lat, lon = _coordinate(body, "lat", 90), _coordinate(body, "lon", 180)
    if (lat is None) != (lon is None):
        raise Refused("invalid_field", "lat and lon go together")
    address = body.get("address")
    if address is not None and (not isinstance(address, str) or not 0 < len(address) <= 300):
        raise Refused("invalid_field", "address must be a string of at most 300 characters")
    if lat is None and address is None:
        raise Refused("missing_location", "give the victim's lat and lon, or an address")
    called_at = None if body.get("called_at") is None else parse_time(body["called_at"],
                                                                       "called_at")
    source = body.get("source", "112")
    if source not in SOURCES:
        raise Refused("invalid_field", f"source must be one of {', '.join(SOURCES)}")
    exclusions = body.get("exclusions", [])
    if not isinstance(exclusions, list) or not all(isinstance(e, str) for e in exclusions):
        raise Refused("invalid_field", "exclusions must be a list of codes")
    unknown = sorted(set(exclusions) - set(known_exclusions))
    if unknown:
        raise Refused("unknown_exclusion", f"unknown exclusion codes {unknown}; known: "
                                           f"{sorted(known_exclusions)}")
    incident_type = body.get("incident_type")
    if incident_type is not None and (not isinstance(incident_type, str)
                                      or incident_type not in INCIDENT_TYPES):
        raise Refused("invalid_field", "incident_type must be one of "
                                       f"{', '.join(INCIDENT_TYPES)}")
    return IncidentRequest(reference, lat, lon, address, called_at, source,
                           tuple(sorted(set(exclusions))), incident_type)


@dataclass(frozen=True)
class ResponderAnswer:
    incident_id: str
    answer: str
    ts: datetime | None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Refused("invalid_body", "the body must be a JSON object", status=400)
    return body


def _incident_id(body: dict[str, Any]) -> str:
    incident_id = body.get("incident_id")
    if not isinstance(incident_id, str) or not 0 < len(incident_id) <= 40:
        raise Refused("invalid_field", "incident_id is required")
    return incident_id


def parse_answer(body: Any) -> ResponderAnswer:
    """A responder's `accept` or `decline` (MQTT `response` payload or the HTTP body)."""
    incident_id = _incident_id(_object(body))
    answer = body.get("answer")
    if answer not in ANSWERS:
        raise Refused("invalid_field", "answer must be accept or decline")
    ts = None if body.get("ts") is None else parse_time(body["ts"], "ts")
    return ResponderAnswer(incident_id, answer, ts)


@dataclass(frozen=True)
class Position:
    lat: float
    lon: float
    ts: datetime


def parse_position(body: Any) -> Position:
    """A responder app's current position: `{"lat", "lon", "ts"}`."""
    body = _object(body)
    lat, lon = _coordinate(body, "lat", 90), _coordinate(body, "lon", 180)
    if lat is None or lon is None:
        raise Refused("invalid_field", "lat and lon are required")
    return Position(lat, lon, parse_time(body.get("ts"), "ts"))


@dataclass(frozen=True)
class LocationReport:
    incident_id: str
    lat: float
    lon: float
    ts: datetime


def parse_location(body: Any) -> LocationReport:
    """A responder app's position while on the way (MQTT `location` payload): a position
    and the incident it is on the way to."""
    incident_id = _incident_id(_object(body))
    position = parse_position(body)
    return LocationReport(incident_id, position.lat, position.lon, position.ts)


def decode_json(payload: bytes) -> Any:
    """A responder app's MQTT payload as JSON, refused when too large or not JSON."""
    if len(payload) > MAX_PAYLOAD:
        raise Refused("payload_too_large", f"payload of {len(payload)} bytes; at most 4096")
    try:
        return load_json(payload)
    except ValueError as exc:
        raise Refused("invalid_json", f"payload is {exc}") from exc


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def alert_payload(incident_id: str, role: str, victim: dict[str, Any],
                  aed: dict[str, Any] | None, sent_at: datetime, app: bool) -> dict[str, Any]:
    """The `responders/{id}/alert` payload; the cabinet's access code goes to app users only."""
    if aed is not None and not app:
        aed = {**aed, "access_code": None}
    return {"v": 1, "incident_id": incident_id, "role": role, "victim": victim, "aed": aed,
            "sent_at": rfc3339(sent_at)}


def cancel_payload(incident_id: str, reason: str) -> dict[str, Any]:
    return {"v": 1, "incident_id": incident_id, "reason": reason}


def sms_text(payload: dict[str, Any], language: str | None = None,
             zone: str | None = None) -> str:
    """The SMS wording of a responder message in `language`, times in `zone` (no access codes:
    SMS is not private)."""
    _ = translator(language).gettext
    if "url" in payload:
        until = format_datetime(parse_time(payload["expires_at"], "expires_at"), language,
                                zone or "UTC", "short")
        return _("aedfleet: thank you for responding to alarm {incident}. How did it go? "
                 "{url} (open until {until})").format(
            incident=payload["incident_id"], url=payload["url"], until=until)
    if payload.get("kind") in ("certificate_expiring", "certificate_expired"):
        until = format_date(date.fromisoformat(payload["valid_until"]), language)
        if payload["kind"] == "certificate_expired":
            return _("aedfleet: your CPR/AED certificate was valid until {date}. You are not "
                     "alerted until you renew it.").format(date=until)
        return _("aedfleet: your CPR/AED certificate is valid until {date}. Renew it in time "
                 "to keep receiving alarms.").format(date=until)
    if "kind" in payload:
        return f"aedfleet: {payload['message']}"
    if "reason" in payload:
        words = {"enough_responders": _("enough responders are on their way"),
                 "incident_closed": _("the call has ended")}
        return _("aedfleet: alarm {incident} cancelled ({reason}). Thank you.").format(
            incident=payload["incident_id"],
            reason=words.get(payload["reason"], payload["reason"]))
    victim = payload["victim"]
    where = victim.get("address") or f"{victim['lat']:.5f},{victim['lon']:.5f}"
    if payload["role"] == "fetch_aed" and payload["aed"]:
        aed = payload["aed"]
        hint = f" ({aed['location_hint']})" if aed.get("location_hint") else ""
        return _("aedfleet RESUSCITATION ALARM: fetch the AED at {aed}{hint} and bring it to "
                 "{victim}.").format(aed=f"{aed['lat']:.5f},{aed['lon']:.5f}", hint=hint,
                                     victim=where)
    return _("aedfleet RESUSCITATION ALARM: go to {victim} and start CPR.").format(
        victim=where)


def news_topic(region: str) -> str:
    return f"{NEWS_ROOT}/{region}/news"


def inbox_payload(message_id: int, kind: str, subject: str, body: str, sent_at: datetime,
                  expires_at: datetime | None, url: str | None = None) -> dict[str, Any]:
    """The `responders/{id}/inbox` (and `regions/{code}/news`) payload: one inbox message."""
    payload: dict[str, Any] = {"v": 1, "message_id": message_id, "kind": kind,
                               "subject": subject, "body": body, "sent_at": rfc3339(sent_at)}
    if expires_at is not None:
        payload["expires_at"] = rfc3339(expires_at)
    if url is not None:
        payload["url"] = url
    return payload


@dataclass(frozen=True)
class ReadReceipt:
    message_id: int
    ts: datetime | None


def parse_read_receipt(body: Any) -> ReadReceipt:
    """A responder app's `responders/{id}/inbox/read`: `{"v":1,"message_id","ts"}`."""
    body = _object(body)
    if body.get("v") != 1 or isinstance(body.get("v"), bool):
        raise Refused("invalid_field", "v must be 1")
    message_id = body.get("message_id")
    if isinstance(message_id, bool) or not isinstance(message_id, int) \
            or not 0 < message_id < 2**63:
        raise Refused("invalid_field", "message_id must be a positive whole number")
    ts = None if body.get("ts") is None else parse_time(body["ts"], "ts")
    return ReadReceipt(message_id, ts)
