"""The 112 centres, played: a cardiac arrest at a random place every few minutes, closed later.

Each region has its centre; calls take turns between them. They go to the alarm core's
incident API with the centre's `dispatch` token, as a dispatch centre's system would send
them; open incidents are closed when the demo stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shapely.geometry.base import BaseGeometry

from fleet.demo.errors import DemoError
from fleet.demo.places import random_place


@dataclass(frozen=True)
class CallPlan:
    every_s: float
    open_s: float
    first_after_s: float


class IncidentApi:
    """The alarm core's incident API as a 112 centre calls it (JSON over HTTP, Bearer token)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body`; the answer's JSON, or `DemoError` with the API's error code."""
        request = urllib.request.Request(
            f"{self.base_url}/api/v1{path}", data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json",
                     "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                document: dict[str, Any] = json.loads(answer.read())
                return document
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise DemoError(f"POST {path}: HTTP {exc.code} {detail}") from exc
        except OSError as exc:
            raise DemoError(f"POST {path}: {exc}") from exc


@dataclass(frozen=True)
class CallCentre:
    """A region's 112 centre: where its calls happen and its access to the incident API."""

    name: str
    api: IncidentApi
    area: BaseGeometry


def describe_dispatch(number: int, incident: dict[str, Any], centre: str | None = None) -> str:
    """One line on what the alarm core did with a call (from `centre`, when there are several)."""
    victim = incident["victim"]
    where = f" ({centre})" if centre else ""
    head = (f"112 call {number}{where} at {victim['lat']:.5f}, {victim['lon']:.5f}: "
            f"{incident['id']}")
    if incident["outcome"] != "dispatched":
        return f"{head}: {incident['outcome'].replace('_', ' ')}"
    roles = [r["role"] for r in incident["responders"]]
    line = (f"{head}: {len(roles)} responders alerted ({roles.count('cpr')} CPR, "
            f"{roles.count('fetch_aed')} fetching {len(incident['aeds'])} AEDs)")
    expected = [(label, incident[key]) for label, key in (
        ("CPR", "expected_first_cpr_s"), ("AED", "expected_first_aed_s"))
        if incident.get(key) is not None]
    if expected:
        line += "; expected: " + ", ".join(f"first {label} in {s:.0f} s" for label, s in expected)
    return line


def describe_close(incident: dict[str, Any], open_s: float) -> str:
    """One line on how the responders answered, once the incident is closed."""
    counts = incident["counts"]
    line = (f"{incident['id']} closed after {open_s / 60:.1f} min: {counts['accepted']} "
            f"accepted, {counts['declined']} declined, {counts['cancelled']} stood down")
    return line + (f", {counts['waiting']} still unanswered" if counts["waiting"] else "")


async def play_calls(centres: Sequence[CallCentre], plan: CallPlan, seed: int,
                     say: Callable[[str], None], stop: asyncio.Event) -> None:
    """Call in cardiac arrests until `stop`, the centres taking turns; then close what is
    still open."""
    rng = random.Random(seed)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    next_call = time.monotonic() + plan.first_after_s
    open_incidents: list[tuple[float, IncidentApi, str]] = []  # (opened at, its API, id)
    number = 0
    while not stop.is_set():
        clock = time.monotonic()
        if clock >= next_call:
            centre = centres[number % len(centres)]
            number += 1
            next_call += plan.every_s
            lat, lon = random_place(centre.area, rng)
            body = {"reference": f"demo-{stamp}-{number}", "lat": lat, "lon": lon,
                    "source": "112"}
            name = centre.name if len(centres) > 1 else None
            try:
                incident = await asyncio.to_thread(centre.api.post, "/incidents", body)
            except DemoError as exc:
                say(f"112 call {number}" + (f" ({name})" if name else "") + f" refused: {exc}")
            else:
                say(describe_dispatch(number, incident, name))
                open_incidents.append((clock, centre.api, incident["id"]))
        while open_incidents and clock - open_incidents[0][0] >= plan.open_s:
            opened, api, incident_id = open_incidents.pop(0)
            await _close(api, incident_id, "closed_by_dispatch", clock - opened, say)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    for opened, api, incident_id in open_incidents:
        await _close(api, incident_id, "demo_stopped", time.monotonic() - opened, say)


async def _close(api: IncidentApi, incident_id: str, reason: str, open_s: float,
                 say: Callable[[str], None]) -> None:
    try:
        incident = await asyncio.to_thread(api.post, f"/incidents/{incident_id}/close",
                                           {"reason": reason})
    except DemoError as exc:
        say(f"{incident_id} could not be closed: {exc}")
    else:
        say(describe_close(incident, open_s))
