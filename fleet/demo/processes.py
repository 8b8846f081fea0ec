"""The demo's running parts: child processes with a log each, watched, and stopped in order.

Children run in their own session, so a Ctrl-C in the terminal reaches only the demo, which
then stops them newest first (agents before the ingest, the ingest before the broker).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from fleet.demo.errors import DemoError, Interrupted, PartFailed

logger = logging.getLogger(__name__)

LOG_LINES = 20
STOP_TIMEOUT_S = 8.0


def aedfleet_command() -> list[str]:
    """How to run `aedfleet` with this interpreter (its script, else the module's `main`)."""
    script = Path(sys.executable).with_name("aedfleet")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from fleet.cli import main; "
            "sys.argv[0] = 'aedfleet'; main()"]


def last_lines(path: Path, count: int = LOG_LINES) -> str:
    """The last `count` lines of a log file ("" when there is none)."""
    try:
        text = path.read_bytes()[-16_384:].decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-count:])


class Part(Protocol):
    """Something the demo started and must stop: a process, a thread."""

    name: str

    def failure(self) -> str | None:
        """Why the part no longer runs (with its last log lines); None while it runs."""

    def stop(self, timeout_s: float) -> None:
        """Ask the part to stop; force it after `timeout_s`."""


class ChildProcess:
    """A child process whose output goes to `log_path`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def failure(self) -> str | None:
        code = self.process.poll()
        if code is None:
            return None
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else \
            f"exited with status {code}"
        return f"{self.name} {how}; its last lines ({self.log_path}):\n" \
               f"{last_lines(self.log_path)}"

    def stop(self, timeout_s: float) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %.0f s: killed", self.name, timeout_s)
            self.process.kill()
            self.process.wait(5)


class Supervisor:
    """The parts of the demo in the order they started."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.parts: list[Part] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> ChildProcess:
        """Start a child process, logging to `<log_dir>/<name>.log`."""
        child = ChildProcess(name, argv, env, self.log_dir / f"{name}.log")
        self.parts.append(child)
        return child

    def add(self, part: Part) -> None:
        self.parts.append(part)

    def check(self) -> None:
        """Raise `PartFailed` when any part has stopped on its own."""
        for part in self.parts:
            failure = part.failure()
            if failure is not None:
                raise PartFailed(failure)

    def stop_all(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop every part, newest first; each gets `timeout_s` before it is forced."""
        while self.parts:
            part = self.parts.pop()
            try:
                part.stop(timeout_s)
            except Exception:  # one part failing to stop must not keep the others running
                logger.exception("stopping %s failed", part.name)


async def wait_until(condition: Callable[[], bool], timeout_s: float, what: str,
                     supervisor: Supervisor, stop: asyncio.Event) -> None:
    """Poll `condition` (in a thread) until true; fail fast when a part dies or stop is asked."""
    deadline = time.monotonic() + timeout_s
    while True:
        supervisor.check()
        if stop.is_set():
            raise Interrupted("stopped while starting")
        if await asyncio.to_thread(condition):
            return
        if time.monotonic() > deadline:
            raise DemoError(f"{what} not ready after {timeout_s:g} s (the logs of the parts: "
                            f"{supervisor.log_dir})")
        await asyncio.sleep(0.1)


def http_ok(url: str) -> bool:
    """True when `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False
