"""A private Mosquitto process with the project's generated configuration (per-device ACL).

Used by the benchmarks and the tests, which need a real broker on a free loopback port. The
services (`fleet`, ...) get full access to the topic roots; devices only their own topics.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from device_agents.broker_config import TlsFiles, read_credentials, write_broker_config
from device_agents.errors import AgentError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tcp_accepts(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on `host:port`."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def mosquitto_binary() -> str | None:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    return binary if Path(binary).exists() else None


class LocalMosquitto:
    """Mosquitto in `folder`, on free loopback ports; `start()` returns once it accepts."""

    def __init__(self, folder: Path, devices: list[str], services: tuple[str, ...] = ("fleet",),
                 tls: TlsFiles | None = None) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise AgentError("Mosquitto is not installed (apt-get install mosquitto)")
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.tls_port = free_port()
        write_broker_config(folder, devices, list(services), port=self.port,
                            run_as_root=os.geteuid() == 0, tls=tls, tls_port=self.tls_port)
        self.credentials = read_credentials(folder)
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, user: str) -> str:
        return f"mqtt://{user}:{self.credentials[user]}@127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        with (self.folder / "mosquitto.log").open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.folder / "mosquitto.conf")],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while not tcp_accepts("127.0.0.1", self.port, timeout_s=0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AgentError(f"Mosquitto did not start on port {self.port}; "
                                 f"see {self.folder / 'mosquitto.log'}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
