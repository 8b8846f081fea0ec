"""The one typed settings object of aedfleet.

Loaded from the TOML file named by `AEDFLEET_CONFIG` (default `config/aedfleet.toml`); every value
can be overridden by an environment variable: `AEDFLEET_DATABASE_URL`, `AEDFLEET_MQTT_URL`,
`AEDFLEET_INFLUX_URL`, `AEDFLEET_HTTP`, ... and nested ones with a double underscore, e.g.
`AEDFLEET_READINESS__BATTERY_LOW_PCT=25`. Environment wins over the file, the file over defaults.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from alarm_core.policy import AedAccessPolicy, DispatchPolicy
from fleet.errors import ConfigError
from fleet.readiness import ReadinessPolicy

DEFAULT_CONFIG_PATH = Path("config/aedfleet.toml")


class IngestSettings(BaseModel):
    """How `aedfleet ingest` subscribes, batches and sweeps (`[ingest]`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic_root: str = Field(default="aed", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    share_group: str = Field(default="aedfleet", pattern=r"^[A-Za-z0-9_-]{0,32}$")
    """MQTT shared-subscription group; empty subscribes plainly (brokers without `$share`)."""
    client_id: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]{0,64}$")
    """Stable MQTT client id of this worker; empty: `aedfleet-ingest-<host name>`."""
    batch_max: int = Field(default=500, ge=1, le=10_000)
    batch_wait_ms: int = Field(default=20, ge=0, le=5_000)
    sweep_interval_s: float = Field(default=60.0, gt=0, le=3_600)
    ack_gap_grace_s: float = Field(default=120.0, ge=0)
    """A cabinet is acked only up to a missing seq until that gap is this old (see docs)."""
    ledger_retention_days: int = Field(default=30, ge=1)
    metrics_http: str = ""
    """host:port where the worker serves Prometheus `/metrics`; empty: off."""

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, values: Any) -> Any:
        if isinstance(values, dict) and "dead_letter_retention_days" in values:
            raise ValueError("dead_letter_retention_days moved to [retention] dead_letter_days")
        return values


