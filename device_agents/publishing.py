"""A sliding window of QoS 1 publishes: up to `size` in flight, in the order they were given.

Waiting for each batch's PUBACKs before sending the next stalls the pipe once per batch; a window
keeps it full. paho sends in the order `publish` was called, so per-device seq order holds.
"""

from __future__ import annotations

import asyncio

import aiomqtt


class PublishWindow:
    def __init__(self, client: aiomqtt.Client, size: int) -> None:
        self._client = client
        self._room = asyncio.Semaphore(size)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None

    async def publish(self, topic: str, payload: bytes) -> None:
        """Queue one publish; returns once it is handed to the client (not yet acknowledged)."""
        self.raise_error()
        await self._room.acquire()
        task = asyncio.create_task(self._client.publish(topic, payload, qos=1))
        self._in_flight.add(task)
        task.add_done_callback(self._done)
        await asyncio.sleep(0)  # let the task hand the message to paho before the next one

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._room.release()
        if not task.cancelled() and task.exception() is not None and self._error is None:
            self._error = task.exception()

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    async def drain(self) -> None:
        """Wait until every queued publish is acknowledged by the broker."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        self.raise_error()

    def cancel(self) -> None:
        for task in self._in_flight:
            task.cancel()
