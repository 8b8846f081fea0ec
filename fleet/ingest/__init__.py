"""Telemetry ingest: what cabinets publish becomes current state, history and readiness.

`apply` stores one batch of MQTT messages in one transaction (exactly once per `(device_id, seq)`),
`readiness` records readiness transitions and the notices they cause, `worker` is the MQTT side
(`aedfleet ingest`), `metrics` its Prometheus counters.
"""
