"""A simulated RCC-1 controller on a real pseudo-terminal pair, playing a scenario.

The agent opens the pty's device path (`path`, optionally also linked at `link`) with pyserial,
exactly as it would open `/dev/ttyUSB0`. The simulator sends an `$AEDC` frame every
`frame_interval_s` and at once on a change, answers `$POLL` and `$UNLK`, keeps quiet during a
`silent_s` step, and during a `noise_s` step puts random bytes, truncated frames, frames with a bad
checksum and out-of-range values between its good frames. It counts what it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
import tty
from collections import Counter
from pathlib import Path

from device_agents import rcc1
from device_agents.simulators.scenario import Scenario, state_at

logger = logging.getLogger(__name__)


class SerialCabinetSimulator:
    """An RCC-1 controller behind a pty; `run()` until cancelled."""

    def __init__(self, scenario: Scenario, speed: float = 1.0, loop: bool = False,
                 link: Path | None = None, seed: int = 1) -> None:
        self.scenario = scenario
        self.speed = speed
        self.loop = loop
        self.sent: Counter[str] = Counter()  # "good" and each kind of bad line
        self.unlocks = 0
        self.polls = 0
        self._random = random.Random(seed)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing: a plain 8N1 line
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self.link = link
        if link is not None:
            link.unlink(missing_ok=True)
            link.symlink_to(self.path)
        self._seq = 0
        self._started = time.monotonic()

    def elapsed(self) -> float:
        return (time.monotonic() - self._started) * self.speed

    def _write(self, data: bytes) -> None:
        # Nobody reads the line: like a real UART, the bytes are lost.
        with contextlib.suppress(BlockingIOError):
            os.write(self._master, data)

    def _send_status(self) -> None:
        state = state_at(self.scenario, self.elapsed(), self.loop)
        self._seq += 1
        self._write(rcc1.encode(rcc1.status_body(self._seq, state.reading)))
        self.sent["good"] += 1

    def _send_noise(self) -> None:
        kind = self._random.choice(["random_bytes", "truncated", "bad_checksum", "out_of_range"])
        state = state_at(self.scenario, self.elapsed(), self.loop)
        good = rcc1.encode(rcc1.status_body(self._seq, state.reading))
        if kind == "random_bytes":
            data = bytes(self._random.randrange(256) for _ in range(self._random.randint(1, 40)))
            # No line ends or '$' inside: each noise line is exactly one bad line for the agent.
            data = data.translate(None, b"\r\n$") + b"\r\n"
        elif kind == "truncated":
            data = good[: self._random.randint(3, len(good) - 5)] + b"\r\n"
        elif kind == "bad_checksum":
            checksum = good[-4:-2]
            wrong = b"00" if checksum != b"00" else b"FF"
            data = good[:-4] + wrong + b"\r\n"
        else:
            data = rcc1.encode(rcc1.status_body(self._seq, state.reading).replace(
                f"AEDC,{self._seq},{state.reading.battery_pct}",
                f"AEDC,{self._seq},{self._random.randint(101, 999)}", 1))
        self._write(data)
        self.sent[kind] += 1

    def _handle_request(self, line: bytes) -> None:
        try:
            frame = rcc1.parse_line(line)
        except rcc1.FrameError as exc:
            logger.info("simulated controller ignores a bad request: %s", exc)
            return
        if frame.name == "POLL":
            self.polls += 1
            self._send_status()
        elif frame.name == "UNLK":
            self.unlocks += 1
            self._write(rcc1.encode("ACK,UNLK"))

    async def run(self, ready: asyncio.Event | None = None) -> None:
        loop = asyncio.get_running_loop()
        incoming: asyncio.Queue[bytes] = asyncio.Queue()
        loop.add_reader(self._master, self._read_requests, incoming)
        self._started = time.monotonic()
        if ready is not None:
            ready.set()
        interval = self.scenario.frame_interval_s / self.speed
        last_frame = float("-inf")
        last_reading = None
        pending = b""
        try:
            while True:
                state = state_at(self.scenario, self.elapsed(), self.loop)
                now = time.monotonic()
                while not incoming.empty():
                    pending += incoming.get_nowait()
                    *lines, pending = pending.split(b"\n")
                    if not state.silent:
                        for line in lines:
                            self._handle_request(line)
                if not state.silent:
                    if state.noisy and self._random.random() < 0.5:
                        self._send_noise()
                    if state.reading != last_reading or now - last_frame >= interval:
                        self._send_status()
                        last_frame, last_reading = now, state.reading
                await asyncio.sleep(0.05)
        finally:
            loop.remove_reader(self._master)

    def _read_requests(self, incoming: asyncio.Queue[bytes]) -> None:
        try:
            data = os.read(self._master, 1024)
        except (BlockingIOError, OSError):
            return
        if data:
            incoming.put_nowait(data)

    def close(self) -> None:
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.link is not None:
            self.link.unlink(missing_ok=True)
