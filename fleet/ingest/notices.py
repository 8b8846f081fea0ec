"""Which manager notices a readiness change causes: pure rules over plain data."""

from __future__ import annotations

from collections.abc import Iterable

from fleet.readiness import REASONS, Readiness, ReadinessState, Severity, describe_reason


def _words(codes: Iterable[str]) -> str:
    return "; ".join(f"{describe_reason(code)} ({code})" for code in codes)


def notices_for_change(before_state: str | None, before_reasons: frozenset[str],
                       before_warnings: frozenset[str], after: Readiness,
                       ) -> list[tuple[str, str]]:
    """The `(kind, detail)` notices due when an AED's readiness changes from `before` to `after`.

    The first evaluation of an AED (`before_state` None) is a baseline and causes none: a new
    installation would otherwise flood its manager with what the manager is setting up.
    """
    if before_state is None:
        return []
    added = [code for code in after.reasons if code not in before_reasons]
    notices: list[tuple[str, str]] = []
    if "telemetry_stale" in added:
        notices.append(("cabinet_offline", _words(["telemetry_stale"])))
    blocking = [code for code in added if REASONS[code][0] is Severity.BLOCKING]
    lost = (before_state == ReadinessState.READY.value
            and after.state is not ReadinessState.READY and added != ["telemetry_stale"])
    if blocking or lost:
        shown = blocking or [code for code in added if code != "telemetry_stale"]
        notices.append(("readiness_lost",
                        f"now {after.state.value.replace('_', ' ')}: {_words(shown)}"))
    new_warnings = set(after.warnings) - before_warnings
    if "pads_expiring_soon" in new_warnings:
        notices.append(("pads_expiring", _words(["pads_expiring_soon"])))
    if "battery_expiring_soon" in new_warnings:
        notices.append(("battery_expiring", _words(["battery_expiring_soon"])))
    return notices
