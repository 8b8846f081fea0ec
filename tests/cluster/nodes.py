"""Several hosts on one machine: network namespaces on a bridge, and the processes in them.

Each node is a namespace with its own loopback and one veth on a private bridge in the root
namespace (10.231.N.0/24, never routed anywhere), so every connection between the parts crosses
a network interface as it would between machines, and killing a node's process cuts exactly
its connections.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from device_agents.local_broker import tcp_accepts

AEDFLEET = Path(sys.executable).with_name("aedfleet")


def can_make_namespaces() -> str | None:
    """None when this machine can run the test, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is missing (apt-get install iproute2)"
    return None


def postgres_binaries() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent if found else None


def _ip(*args: str, namespace: str | None = None) -> None:
    command = ["ip", *args] if namespace is None else ["ip", "netns", "exec", namespace,
                                                        "ip", *args]
    subprocess.run(command, check=True, capture_output=True, text=True)


@dataclass
class Network:
    """A bridge in the root namespace (the test's own address: .1) and a namespace per node."""

    tag: str
    subnet: int
    hosts: dict[str, str] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        return f"{self.tag}br"

    def address(self, last: int) -> str:
        return f"10.231.{self.subnet}.{last}"

    def up(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.address(1)}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        # Bridged frames between namespaces must not meet the host's firewall rules.
        subprocess.run(["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"],
                       capture_output=True, check=False)

    def add(self, name: str, last: int) -> str:
        """A namespace `name` at address .`last`; returns its address."""
        namespace, outside, inside = f"{self.tag}-{name}", f"{self.tag}{last}", f"{self.tag}{last}p"
        _ip("netns", "add", namespace)
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", namespace)
        _ip("link", "set", outside, "master", self.bridge)
        _ip("link", "set", outside, "up")
        _ip("addr", "add", f"{self.address(last)}/24", "dev", inside, namespace=namespace)
        _ip("link", "set", inside, "up", namespace=namespace)
        _ip("link", "set", "lo", "up", namespace=namespace)
        self.hosts[name] = self.address(last)
        return self.address(last)

    def namespace(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def down(self) -> None:
        for name in self.hosts:
            subprocess.run(["ip", "netns", "del", self.namespace(name)], check=False,
                           capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], check=False, capture_output=True)


@dataclass
class Node:
    """One process of the system, run in its node's namespace; restartable as systemd would."""

    name: str
    network: Network
    command: list[str]
    env: dict[str, str]
    folder: Path
    user: str | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def address(self) -> str:
        return self.network.hosts[self.name]

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.name}.log"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        prefix = ["ip", "netns", "exec", self.network.namespace(self.name)]
        if self.user is not None:
            prefix += ["runuser", "-u", self.user, "--"]
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            log.flush()
            self.process = subprocess.Popen([*prefix, *self.command], env=self.env,
                                            cwd=self.folder, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL, as a power cut or the kernel's OOM killer would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_port(self, port: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not tcp_accepts(self.address, port, timeout_s=0.2):
            if not self.alive() or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} does not listen on {self.address}:{port}:\n"
                                     f"{self.log()[-4000:]}")
            time.sleep(0.1)
