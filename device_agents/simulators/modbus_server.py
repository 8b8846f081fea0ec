"""A simulated RCC-1 controller as a real Modbus TCP server (pymodbus), playing a scenario.

Every read is answered from the scenario's state at that moment. During a `silent_s` step the
controller stops answering (requests are held past any client's timeout). Writing coil `unlock`
counts an unlock; like the real controller, the coil reads back as set until the door closes.
"""

from __future__ import annotations

import asyncio
import logging
import time

from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from device_agents.register_map import RegisterMap, encode_reading
from device_agents.simulators.net import wait_for_port
from device_agents.simulators.scenario import Scenario, state_at

logger = logging.getLogger(__name__)

READ_FUNCTIONS = {3, 4}
WRITE_COIL_FUNCTIONS = {5, 15}
SILENT_HOLD_S = 30.0


class ModbusCabinetSimulator:
    """Serves the scenario's state on holding registers, on a real TCP port."""

    def __init__(self, scenario: Scenario, register_map: RegisterMap, host: str = "127.0.0.1",
                 port: int = 5020, speed: float = 1.0, loop: bool = False,
                 serial_device: str | None = None, baudrate: int = 9600) -> None:
        """Serve on TCP `host:port`, or Modbus RTU on `serial_device` when it is given."""
        self.scenario = scenario
        self.register_map = register_map
        self.host, self.port = host, port
        self.speed = speed
        self.loop = loop
        self.serial_device = serial_device
        self.baudrate = baudrate
        self.unlocks = 0
        self.reads = 0
        self._started = time.monotonic()
        size = register_map.first_address + register_map.count
        self._device = SimDevice(
            id=register_map.unit_id,
            simdata=(
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [SimData(0, values=[0] * size, datatype=DataType.REGISTERS)],
                [SimData(0, values=[0] * size, datatype=DataType.REGISTERS)],
            ),
            action=self._on_request,
        )

    def elapsed(self) -> float:
        return (time.monotonic() - self._started) * self.speed

    async def _on_request(self, function_code: int, start_address: int, address: int,
                          count: int, current_registers: list[int],
                          set_values: list[int] | list[bool] | None) -> None:
        state = state_at(self.scenario, self.elapsed(), self.loop)
        if state.silent:
            await asyncio.sleep(SILENT_HOLD_S)
            return
        if function_code in READ_FUNCTIONS:
            self.reads += 1
            first = self.register_map.first_address - start_address
            block = encode_reading(self.register_map, state.reading)
            current_registers[first:first + len(block)] = block
        elif function_code in WRITE_COIL_FUNCTIONS and set_values and any(set_values) \
                and address == self.register_map.coils.get("unlock"):
            self.unlocks += 1
            logger.info("simulated cabinet %s:%d unlocked", self.host, self.port)

    async def run(self, ready: asyncio.Event | None = None) -> None:
        """Serve until cancelled."""
        self._started = time.monotonic()
        server: ModbusTcpServer | ModbusSerialServer
        if self.serial_device is not None:
            server = ModbusSerialServer(self._device, port=self.serial_device,
                                        framer=FramerType.RTU, baudrate=self.baudrate)
        else:
            server = ModbusTcpServer(self._device, address=(self.host, self.port))
        serving = asyncio.create_task(server.serve_forever())
        try:
            if self.serial_device is None:
                await wait_for_port(self.host, self.port, timeout_s=10)
            else:
                await _wait_for_serial_server(server)
            if ready is not None:
                ready.set()
            await serving
        finally:
            serving.cancel()
            try:
                async with asyncio.timeout(5):
                    await server.shutdown()
            except TimeoutError:
                logger.warning("simulated controller did not shut down within 5 s")


async def _wait_for_serial_server(server: ModbusTcpServer | ModbusSerialServer,
                                  timeout_s: float = 10.0) -> None:
    """Return once the server has opened its serial port."""
    deadline = time.monotonic() + timeout_s
    while getattr(server, "transport", None) is None:
        if time.monotonic() > deadline:
            raise TimeoutError("the simulated RTU controller did not open its serial port")
        await asyncio.sleep(0.02)
