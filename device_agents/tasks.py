"""Stopping tasks reliably.

On Python 3.11, `asyncio.wait_for` can swallow a cancellation that arrives just as its inner
future completes, and libraries built on it (aiomqtt, pymodbus) then carry on as if nothing
happened. A task that must stop is therefore cancelled again until it has.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object]], timeout_s: float = 10.0,
                          ) -> set[asyncio.Task[object]]:
    """Cancel `tasks`, repeating every 0.2 s, until all are done; returns those still running."""
    pending = {task for task in tasks if not task.done()}
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.2)
    return pending
