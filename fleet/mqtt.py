"""The MQTT client of the fleet's services (ingest workers, the alarm core)."""

from __future__ import annotations

import socket

import aiomqtt

from device_agents.config import MqttEndpoint, tls_context


def service_client(endpoint: MqttEndpoint, identifier: str, in_flight: int) -> aiomqtt.Client:
    """A client with a persistent session under a stable id (what arrives while the service
    is away waits for it on the broker) and room for `in_flight` unacknowledged messages."""
    client = aiomqtt.Client(
        endpoint.host, endpoint.port, username=endpoint.username,
        password=endpoint.password, identifier=identifier, clean_session=False,
        tls_context=tls_context(endpoint, None), keepalive=30, timeout=10,
        max_inflight_messages=in_flight,
    )
    client.pending_calls_threshold = in_flight * 2
    return client


def default_client_id(service: str) -> str:
    """`aedfleet-<service>-<host name>`, in the characters every broker accepts."""
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())
    return f"aedfleet-{service}-{host}"[:64]
