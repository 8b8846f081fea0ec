"""Telemetry history of one cabinet, read back from the time-series store.

The ingest writes through the InfluxDB v2 write API; this reads with the Prometheus query API
that VictoriaMetrics (and Prometheus-compatible stores) serve: measurement `m` and field `f`
become the series `m_f`, labelled with the `device` tag.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fleet.errors import FleetError
from fleet.settings import Settings

FIELDS = ("battery_pct", "temperature_c", "door_open")
TIMEOUT_S = 3.0
MAX_POINTS = 400


class HistoryUnavailable(FleetError):
    """The time-series store did not answer as expected."""


@dataclass(frozen=True)
class Series:
    field: str
    points: list[tuple[datetime, float]]


def history_url(settings: Settings) -> str:
    return (settings.web.history_url or settings.influx_url).rstrip("/")


def telemetry_history(settings: Settings, device_id: str, end: datetime,
                      span: timedelta = timedelta(days=7)) -> list[Series] | None:
    """Battery, temperature and door state of a cabinet over `span` up to `end`; None when no
    store is configured."""
    base = history_url(settings)
    if not base:
        return None
    start = end - span
    step = max(60, int(span.total_seconds() / MAX_POINTS))
    found = []
    for field in FIELDS:
        # Label values are quoted by json.dumps: a device id cannot break out of the selector.
        selector = f"{settings.timeseries.measurement}_{field}{{device={json.dumps(device_id)}}}"
        # Per step the worst value: the lowest charge, any opening of the door.
        summary = {"battery_pct": "min_over_time", "door_open": "max_over_time"}.get(
            field, "last_over_time")
        query = urllib.parse.urlencode({
            "query": f"{summary}({selector}[{step}s])", "start": f"{start.timestamp():.0f}",
            "end": f"{end.timestamp():.0f}", "step": f"{step}s"})
        document = _get(f"{base}/api/v1/query_range?{query}")
        results = document.get("data", {}).get("result", [])
        points = [(datetime.fromtimestamp(float(ts), UTC), float(value))
                  for result in results[:1] for ts, value in result.get("values", [])]
        found.append(Series(field, points))
    return found


def _get(url: str) -> dict:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310
            document = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise HistoryUnavailable(f"the time-series store did not answer: {exc}") from exc
    if not isinstance(document, dict) or document.get("status") != "success":
        raise HistoryUnavailable("the time-series store refused the query")
    return document
