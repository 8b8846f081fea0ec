"""Fleet side of aedfleet: AED registry, telemetry ingest, readiness and coverage."""
