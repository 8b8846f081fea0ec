"""Simulated RCC-1 cabinet controllers (Modbus TCP and serial) and simulated fleets."""
