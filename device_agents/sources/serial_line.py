"""RCC-1 serial line source (pyserial): frames parsed by `device_agents.rcc1`.

A reader thread takes lines off the port as the controller sends them (every 10 s and at once on a
change), keeps the newest good status frame and counts every bad line by reason. Noise, partial
lines, bad checksums and out-of-range values are logged and counted, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter

import serial

from device_agents import rcc1
from device_agents.errors import CabinetReadError, FrameError
from device_agents.reading import ControllerReading

logger = logging.getLogger(__name__)


class SerialSource:
    """Reads an RCC-1 controller over a serial line."""

    def __init__(self, device: str, baudrate: int = 9600, max_age_s: float = 30.0,
                 reply_timeout_s: float = 2.0) -> None:
        self.device = device
        self.baudrate = baudrate
        self.max_age_s = max_age_s
        self.reply_timeout_s = reply_timeout_s
        self.good_frames = 0
        self.bad_frames: Counter[str] = Counter()
        self._port: serial.Serial | None = None
        self._latest: tuple[float, ControllerReading] | None = None
        self._frame_arrived = threading.Condition()
        self._unlock_acks = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()

    def _open(self) -> serial.Serial:
        if self._port is not None and self._port.is_open:
            return self._port
        try:
            self._port = serial.Serial(self.device, self.baudrate, timeout=0.2)
        except (serial.SerialException, OSError) as exc:
            raise CabinetReadError(f"cannot open {self.device}: {exc}") from exc
        self._stop.clear()
        self._thread = threading.Thread(target=self._read_lines, name=f"rcc1-{self.device}",
                                        daemon=True)
        self._thread.start()
        return self._port

    def _read_lines(self) -> None:
        port = self._port
        assert port is not None
        pending = b""
        while not self._stop.is_set():
            try:
                chunk = port.read(256)
            except (serial.SerialException, OSError, TypeError) as exc:
                logger.warning("serial line %s failed: %s", self.device, exc)
                self._close_port()
                return
            if not chunk:
                continue
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if len(pending) > rcc1.MAX_LINE * 2:  # noise without line ends
                self._count_bad("noise", "line too long without an end")
                # Keep a frame that has started in the last read: it may still be good.
                start = pending.rfind(b"$")
                pending = pending[start:] if start >= 0 and \
                    len(pending) - start <= rcc1.MAX_LINE else b""
            for line in lines:
                self._handle_line(line)

    def _handle_line(self, line: bytes) -> None:
        line = line.strip(b"\r")
        if not line:
            return
        start = line.rfind(b"$")
        if start > 0:  # noise before a frame: the frame may still be good
            self._count_bad("noise", "noise before a frame")
            line = line[start:]
        try:
            frame = rcc1.parse_line(line)
            if frame.name == "ACK" and frame.fields == ("UNLK",):
                with self._frame_arrived:
                    self._unlock_acks += 1
                    self._frame_arrived.notify_all()
                return
            status = rcc1.parse_status(frame)
        except FrameError as exc:
            self._count_bad(exc.code, str(exc))
            return
        with self._frame_arrived:
            self._latest = (time.monotonic(), status.reading)
            self.good_frames += 1
            self._frame_arrived.notify_all()

    def _count_bad(self, code: str, reason: str) -> None:
        self.bad_frames[code] += 1
        logger.info("bad RCC-1 line on %s: %s", self.device, reason)

    def _write(self, body: str) -> None:
        port = self._open()
        try:
            with self._write_lock:
                port.write(rcc1.encode(body))
                port.flush()
        except (serial.SerialException, OSError) as exc:
            self._close_port()
            raise CabinetReadError(f"cannot write to {self.device}: {exc}") from exc

    def _fresh_reading(self, max_age: float) -> ControllerReading | None:
        latest = self._latest
        if latest is not None and time.monotonic() - latest[0] <= max_age:
            return latest[1]
        return None

    def _poll_blocking(self) -> ControllerReading:
        self._open()
        reading = self._fresh_reading(self.max_age_s)
        if reading is not None:
            return reading
        self._write("POLL")
        deadline = time.monotonic() + self.reply_timeout_s
        with self._frame_arrived:
            while (reading := self._fresh_reading(self.max_age_s)) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CabinetReadError(
                        f"no valid frame from the controller on {self.device} for "
                        f"{self.max_age_s:g} s, none after $POLL")
                self._frame_arrived.wait(remaining)
        return reading

    def _unlock_blocking(self, seconds: int) -> None:
        with self._frame_arrived:
            acks_before = self._unlock_acks
        self._write(f"UNLK,{seconds}")
        deadline = time.monotonic() + self.reply_timeout_s
        with self._frame_arrived:
            while self._unlock_acks == acks_before:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CabinetReadError("the controller did not confirm the unlock ($ACK,UNLK)")
                self._frame_arrived.wait(remaining)

    async def open(self) -> None:
        """Open the line now (it is opened on first use otherwise); input waiting is dropped."""
        await asyncio.to_thread(self._open)

    async def read(self) -> ControllerReading:
        return await asyncio.to_thread(self._poll_blocking)

    async def unlock(self, seconds: int) -> None:
        await asyncio.to_thread(self._unlock_blocking, seconds)

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    async def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 2)
        self._close_port()
