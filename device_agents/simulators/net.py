"""Waiting for a TCP service to accept connections, with a deadline."""

from __future__ import annotations

import asyncio
import time


async def wait_for_port(host: str, port: int, timeout_s: float = 10.0) -> None:
    """Return once `host:port` accepts a connection; raise TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"nothing listens on {host}:{port} after {timeout_s:g} s") from exc
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
