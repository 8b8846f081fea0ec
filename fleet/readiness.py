"""Deployment readiness of one AED, as pure functions over plain data.

`evaluate_readiness` looks at what the registry knows of an AED, the latest state its cabinet
reported, the manager's latest declaration, the time and the policy, and answers `ready`,
`unverified` or `not_ready` with reason codes. It reads no clock, database or configuration.

Each reason code has one severity. A *blocking* reason makes the AED `not_ready`: something is
known to be wrong. A *doubt* reason makes it `unverified`: nothing known is wrong, but something
that must be known is not (no cabinet agent, stale telemetry, an unknown pads expiry). Blocking
wins over doubt, and only an AED with neither is `ready`. Warnings never change the state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta

from fleet.i18n import N_


class ReadinessState(enum.StrEnum):
    READY = "ready"
    UNVERIFIED = "unverified"
    NOT_READY = "not_ready"


class Severity(enum.Enum):
    BLOCKING = "blocking"
    DOUBT = "doubt"


# Every reason code, its severity and the words an operator reads. The order is the order reasons
# are reported in: the most urgent first.
REASONS: dict[str, tuple[Severity, str]] = {
    "out_of_service": (Severity.BLOCKING, N_("marked out of service by its manager")),
    "in_use": (Severity.BLOCKING, N_("in use at an incident")),
    "aed_absent": (Severity.BLOCKING, N_("the AED is not in its cabinet")),
    "door_open": (
        Severity.BLOCKING, N_("the cabinet door has been open longer than the grace period")
    ),
    "self_test_failed": (Severity.BLOCKING, N_("the AED's last self-test failed")),
    "pads_expired": (Severity.BLOCKING, N_("the electrode pads have expired")),
    "battery_expired": (Severity.BLOCKING, N_("the battery has passed its expiry date")),
    "battery_low": (Severity.BLOCKING, N_("the battery charge is below the threshold")),
    "temperature_out_of_range": (
        Severity.BLOCKING,
        N_("the cabinet temperature is outside the AED's operating range"),
    ),
    "declaration_missing": (
        Severity.BLOCKING,
        N_("the manager has never declared the AED ready for deployment"),
    ),
    "declaration_expired": (
        Severity.BLOCKING,
        N_("the manager's readiness declaration is older than its validity period"),
    ),
    "no_cabinet_agent": (
        Severity.DOUBT,
        N_("no cabinet agent reports on this AED: readiness rests on the declaration alone"),
    ),
    "telemetry_missing": (Severity.DOUBT, N_("the cabinet has not reported yet")),
    "telemetry_stale": (
        Severity.DOUBT, N_("the cabinet's last report is older than the staleness limit")
    ),
    "source_fault": (Severity.DOUBT, N_("the cabinet agent cannot read its cabinet controller")),
    "cabinet_reading_incomplete": (
        Severity.DOUBT,
        N_("the cabinet's report lacks battery, door or AED-present state"),
    ),
    "self_test_overdue": (
        Severity.DOUBT,
        N_("no passed self-test within the required interval (or its result is unknown)"),
    ),
    "pads_expiry_unknown": (Severity.DOUBT, N_("the pads' expiry date is not known")),
}

WARNINGS: dict[str, str] = {
    "pads_expiring_soon": N_("the electrode pads expire within the warning period"),
    "battery_expiring_soon": N_("the battery expires within the warning period"),
    "declaration_expiring_soon": N_("the readiness declaration runs out within the warning period"),
    "door_opened_recently": N_("the cabinet door is open, still within the grace period"),
    "on_battery_power": N_("the cabinet runs on its backup battery (mains power lost)"),
}


@dataclass(frozen=True)
class ReadinessPolicy:
    """Thresholds of the readiness rules; loaded from the `[readiness]` table of the config."""

    battery_low_pct: int = 20
    expiry_warning_days: int = 30
    self_test_max_age_days: int = 7
    door_open_grace_minutes: int = 5
    temperature_min_c: float = 0.0
    temperature_max_c: float = 50.0
    telemetry_stale_after_minutes: int = 35
    declaration_valid_months: int = 12


@dataclass(frozen=True)
class AedFacts:
    """What the registry knows of an AED, independent of any cabinet."""

    has_cabinet: bool
    out_of_service: bool = False
    in_use: bool = False
    pads_expiry: date | None = None
    battery_expiry: date | None = None


@dataclass(frozen=True)
class CabinetReading:
    """The latest state a cabinet agent reported (contract v1 telemetry, plus derived times)."""

    reported_at: datetime
    online: bool | None = None
    battery_pct: int | None = None
    battery_expiry: date | None = None
    pads_expiry: date | None = None
    self_test: str | None = None
    self_test_at: datetime | None = None
    door_open: bool | None = None
    door_open_since: datetime | None = None
    aed_present: bool | None = None
    temperature_c: float | None = None
    power: str | None = None
    source_fault: str | None = None


@dataclass(frozen=True)
class Declaration:
    """A manager's 'ready for deployment' statement."""

    declared_at: datetime


