"""The demo's MQTT broker: Mosquitto when it is installed, else amqtt inside this process.

amqtt has no shared subscriptions, so with it the ingest subscribes plainly (one worker).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device_agents.local_broker import tcp_accepts
from fleet.demo.processes import Supervisor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerChoice:
    """The broker that runs, as the other parts need to know it."""

    url: str
    description: str
    shared_subscriptions: bool
    ready: Callable[[], bool]
    """True once the broker takes connections."""


def mosquitto_conf(port: int, as_root: bool) -> str:
    """A Mosquitto configuration for one anonymous loopback listener, nothing kept on disk."""
    lines = ["# Written by `aedfleet demo` for this run only.", f"listener {port} 127.0.0.1",
             "allow_anonymous true", "persistence false", "log_dest stderr",
             "log_type error", "log_type warning"]
    if as_root:
        lines.append("user root")  # else it drops to `mosquitto`, who cannot read this folder
    return "\n".join(lines) + "\n"


def start_broker(supervisor: Supervisor, folder: Path, port: int) -> BrokerChoice:
    """Start Mosquitto if it is on PATH, else the embedded amqtt broker, on `port`."""
    url = f"mqtt://127.0.0.1:{port}"
    binary = shutil.which("mosquitto")
    if binary is not None:
        config = folder / "mosquitto.conf"
        config.write_text(mosquitto_conf(port, os.geteuid() == 0), encoding="utf-8")
        supervisor.spawn("mosquitto", [binary, "-c", str(config)], dict(os.environ))
        return BrokerChoice(url, f"Mosquitto ({binary})", True,
                            lambda: tcp_accepts("127.0.0.1", port))
    broker = EmbeddedBroker(port)
    supervisor.add(broker)
    broker.start()
    # Not probed over TCP: amqtt logs a connection that sends no CONNECT as an error.
    return BrokerChoice(url, "amqtt, embedded in this process (Mosquitto is not installed)",
                        False, broker.started.is_set)


class _SnapshotDict(dict[str, Any]):
    """A dict whose iteration walks a copy. amqtt 0.12 iterates its subscriptions across
    awaits, and a client subscribing meanwhile breaks another's connect ("dictionary changed
    size during iteration"); iterating a snapshot keeps both."""

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return list(super().items())


class EmbeddedBroker:
    """amqtt's broker on its own thread and event loop, so the demo's work never stalls it."""

    name = "amqtt broker"

    def __init__(self, port: int) -> None:
        self.port = port
        self._thread = threading.Thread(target=self._run, name="amqtt-broker", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._stopping = False
        self.started = threading.Event()

    def config(self) -> dict[str, Any]:
        return {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
                # Anonymous access only: the default plugins also log every packet and
                # publish $SYS topics, which the demo does not need.
                "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                            {"allow_anonymous": True}}}

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by failure(), which the supervisor polls
            self._error = exc

    async def _serve(self) -> None:
        from amqtt.broker import Broker

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        broker = Broker(self.config())
        broker._subscriptions = _SnapshotDict()  # noqa: SLF001 -- see _SnapshotDict
        await broker.start()
        self.started.set()
        if self._stopping:  # asked to stop before the loop could be told
            self._stop.set()
        try:
            await self._stop.wait()
        finally:
            await broker.shutdown()

    def failure(self) -> str | None:
        if self._stopping or self._thread.is_alive() or not self._thread.ident:
            return None
        return f"the embedded amqtt broker stopped: {self._error!r}"

    def stop(self, timeout_s: float) -> None:
        self._stopping = True
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            logger.warning("the embedded broker did not stop within %.0f s", timeout_s)
