"""Sources of cabinet readings. Each returns a `ControllerReading` or raises `CabinetReadError`;
the agent's loop does not know whether a reading came over Modbus or a serial line."""

from __future__ import annotations

from typing import Protocol

from device_agents.reading import ControllerReading


class CabinetSource(Protocol):
    """What the agent needs from a cabinet controller."""

    async def read(self) -> ControllerReading:
        """The controller's current state; raises `CabinetReadError`."""
        ...

    async def unlock(self, seconds: int) -> None:
        """Release the cabinet lock; `CabinetReadError` if the controller does not confirm."""
        ...

    async def close(self) -> None: ...