@dataclass(frozen=True)
class Readiness:
    state: ReadinessState
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def is_ready(self) -> bool:
        return self.state is ReadinessState.READY


_REASON_ORDER = {code: i for i, code in enumerate(REASONS)}
_WARNING_ORDER = {code: i for i, code in enumerate(WARNINGS)}


def state_for(reasons: set[str] | frozenset[str]) -> ReadinessState:
    """The state a set of reason codes leads to."""
    severities = {REASONS[code][0] for code in reasons}
    if Severity.BLOCKING in severities:
        return ReadinessState.NOT_READY
    if Severity.DOUBT in severities:
        return ReadinessState.UNVERIFIED
    return ReadinessState.READY


def declaration_valid_until(declared_at: datetime, policy: ReadinessPolicy) -> datetime:
    """The moment a declaration made at `declared_at` stops counting."""
    return declared_at + relativedelta(months=policy.declaration_valid_months)


def evaluate_readiness(
    aed: AedFacts,
    reading: CabinetReading | None,
    declaration: Declaration | None,
    now: datetime,
    policy: ReadinessPolicy,
) -> Readiness:
    """Decide whether an AED is deployment-ready at `now`, with the reasons why not."""
    reasons: set[str] = set()
    warnings: set[str] = set()
    today = now.date()
    warn_until = today + timedelta(days=policy.expiry_warning_days)

    if aed.out_of_service:
        reasons.add("out_of_service")
    if aed.in_use:
        reasons.add("in_use")

    _check_declaration(declaration, now, policy, reasons, warnings)

    pads_expiry = aed.pads_expiry
    battery_expiry = aed.battery_expiry
    if not aed.has_cabinet:
        reasons.add("no_cabinet_agent")
    elif reading is None:
        reasons.add("telemetry_missing")
    else:
        # What the cabinet reports is fresher than what a manager typed into the registry.
        pads_expiry = reading.pads_expiry or pads_expiry
        battery_expiry = reading.battery_expiry or battery_expiry
        _check_cabinet(reading, now, policy, reasons, warnings)

    if pads_expiry is None:
        reasons.add("pads_expiry_unknown")
    elif pads_expiry < today:
        reasons.add("pads_expired")
    elif pads_expiry <= warn_until:
        warnings.add("pads_expiring_soon")

    if battery_expiry is not None:
        if battery_expiry < today:
            reasons.add("battery_expired")
        elif battery_expiry <= warn_until:
            warnings.add("battery_expiring_soon")

    return Readiness(
        state=state_for(reasons),
        reasons=tuple(sorted(reasons, key=_REASON_ORDER.__getitem__)),
        warnings=tuple(sorted(warnings, key=_WARNING_ORDER.__getitem__)),
    )


def _check_declaration(
    declaration: Declaration | None,
    now: datetime,
    policy: ReadinessPolicy,
    reasons: set[str],
    warnings: set[str],
) -> None:
    if declaration is None:
        reasons.add("declaration_missing")
        return
    valid_until = declaration_valid_until(declaration.declared_at, policy)
    if valid_until <= now:
        reasons.add("declaration_expired")
    elif valid_until <= now + timedelta(days=policy.expiry_warning_days):
        warnings.add("declaration_expiring_soon")


def _check_cabinet(
    reading: CabinetReading,
    now: datetime,
    policy: ReadinessPolicy,
    reasons: set[str],
    warnings: set[str],
) -> None:
    stale_after = timedelta(minutes=policy.telemetry_stale_after_minutes)
    if reading.online is False or now - reading.reported_at > stale_after:
        reasons.add("telemetry_stale")
    if reading.source_fault:
        reasons.add("source_fault")
    if reading.battery_pct is None or reading.door_open is None or reading.aed_present is None:
        reasons.add("cabinet_reading_incomplete")

    if reading.aed_present is False:
        reasons.add("aed_absent")
    if reading.door_open:
        # Without a known opening time, the door has been open at least since the report.
        open_since = reading.door_open_since or reading.reported_at
        if now - open_since > timedelta(minutes=policy.door_open_grace_minutes):
            reasons.add("door_open")
        else:
            warnings.add("door_opened_recently")
    if reading.battery_pct is not None and reading.battery_pct < policy.battery_low_pct:
        reasons.add("battery_low")
    if reading.temperature_c is not None and not (
        policy.temperature_min_c <= reading.temperature_c <= policy.temperature_max_c
    ):
        reasons.add("temperature_out_of_range")
    if reading.power == "battery":
        warnings.add("on_battery_power")

    if reading.self_test == "fail":
        reasons.add("self_test_failed")
    elif reading.self_test == "pass":
        # A controller reporting "pass" vouches for the result at the time of its report.
        passed_at = reading.self_test_at or reading.reported_at
        if now - passed_at > timedelta(days=policy.self_test_max_age_days):
            reasons.add("self_test_overdue")
    else:
        reasons.add("self_test_overdue")


def describe_reason(code: str) -> str:
    """The operator's words for a reason or warning code."""
    if code in REASONS:
        return REASONS[code][1]
    return WARNINGS.get(code, code)
