"""Modbus TCP and RTU source (pymodbus async client) driven by a register map."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from device_agents.errors import CabinetReadError
from device_agents.reading import ControllerReading
from device_agents.register_map import RegisterMap, decode_registers

logger = logging.getLogger(__name__)

ModbusClient = AsyncModbusTcpClient | AsyncModbusSerialClient


class ModbusSource:
    """Reads a cabinet controller over Modbus; every failure becomes `CabinetReadError`."""

    def __init__(self, make_client: Callable[[], ModbusClient],
                 register_map: RegisterMap) -> None:
        # pymodbus clients need a running event loop: made on first use.
        self._make_client = make_client
        self._client_or_none: ModbusClient | None = None
        self._map = register_map

    @property
    def _client(self) -> ModbusClient:
        if self._client_or_none is None:
            self._client_or_none = self._make_client()
        return self._client_or_none

    @classmethod
    def tcp(cls, host: str, port: int, register_map: RegisterMap,
            timeout: float = 2.0) -> ModbusSource:
        # Reconnection is ours (the agent's backoff), not the client's.
        return cls(lambda: AsyncModbusTcpClient(host, port=port, timeout=timeout, retries=1,
                                                reconnect_delay=0), register_map)

    @classmethod
    def rtu(cls, device: str, baudrate: int, register_map: RegisterMap,
            timeout: float = 2.0) -> ModbusSource:
        return cls(lambda: AsyncModbusSerialClient(device, baudrate=baudrate, timeout=timeout,
                                                   retries=1, reconnect_delay=0), register_map)

    async def _connected(self) -> None:
        if self._client.connected:
            return
        try:
            ok = await self._client.connect()
        except (ModbusException, OSError) as exc:
            raise CabinetReadError(f"cannot connect to the controller: {exc}") from exc
        if not ok:
            raise CabinetReadError("cannot connect to the controller")

    async def read(self) -> ControllerReading:
        await self._connected()
        register_map = self._map
        reader = (self._client.read_holding_registers if register_map.function == "holding"
                  else self._client.read_input_registers)
        try:
            response = await reader(register_map.first_address, count=register_map.count,
                                    device_id=register_map.unit_id)
        except (ModbusException, OSError, TimeoutError) as exc:
            self._client.close()
            raise CabinetReadError(f"Modbus read failed: {exc}") from exc
        if response.isError():
            raise CabinetReadError(f"Modbus exception response: {response}")
        return decode_registers(register_map, list(response.registers))

    async def unlock(self, seconds: int) -> None:
        coil = self._map.coils.get("unlock")
        if coil is None:
            raise CabinetReadError(f"register map {self._map.name} has no unlock coil")
        await self._connected()
        try:
            response = await self._client.write_coil(coil, True, device_id=self._map.unit_id)
        except (ModbusException, OSError, TimeoutError) as exc:
            self._client.close()
            raise CabinetReadError(f"Modbus unlock failed: {exc}") from exc
        if response.isError():
            raise CabinetReadError(f"Modbus unlock refused: {response}")
        logger.info("cabinet lock released (coil %d) for up to %d s", coil, seconds)

    async def close(self) -> None:
        if self._client_or_none is not None:
            self._client_or_none.close()
