"""The dispatch policy: every number the alarm core decides with, loaded from `[dispatch]`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class AedAccessPolicy(enum.StrEnum):
    ALWAYS_OPEN = "always_open"
    """Only AEDs that are public and open 24/7 (the Dutch rule: usable day and night)."""
    OPEN_NOW = "open_now"
    """Also AEDs whose opening hours say they are open at the time of the call."""


# What the dispatch centre may say a call is; `cardiac_arrest` when it says nothing.
INCIDENT_TYPES: dict[str, str] = {
    "cardiac_arrest": "cardiac arrest",
    "drowning": "cardiac arrest after drowning",
    "overdose": "cardiac arrest after an overdose or poisoning",
    "electrocution": "cardiac arrest after an electric shock",
    "hanging": "cardiac arrest after hanging or strangulation",
}

# Competences a responder may hold beyond CPR with an AED, with the words the console shows.
COMPETENCES: dict[str, str] = {
    "paediatric_life_support": "paediatric life support (infants and children)",
    "advanced_life_support": "advanced life support",
    "water_rescue": "water rescue",
}
PAEDIATRIC = "paediatric_life_support"
UNDER_ONE = "victim_under_one_year"

# Exclusions that always stop the citizen alarm, with the words the dispatch centre sees.
BUILT_IN_EXCLUSIONS: dict[str, str] = {
    "victim_under_one_year": "victim younger than one year: no citizen alarm",
    "unsafe_scene": "the scene is not safe for citizen responders",
    "trauma": "cardiac arrest after trauma: no citizen alarm",
}


@dataclass(frozen=True)
class DispatchPolicy:
    """How many responders and AEDs are sent, from how far, and what happens after the alert."""

    search_radius_m: float = 1_000.0
    max_search_radius_m: float = 2_000.0
    radius_step_m: float = 250.0
    min_responders: int = 10
    """The search radius widens step by step while fewer eligible responders are found."""
    max_alerted: int = 100
    max_aeds: int = 3
    aed_search_radius_m: float = 1_500.0
    cpr_share: float = 1 / 3
    """Share of the alerted who go straight to the victim; the rest are sent via an AED."""
    aed_access: AedAccessPolicy = AedAccessPolicy.ALWAYS_OPEN
    allow_unverified_aeds: bool = False
    """Also send AEDs whose readiness is `unverified` (flagged as such in the alert)."""
    speed_mps: float = 2.3
    turnout_s: float = 30.0
    accept_target_cpr: int = 3
    """Enough: this many accepted for CPR and one accepted fetcher per AED; the rest stand down."""
    fetcher_timeout_s: float = 90.0
    incident_timeout_minutes: float = 60.0
    location_retention_minutes: float = 15.0
    questionnaire_open_hours: float = 72.0
    aftercare_due_hours: float = 24.0
    inactive_after_ignored: int = 10
    """After this many unanswered alarms in a row a responder is inactive until confirmed."""
    min_age_years: int = 18
    certificate_valid_months: int = 12
    certificate_reminder_days: int = 30
    app_location_max_age_minutes: float = 30.0
    """A location reported by the app counts this long; after that the home or work address does."""
    work_hours: str = "Mo-Fr 09:00-17:00"
    """When a responder with a work address is taken to be there (OpenStreetMap opening_hours)."""
    extra_exclusions: dict[str, str] = field(default_factory=dict)
    """More exclusion codes the dispatch centre may send, with their explanation."""
    paediatric_under_one: bool = False
    """Lift the under-one-year exclusion for responders with paediatric life support: a call
    for an infant then alerts only them (and no AED fetchers without it)."""
    medical_only_incident_types: tuple[str, ...] = ()
    """Incident types to which only medically trained responders are alerted."""
    share_responders_with: tuple[str, ...] = ()
    """Regions whose calls this region's responders may go to, and whose responders may come
    to this region's calls: both regions must list each other."""
    share_aeds_with: tuple[str, ...] = ()
    """The same for AEDs."""

    def __post_init__(self) -> None:
        if self.radius_step_m <= 0:
            raise ValueError("radius_step_m must be more than 0")
        if not 0 < self.search_radius_m <= self.max_search_radius_m:
            raise ValueError("search_radius_m must be more than 0 and at most "
                             "max_search_radius_m")
        if self.min_responders < 0 or self.max_alerted < 0:
            raise ValueError("min_responders and max_alerted must be at least 0")
        if not 0 <= self.cpr_share <= 1:
            raise ValueError("cpr_share must be between 0 and 1")
        if self.speed_mps <= 0 or self.max_aeds < 0:
            raise ValueError("speed_mps must be more than 0 and max_aeds at least 0")
        unknown = sorted(set(self.medical_only_incident_types) - set(INCIDENT_TYPES))
        if unknown:
            raise ValueError(f"medical_only_incident_types: unknown incident type(s) "
                             f"{', '.join(unknown)}; known: {', '.join(INCIDENT_TYPES)}")

    def exclusions(self) -> dict[str, str]:
        return {**BUILT_IN_EXCLUSIONS, **self.extra_exclusions}

    def radius_steps(self) -> list[float]:
        """The search radii tried in turn, from the first to the largest."""
        steps = [self.search_radius_m]
        while steps[-1] < self.max_search_radius_m:
            steps.append(min(self.max_search_radius_m, steps[-1] + self.radius_step_m))
        return steps
