"""Prometheus metrics of the alarm core."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class AlarmMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.incidents = Counter("aedfleet_alarm_incidents_total",
                                 "Incidents taken in, by outcome", ["outcome"], registry=r)
        self.published = Counter("aedfleet_alarm_messages_sent_total",
                                 "Outbox messages delivered to the broker or SMS gateway",
                                 ["channel"], registry=r)
        self.send_failures = Counter("aedfleet_alarm_send_failures_total",
                                     "Outbox deliveries that failed and will be retried",
                                     ["channel"], registry=r)
        self.answers = Counter("aedfleet_alarm_answers_total", "Responder answers",
                               ["answer"], registry=r)
        self.rejected = Counter("aedfleet_alarm_rejected_total",
                                "Requests and responder messages refused, by reason",
                                ["reason"], registry=r)
        self.outbox_pending = Gauge("aedfleet_alarm_outbox_pending",
                                    "Messages committed but not yet delivered", registry=r)
        self.intake_seconds = Histogram(
            "aedfleet_alarm_intake_seconds", "Incident intake: request to commit",
            buckets=(.002, .005, .01, .02, .05, .1, .2, .5, 1, 2), registry=r)
