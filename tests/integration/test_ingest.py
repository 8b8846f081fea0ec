"""The ingest worker against a real Mosquitto and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from fleet.ingest.worker import IngestWorker
from fleet.models import AedReadiness, TelemetryState

from .ingest_support import (
    CabinetPublisher,
    RunningWorker,
    dead_letter_reasons,
    ingest_settings,
    ledger_count,
    register_fleet,
    telemetry,
)
from .mqtt_support import Mosquitto, eventually


async def test_telemetry_becomes_the_cabinet_state_and_is_acked(
        broker: Mosquitto, engine: Engine, database_url: str) -> None:
    devices = register_fleet(engine, 3)
    settings = ingest_settings(broker, database_url)
    async with RunningWorker(IngestWorker(settings, engine)), CabinetPublisher(broker) as cabinets:
        for device in devices:
            await cabinets.publish(f"aed/{device}/telemetry", telemetry(device, 1, battery_pct=77))
        await cabinets.publish("aed/cab-0/telemetry", b"{not json")
        await eventually(lambda: all(cabinets.acked(d) == 1 for d in devices), 10, "acks")
    with Session(engine) as session:
        state = session.get(TelemetryState, "cab-1")
        assert state is not None and state.battery_pct == 77 and state.online is True
        readiness = session.get(AedReadiness, "aed-cab-1")
        assert readiness is not None and readiness.state == "ready", readiness
    assert ledger_count(engine) == 3
    assert dead_letter_reasons(engine) == {"not_json": 1}