class TimeSeriesSettings(BaseModel):
    """Buffering of the time-series sink (`[timeseries]`); the server is `influx_*`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    measurement: str = "aed_telemetry"
    buffer_max: int = Field(default=200_000, ge=1)
    batch_size: int = Field(default=5_000, ge=1)
    flush_interval_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)


class NotifySettings(BaseModel):
    """Manager e-mail notifications (`[notify]`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    smtp_url: str = ""
    """smtp://[user:password@]host:port (STARTTLS when offered) or smtps://; empty: outbox only."""
    sender: str = "aedfleet@localhost"
    digest_interval_minutes: float = Field(default=15.0, ge=0)
    """At most one e-mail per manager per interval; what arrives meanwhile goes in one digest."""
    repeat_after_hours: float = Field(default=24.0, ge=0)
    """The same kind of notice for the same AED is not repeated within this time."""
    retry_max_minutes: float = Field(default=60.0, gt=0)


class AlarmSettings(BaseModel):
    """How `aedfleet alarm` talks to responder apps and the 112 centre (`[alarm]`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    http: str = "127.0.0.1:5080"
    """host:port of the alarm core's HTTP API (incident intake, responses)."""
    topic_root: str = Field(default="responders", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    client_id: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]{0,64}$")
    """Stable MQTT client id; empty: `aedfleet-alarm-<host name>`."""
    questionnaire_url: str = "http://127.0.0.1:5080/questionnaire/{token}"
    """Link sent to responders after a call; `{token}` is replaced by their questionnaire's."""
    sms_gateway_url: str = ""
    """HTTP endpoint that takes `{"to": phone, "text": ...}` as JSON; empty: SMS responders
    are never alerted (they are left out of plans)."""
    service_area: tuple[float, float, float, float] = (3.2, 50.7, 7.3, 53.6)
    """west, south, east, north (WGS84): incidents outside are refused. Loaded municipality
    boundaries, when present, are used instead."""
    tick_interval_s: float = Field(default=1.0, gt=0, le=60)
    refresh_interval_s: float = Field(default=2.0, gt=0, le=300)
    full_refresh_minutes: float = Field(default=10.0, gt=0)


class CoverageSettings(BaseModel):
    """The 6-minute zone (`[coverage]`); travel speed and turnout are the dispatch policy's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_s: float = Field(default=360.0, gt=0, le=3600)
    """CPR started and an AED attached within this many seconds of the 112 call."""
    alarm_delay_s: float = Field(default=60.0, ge=0, le=600)
    """From the 112 call to the responders' phones ringing."""
    aed_access: AedAccessPolicy = AedAccessPolicy.OPEN_NOW
    """`open_now`: an AED counts while its opening hours say open (a shop's at 14:00, not at
    03:00); `always_open`: only 24/7 AEDs count, as the Dutch dispatch rule sends."""
    cell_m: float = Field(default=150.0, ge=20, le=5000)
    """Grid cell size in metres (150 m: about 1.5 million cells over the Netherlands)."""
    advice_count: int = Field(default=10, ge=0, le=200)
    """How many new sites and critical existing AEDs the placement advice lists."""
    refresh_s: float = Field(default=30.0, gt=0, le=3600)
    """The console's live coverage applies changed AEDs at most this often."""
    full_refresh_minutes: float = Field(default=15.0, gt=0)
    """... and recomputes everything (responders, opening hours) this often."""


class RetentionSettings(BaseModel):
    """How long personal data is kept (`[retention]`); `aedfleet retention run` enforces it.

    Positions of responders on the way are deleted by `[dispatch] location_retention_minutes`
    after acceptance, the app's last position once it is `app_location_max_age_minutes` old:
    the alarm core's tick does both, and so does the retention job (for when it is down).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    incident_personal_days: int = Field(default=30, ge=1)
    """Days after an incident closed until its personal data goes: the address, free text and
    exact place (coarsened to the PC4 area), who was alerted, messages to responders."""
    questionnaire_days: int = Field(default=365, ge=1)
    """Days after a questionnaire was sent (an aftercare request made) until it is detached
    from the responder."""
    outbox_days: int = Field(default=30, ge=1)
    """Days messages to responders (alerts, cancels, links, reminders) are kept, sent or not."""
    inbox_days: int = Field(default=90, ge=1)
    """Days a responder's inbox message is kept after it was read or expired (region news:
    after it expired)."""
    dead_letter_days: int = Field(default=30, ge=1)
    """Days rejected messages (cabinets' and responder apps') are kept for diagnosis."""
    audit_years: int = Field(default=5, ge=1)
    """Years audit log entries are kept."""
    batch_size: int = Field(default=500, ge=1, le=10_000)
    """Rows changed per transaction: the job never holds a national table for long."""


TILE_HOST = re.compile(r"(\{s\}\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?")


class WebSettings(BaseModel):
    """The console (`[web]`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret_key: str = ""
    """Signs session cookies; every web node of one system needs the same. Empty: a key is made
    once and kept in `var/secret_key` (one node only). Set it through AEDFLEET_WEB__SECRET_KEY."""
    secure_cookies: bool = True
    """Session cookies only over HTTPS (browsers treat http://localhost as secure too)."""
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    login_limit: str = "5 per minute;20 per hour"
    """Failed log-ins per client address (flask-limiter notation)."""
    login_limit_per_user: str = "100 per hour"
    """Failed log-ins per user name from all addresses together: a cap on guessing from many
    addresses, set high so that nobody can easily lock a dispatcher out of the console."""
    proxy_hops: int = Field(default=0, ge=0, le=5)
    """Reverse proxies in front of the console (nginx, a load balancer) whose X-Forwarded-For
    and X-Forwarded-Proto are trusted; 0: the client address is the connection's."""
    rate_limit_storage: str = "memory://"
    """Where attempt counts are kept: `memory://` (one node) or e.g. `redis://host:6379`."""
    tile_url: str = ""
    """Background map tiles, e.g. https://tile.example.org/{z}/{x}/{y}.png; empty: the maps
    draw municipality and postcode shapes without tiles."""
    tile_attribution: str = ""
    history_url: str = ""
    """Prometheus-style query API of the time-series store (VictoriaMetrics serves it on the
    same port as its InfluxDB write API); empty: `influx_url`. The AED page's telemetry chart
    reads from it."""


    @field_validator("tile_url")
    @classmethod
    def _tile_server(cls, value: str) -> str:
        """A plain http(s) URL: its host goes into the pages' Content-Security-Policy."""
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not TILE_HOST.fullmatch(parts.netloc):
            raise ValueError("tile_url must be an http(s) URL with a plain host name ({s}. "
                             "for subdomains), e.g. https://{s}.tiles.example.org/{z}/{x}/{y}.png")
        return value


class Settings(BaseSettings):
    """Configuration every aedfleet component honours (contract §4)."""

    model_config = SettingsConfigDict(
        env_prefix="AEDFLEET_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    database_url: str = "sqlite:///var/aedfleet.db"
    mqtt_url: str = ""
    influx_url: str = ""
    influx_org: str = ""
    influx_bucket: str = ""
    influx_token: str = ""
    http: str = "127.0.0.1:5000"
    timezone: str = "Europe/Amsterdam"
    """Time zone in which AED opening hours are read."""
    country: str = "NL"
    """ISO country code whose public holidays `PH` in opening hours means."""
    readiness: ReadinessPolicy = ReadinessPolicy()
    ingest: IngestSettings = IngestSettings()
    timeseries: TimeSeriesSettings = TimeSeriesSettings()
    notify: NotifySettings = NotifySettings()
    dispatch: DispatchPolicy = DispatchPolicy()
    alarm: AlarmSettings = AlarmSettings()
    coverage: CoverageSettings = CoverageSettings()
    web: WebSettings = WebSettings()
    retention: RetentionSettings = RetentionSettings()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def influx_enabled(self) -> bool:
        return bool(self.influx_url)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("AEDFLEET_CONFIG", DEFAULT_CONFIG_PATH))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file))


def load_settings(**overrides: object) -> Settings:
    """Load the settings, turning any validation problem into one readable `ConfigError`."""
    config_path = os.environ.get("AEDFLEET_CONFIG")
    if config_path and not Path(config_path).is_file():
        raise ConfigError(f"AEDFLEET_CONFIG names {config_path}, which is not a file")
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
    except ValueError as exc:  # a TOML syntax error
        raise ConfigError(f"invalid configuration file: {exc}") from exc
