"""Prometheus metrics of the ingest worker, on `/metrics` when `[ingest] metrics_http` is set."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from fleet.timeseries import TimeSeriesSink


class IngestMetrics:
    """Counters of one worker process; each worker is scraped on its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter("aedfleet_ingest_received", "MQTT messages received",
                                registry=r)
        self.applied = Counter("aedfleet_ingest_applied", "Messages applied, by kind",
                               ["kind"], registry=r)
        self.duplicates = Counter("aedfleet_ingest_duplicates",
                                  "Messages whose (device, seq) was stored before", registry=r)
        self.late = Counter("aedfleet_ingest_late_telemetry",
                            "Telemetry older than the stored state (history only)", registry=r)
        self.dead_letters = Counter("aedfleet_ingest_dead_letters",
                                    "Messages rejected and stored as dead letters, by reason",
                                    ["reason"], registry=r)
        self.batches = Counter("aedfleet_ingest_batches", "Transactions committed", registry=r)
        self.db_errors = Counter("aedfleet_ingest_db_errors",
                                 "Batches that failed on the database and were retried",
                                 registry=r)
        self.acks = Counter("aedfleet_ingest_acks", "Acks published to cabinets", registry=r)
        self.transitions = Counter("aedfleet_readiness_transitions",
                                   "Readiness changes recorded", registry=r)
        self.notices = Counter("aedfleet_notices_queued", "Manager notices queued", registry=r)
        self.mails = Counter("aedfleet_notice_mails", "E-mails sent to managers", registry=r)
        self.mail_failures = Counter("aedfleet_notice_mail_failures",
                                     "Notices whose e-mail failed (retried later)", registry=r)
        self.lag = Histogram("aedfleet_ingest_lag_seconds",
                             "From a message's timestamp to its commit",
                             buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 3600),
                             registry=r)
        self.batch_seconds = Histogram("aedfleet_ingest_batch_seconds",
                                       "Time to apply and commit one batch", registry=r)
        self.queued = Gauge("aedfleet_ingest_queued", "Messages received, not yet applied",
                            registry=r)
        self.sink_written = Gauge("aedfleet_timeseries_written",
                                  "Samples written to the time-series store", registry=r)
        self.sink_dropped = Gauge("aedfleet_timeseries_dropped",
                                  "Samples dropped (buffer full or rejected)", registry=r)
        self.sink_buffered = Gauge("aedfleet_timeseries_buffered",
                                   "Samples waiting for the time-series store", registry=r)
        self.sink_failures = Gauge("aedfleet_timeseries_write_failures",
                                   "Failed writes to the time-series store", registry=r)

    def observe_sink(self, sink: TimeSeriesSink) -> None:
        stats = sink.stats
        self.sink_written.set(stats.written)
        self.sink_dropped.set(stats.dropped)
        self.sink_buffered.set(stats.buffered)
        self.sink_failures.set(stats.write_failures)

    def serve(self, http: str) -> None:
        """Serve `/metrics` on `host:port` from a background thread."""
        host, _, port = http.rpartition(":")
        start_http_server(int(port), addr=host or "127.0.0.1", registry=self.registry)

    def value(self, name: str, **labels: str) -> float:
        """One sample's current value (for tests and the summary line)."""
        found = self.registry.get_sample_value(name, labels or None)
        return 0.0 if found is None else found
