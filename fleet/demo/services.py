"""The product's own services in the demo: time-series store, ingest worker, alarm core."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from device_agents.local_broker import free_port, tcp_accepts
from fleet.demo.errors import DemoError
from fleet.demo.processes import (
    Supervisor,
    aedfleet_command,
    http_ok,
    wait_until,
)

START_TIMEOUT_S = 30.0
ALARM_TIMEOUT_S = 90.0  # it loads the registry and every responder before it serves


def local_url(http: str) -> str:
    """`http://host:port` to reach a server listening on `http` from this machine."""
    host, _, port = http.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


async def start_victoria_metrics(supervisor: Supervisor, folder: Path,
                                 stop: asyncio.Event) -> str | None:
    """VictoriaMetrics (which takes InfluxDB v2 writes) if installed: its URL, else None."""
    binary = shutil.which("victoria-metrics")
    if binary is None:
        return None
    url = f"http://127.0.0.1:{free_port()}"
    supervisor.spawn("victoria-metrics", [
        binary, f"-httpListenAddr={url.removeprefix('http://')}",
        f"-storageDataPath={folder / 'victoria-metrics'}", "-loggerLevel=ERROR",
        # queries see samples seconds old (the default hides the last 30 s)
        "-search.latencyOffset=2s"], dict(os.environ))
    await wait_until(lambda: http_ok(f"{url}/health"), START_TIMEOUT_S, "victoria-metrics",
                     supervisor, stop)
    return url


def check_console_port(http: str) -> None:
    """Fail before starting anything when another server already has the console's port."""
    host, _, port = local_url(http).removeprefix("http://").rpartition(":")
    if tcp_accepts(host, int(port)):
        raise DemoError(f"something already listens on {http}: give the console another "
                        "address with --http HOST:PORT")


def timeseries_env(url: str | None) -> dict[str, str]:
    """Settings of the ingest's time-series sink (VictoriaMetrics ignores org, bucket, token)."""
    if url is None:
        return {}
    return {"AEDFLEET_INFLUX_URL": url, "AEDFLEET_INFLUX_ORG": "demo",
            "AEDFLEET_INFLUX_BUCKET": "aedfleet", "AEDFLEET_INFLUX_TOKEN": "demo"}


async def start_ingest(supervisor: Supervisor, env: dict[str, str], shared_subscriptions: bool,
                       stop: asyncio.Event) -> str:
    """The ingest worker; returns the URL of its Prometheus metrics."""
    metrics = f"127.0.0.1:{free_port()}"
    if not shared_subscriptions:
        env = {**env, "AEDFLEET_INGEST__SHARE_GROUP": ""}
    supervisor.spawn("ingest", [*aedfleet_command(), "ingest", "--metrics", metrics], env)
    url = f"http://{metrics}/metrics"
    await wait_until(lambda: http_ok(url), START_TIMEOUT_S, "the ingest worker", supervisor,
                     stop)
    return url


async def start_alarm_core(supervisor: Supervisor, env: dict[str, str], http: str,
                           console: str, stop: asyncio.Event) -> str:
    """The alarm core with the 112 centre's API on `http`; returns once it is connected and
    serving. Links in questionnaire messages lead to the `console`."""
    url = local_url(http)
    env = {**env, "AEDFLEET_ALARM__QUESTIONNAIRE_URL": f"{console}/questionnaire/{{token}}"}
    supervisor.spawn("alarm", [*aedfleet_command(), "alarm", "--http", http], env)
    await wait_until(lambda: http_ok(f"{url}/healthz"), ALARM_TIMEOUT_S, "the alarm core",
                     supervisor, stop)
    return url


async def start_console(supervisor: Supervisor, env: dict[str, str], http: str,
                        history_url: str | None, stop: asyncio.Event) -> str:
    """The console (`aedfleet serve`, with live coverage) on `http`; returns its URL."""
    url = local_url(http)
    if history_url is not None:
        env = {**env, "AEDFLEET_WEB__HISTORY_URL": history_url}
    supervisor.spawn("console", [*aedfleet_command(), "serve", "--http", http], env)
    await wait_until(lambda: http_ok(f"{url}/healthz"), START_TIMEOUT_S, "the console",
                     supervisor, stop)
    return url
