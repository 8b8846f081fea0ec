"""A real server of the InfluxDB v2 write API for tests: VictoriaMetrics (Debian package).

VictoriaMetrics stores measurement `aed_telemetry` with field `battery_pct` as the metric
`aed_telemetry_battery_pct`, with the tags as labels; `/api/v1/export` reads every stored sample
back. A new series becomes searchable only when VictoriaMetrics flushes its index (about 10 s in
1.79), so each read asks for `/internal/force_flush` first and polls with a deadline.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from device_agents.local_broker import free_port

from .mqtt_support import wait_until


class VictoriaMetrics:
    """A VictoriaMetrics process on a loopback port, with its data in a folder of its own."""

    def __init__(self, folder: Path, *flags: str) -> None:
        binary = shutil.which("victoria-metrics")
        if binary is None:
            pytest.skip("victoria-metrics is not installed (apt-get install victoria-metrics; "
                        ".ci/run does)")
        self.binary = binary
        self.folder = folder
        self.flags = flags
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.folder / "victoria-metrics.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, f"-httpListenAddr=127.0.0.1:{self.port}",
             f"-storageDataPath={self.folder / 'data'}", "-loggerLevel=ERROR", *self.flags],
            stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._healthy, 15, f"victoria-metrics on port {self.port}")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.folder / "victoria-metrics.log").read_text(errors="replace")
            raise AssertionError(f"victoria-metrics exited with {self.process.returncode}:\n{log}")
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None

    def export(self, metric: str) -> list[dict[str, Any]]:
        """Every series of the metric, each `{"metric": labels, "values", "timestamps"}`."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=5):
            pass
        query = urllib.parse.urlencode({"match[]": metric})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=10) as answer:
            return [json.loads(line) for line in answer.read().splitlines() if line.strip()]

    def points(self, metric: str) -> Counter[tuple[str, int, float]]:
        """How often each (device, timestamp in ms, value) of the metric is stored."""
        return Counter((series["metric"]["device"], ts, value)
                       for series in self.export(metric)
                       for ts, value in zip(series["timestamps"], series["values"], strict=True))

    def wait_for_points(self, metric: str, count: int, timeout_s: float = 30
                        ) -> Counter[tuple[str, int, float]]:
        """The metric's points once at least `count` are stored (they show up within seconds)."""
        found: Counter[tuple[str, int, float]] = Counter()

        def enough() -> bool:
            nonlocal found
            found = self.points(metric)
            return found.total() >= count

        wait_until(enough, timeout_s, f"{count} points of {metric} (have {found.total()})")
        return found
