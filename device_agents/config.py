"""The cabinet agent's configuration: one TOML file per cabinet (`aedfleet agent --config FILE`).

Secrets stay out of the file: the MQTT password may come from `AEDFLEET_AGENT_PASSWORD`.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from device_agents.toml_files import load_model

DEVICE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["modbus-tcp", "modbus-rtu", "serial"]
    host: str = "127.0.0.1"
    port: int = Field(default=502, ge=1, le=65535)
    device: str = "/dev/ttyUSB0"
    baudrate: int = 9600
    register_map: str = "rcc1"
    register_map_dir: Path = Path("config/cabinets")
    timeout_s: float = Field(default=2.0, gt=0)


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(pattern=DEVICE_ID_PATTERN)
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    tls_ca_file: Path | None = None
    topic_root: str = "aed"
    spool_path: Path = Path("var/agent/spool.db")
    spool_max_messages: int = Field(default=50_000, ge=10)
    heartbeat_s: float = Field(default=900, gt=0)
    poll_interval_s: float = Field(default=1.0, gt=0)
    ack_timeout_s: float = Field(default=30, gt=0)
    backoff_min_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)
    max_unacked: int = Field(default=2_000, ge=1)
    publish_batch: int = Field(default=100, ge=1, le=1_000)
    """Messages in flight to the broker at once (1 = wait for each PUBACK)."""
    temperature_low_c: float = 0.0
    temperature_high_c: float = 50.0
    source: SourceConfig

    @field_validator("mqtt_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parse_mqtt_url(value)
        return value

    def topic(self, leaf: str) -> str:
        return f"{self.topic_root}/{self.device_id}/{leaf}"


@dataclass(frozen=True)
class MqttEndpoint:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def parse_mqtt_url(url: str) -> MqttEndpoint:
    """`mqtt://[user:password@]host:port` or `mqtts://...` (TLS); raises ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"MQTT URL {url!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError(f"MQTT URL {url!r} has no host")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        raise ValueError(f"MQTT URL {url!r} has an invalid port") from None
    return MqttEndpoint(
        host=parts.hostname, port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=parts.scheme == "mqtts")


def tls_context(endpoint: MqttEndpoint, ca_file: Path | None) -> ssl.SSLContext | None:
    if not endpoint.tls:
        return None
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def load_agent_config(path: Path) -> AgentConfig:
    """Read and validate an agent configuration file; raises `AgentError` naming the problem."""
    return load_model(path, AgentConfig, "agent config")


def agent_password(endpoint: MqttEndpoint) -> str | None:
    return os.environ.get("AEDFLEET_AGENT_PASSWORD") or endpoint.password
