"""Many simulated cabinets in one process, through a real Mosquitto."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from device_agents.simulators.fleet import drive_fleet, virtual_fleet

from .mqtt_support import FleetReceiver, Mosquitto, eventually


async def test_a_simulated_fleet_publishes_contract_messages_with_increasing_seq_per_cabinet(
        tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker", [])
    broker.start()
    receiver = FleetReceiver("127.0.0.1", broker.port, broker.credentials["fleet"], ack=False)
    try:
        await receiver.start()
        run = await drive_fleet(broker.url("fleet"), virtual_fleet(50, "load"), 600)
        assert run.messages >= 600
        await eventually(lambda: len(receiver.messages) >= run.messages, 20, "every message")
    finally:
        await receiver.stop()
        broker.stop()
    by_device: dict[str, list[int]] = defaultdict(list)
    for message in receiver.messages:
        payload = message.payload
        assert payload["v"] == 1 and message.topic.split("/")[1] == payload["device_id"]
        assert payload["ts"].endswith("Z")
        by_device[payload["device_id"]].append(payload["seq"])
    assert len(by_device) > 40
    for seqs in by_device.values():
        assert seqs == sorted(set(seqs)), "one cabinet's seq only goes up, never repeats"
