"""In-memory spatial index of responders and AEDs, updated in place as the world changes.

A k-d tree (scipy `cKDTree`) over sphere coordinates answers "everything within r metres" in
microseconds. Trees cannot move points, so a moved or added point goes to a small overlay that
is scanned with numpy next to the tree and the old tree entry is masked out; once the overlay
holds more than a sixteenth of the points the tree is rebuilt (tens of milliseconds for 250,000
points). Location, availability and readiness updates therefore cost microseconds, not rebuilds.

The per-responder facts the alertability rules need are kept as numpy columns so that the rules
of `responders.py` run over all candidates at once (`alertable_mask`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from alarm_core.geo import arc_to_chord, chord_to_arc, to_xyz
from alarm_core.policy import COMPETENCES, DispatchPolicy
from alarm_core.responders import adult_from, certificate_valid_until

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

NO_DAY = np.iinfo(np.int32).min  # certificate missing: never valid
NO_MINUTE = -1


class PointIndex:
    """Slots with positions that can be added, moved and removed; radius queries by distance."""

    def __init__(self, capacity: int = 1024, rebuild_share: float = 1 / 16,
                 min_overlay: int = 2048) -> None:
        self._xyz = np.zeros((max(capacity, 16), 3))
        self._present = np.zeros(max(capacity, 16), dtype=bool)
        self._in_tree = np.zeros(max(capacity, 16), dtype=bool)
        self._size = 0
        self._tree: cKDTree | None = None
        self._tree_slots: IntArray = np.zeros(0, dtype=np.int64)
        self._overlay: list[int] = []
        self._overlay_set: set[int] = set()
        self._rebuild_share = rebuild_share
        self._min_overlay = min_overlay
        self.rebuilds = 0

    def __len__(self) -> int:
        return int(self._present[:self._size].sum())

    def _grow(self, needed: int) -> None:
        capacity = len(self._present)
        if needed <= capacity:
            return
        new = max(needed, capacity * 2)
        self._xyz = np.resize(self._xyz, (new, 3))
        for name in ("_present", "_in_tree"):
            column = getattr(self, name)
            grown = np.zeros(new, dtype=bool)
            grown[:capacity] = column
            setattr(self, name, grown)

    def bulk_load(self, xyz: FloatArray) -> None:
        """Replace everything by these points (slots 0..n-1) and build the tree once."""
        n = len(xyz)
        self._grow(n)
        self._xyz[:n] = xyz
        self._present[:] = False
        self._present[:n] = True
        self._size = n
        self.rebuild()

    def add(self, xyz: FloatArray) -> int:
        slot = self._size
        self._grow(slot + 1)
        self._size += 1
        self._xyz[slot] = xyz
        self._present[slot] = True
        self._to_overlay(slot)
        return slot

    def move(self, slot: int, xyz: FloatArray) -> None:
        if self._present[slot] and np.array_equal(self._xyz[slot], xyz):
            return  # where it was: the tree still holds it right
        self._xyz[slot] = xyz
        self._present[slot] = True
        self._to_overlay(slot)

    def remove(self, slot: int) -> None:
        self._present[slot] = False

    def _to_overlay(self, slot: int) -> None:
        self._in_tree[slot] = False
        if slot not in self._overlay_set:
            self._overlay_set.add(slot)
            self._overlay.append(slot)
        if len(self._overlay) > max(self._min_overlay, self._size * self._rebuild_share):
            self.rebuild()

    def rebuild(self) -> None:
        """Put every present point back in a fresh tree and empty the overlay."""
        slots = np.flatnonzero(self._present[:self._size])
        self._tree_slots = slots
        self._tree = cKDTree(self._xyz[slots]) if len(slots) else None
        self._in_tree[:] = False
        self._in_tree[slots] = True
        self._overlay = []
        self._overlay_set = set()
        self.rebuilds += 1

    def within(self, center: FloatArray, metres: float) -> tuple[IntArray, FloatArray]:
        """Slots within `metres` (great circle) of `center`, nearest first, with distances."""
        chord = arc_to_chord(metres)
        parts: list[IntArray] = []
        if self._tree is not None:
            hits = self._tree.query_ball_point(center, chord, return_sorted=False)
            if hits:
                slots = self._tree_slots[np.asarray(hits, dtype=np.int64)]
                parts.append(slots[self._in_tree[slots] & self._present[slots]])
        if self._overlay:
            overlay = np.asarray(self._overlay, dtype=np.int64)
            overlay = overlay[self._present[overlay]]
            near = np.linalg.norm(self._xyz[overlay] - center, axis=1) <= chord
            parts.append(overlay[near])
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        slots = np.concatenate(parts) if len(parts) > 1 else parts[0]
        distances = np.linalg.norm(self._xyz[slots] - center, axis=1)
        order = np.lexsort((slots, distances))  # ties broken by slot: deterministic
        return slots[order], chord_to_arc(distances[order])

    def position(self, slot: int) -> FloatArray:
        return self._xyz[slot]

    def present_slots(self) -> IntArray:
        """Every slot that holds a point."""
        return np.flatnonzero(self._present[:self._size])

    def positions(self, slots: IntArray) -> FloatArray:
        return self._xyz[slots]


def _day(value: date) -> int:
    return value.toordinal()




def competence_bits(competences: frozenset[str] | set[str]) -> int:
    """The competences as bits of one integer, in the order of `COMPETENCES` (unknown: none)."""
    return sum(1 << i for i, name in enumerate(COMPETENCES) if name in competences)


def _minute(value: time | None) -> int:
    return NO_MINUTE if value is None else value.hour * 60 + value.minute


@dataclass(frozen=True)
class ResponderEntry:
    """One responder as the index holds it."""

    id: str
    lat: float | None
    lon: float | None
    date_of_birth: date
    certificate_date: date | None
    available: bool = True
    active: bool = True
    busy: bool = False
    quiet_from: time | None = None
    quiet_until: time | None = None
    medical: bool = False
    app: bool = True
    competences: frozenset[str] = frozenset()
    region: str | None = None
    """The region whose responder this is (cross-border alerting needs both regions' consent)."""


NO_REGION = -1


class ResponderPool:
    """Responders by position, with the columns their alertability is decided on."""

    COLUMNS = {"adult_day": np.int32, "cert_until_day": np.int32, "available": bool,
               "active": bool, "busy": bool, "quiet_from": np.int16, "quiet_until": np.int16,
               "medical": bool, "app": bool, "competences": np.int32, "region": np.int16}

    def __init__(self, policy: DispatchPolicy, include_sms: bool = True) -> None:
        self.policy = policy
        self.include_sms = include_sms
        """Whether responders reached by SMS may be chosen (only with an SMS gateway)."""
        self.index = PointIndex()
        self.ids: list[str] = []
        self.slot_of: dict[str, int] = {}
        self._cols: dict[str, Any] = {name: np.zeros(1024, dtype=kind)
                                      for name, kind in self.COLUMNS.items()}
        self._region_numbers: dict[str, int] = {}
        self._region_codes: list[str] = []

    def _region_number(self, code: str | None) -> int:
        if code is None:
            return NO_REGION
        number = self._region_numbers.get(code)
        if number is None:
            number = self._region_numbers[code] = len(self._region_codes)
            self._region_codes.append(code)
        return number

    def __len__(self) -> int:
        return len(self.index)

    def _values(self, entry: ResponderEntry) -> dict[str, Any]:
        return {
            "adult_day": _day(adult_from(entry.date_of_birth, self.policy)),
            "cert_until_day": (NO_DAY if entry.certificate_date is None else
                               _day(certificate_valid_until(entry.certificate_date, self.policy))),
            "available": entry.available, "active": entry.active, "busy": entry.busy,
            "quiet_from": _minute(entry.quiet_from), "quiet_until": _minute(entry.quiet_until),
            "medical": entry.medical, "app": entry.app,
            "competences": competence_bits(entry.competences),
            "region": self._region_number(entry.region),
        }

    def load(self, entries: list[ResponderEntry]) -> None:
        """Replace the pool's content and build the tree once."""
        self.ids = [entry.id for entry in entries]
        self.slot_of = {rid: slot for slot, rid in enumerate(self.ids)}
        n = len(entries)
        self._cols = {name: np.zeros(max(n, 1024), dtype=kind)
                      for name, kind in self.COLUMNS.items()}
        for slot, entry in enumerate(entries):
            for name, value in self._values(entry).items():
                self._cols[name][slot] = value
        located = np.array([e.lat is not None and e.lon is not None for e in entries],
                           dtype=bool)
        lat = np.array([e.lat if e.lat is not None else 0.0 for e in entries], dtype=float)
        lon = np.array([e.lon if e.lon is not None else 0.0 for e in entries], dtype=float)
        self.index.bulk_load(to_xyz(lat, lon) if n else np.zeros((0, 3)))
        for missing in np.flatnonzero(~located).tolist():
            self.index.remove(missing)

    def upsert(self, entry: ResponderEntry) -> None:
        """Add a responder or replace what the pool knows of one; no rebuild."""
        slot = self.slot_of.get(entry.id)
        xyz = to_xyz(entry.lat, entry.lon) if entry.lat is not None and entry.lon is not None \
            else None
        if slot is None:
            slot = int(self.index.add(xyz if xyz is not None else np.zeros(3)))
            self.ids.append(entry.id)
            self.slot_of[entry.id] = slot
            if slot >= len(self._cols["busy"]):
                self._cols = {name: np.resize(col, max(slot + 1, len(col) * 2))
                              for name, col in self._cols.items()}
        elif xyz is not None:
            self.index.move(slot, xyz)
        if xyz is None:
            self.index.remove(slot)
        for name, value in self._values(entry).items():
            self._cols[name][slot] = value

    def move(self, responder_id: str, lat: float, lon: float) -> None:
        self.index.move(self.slot_of[responder_id], to_xyz(lat, lon))

    def remove(self, responder_id: str) -> None:
        slot = self.slot_of.get(responder_id)
        if slot is not None:
            self.index.remove(slot)

    def set_flag(self, responder_id: str, name: str, value: bool) -> None:
        slot = self.slot_of.get(responder_id)
        if slot is not None:
            self._cols[name][slot] = value

    def alertable_mask(self, slots: IntArray, local_now: datetime) -> NDArray[np.bool_]:
        """`responders.not_alertable_reason(...) is None`, for many slots at once."""
        c = self._cols
        today = local_now.toordinal()
        minute = local_now.hour * 60 + local_now.minute
        qf = c["quiet_from"][slots].astype(np.int32)
        qu = c["quiet_until"][slots].astype(np.int32)
        quiet = (qf >= 0) & (qu >= 0) & (qf != qu) & np.where(
            qf < qu, (minute >= qf) & (minute < qu), (minute >= qf) | (minute < qu))
        return np.asarray(
            (c["adult_day"][slots] <= today) & (c["cert_until_day"][slots] >= today)
            & c["active"][slots] & c["available"][slots] & ~c["busy"][slots] & ~quiet
            & (c["app"][slots] | self.include_sms))

    def suited_mask(self, slots: IntArray, regions: frozenset[str] | None,
                    medical: bool = False, competence: str | None = None) -> NDArray[np.bool_]:
        """Which of `slots` belong to one of `regions` (None: any) and have the training and
        competence a call asks for."""
        c = self._cols
        keep = np.ones(len(slots), dtype=bool)
        if regions is not None:
            numbers = [self._region_numbers[code] for code in regions
                       if code in self._region_numbers]
            keep &= np.isin(c["region"][slots], np.asarray(numbers, dtype=np.int16))
        if medical:
            keep &= c["medical"][slots]
        if competence is not None:
            keep &= (c["competences"][slots] & competence_bits({competence})) != 0
        return keep

    def region_of(self, slot: int) -> str | None:
        number = int(self._cols["region"][slot])
        return None if number == NO_REGION else self._region_codes[number]

    def near(self, lat: float, lon: float, metres: float,
             local_now: datetime) -> tuple[IntArray, FloatArray]:
        """Alertable responders within `metres`, nearest first, with their distances."""
        slots, distances = self.index.within(to_xyz(lat, lon), metres)
        keep = self.alertable_mask(slots, local_now)
        return slots[keep], distances[keep]

    def alertable_slots(self, local_now: datetime) -> IntArray:
        """Every located responder who may be alerted at `local_now`."""
        slots = self.index.present_slots()
        return slots[self.alertable_mask(slots, local_now)]

    def flag(self, slot: int, name: str) -> bool:
        return bool(self._cols[name][slot])


class AedState:
    READY = 0
    UNVERIFIED = 1
    NOT_READY = 2
    CODES = {"ready": READY, "unverified": UNVERIFIED, "not_ready": NOT_READY}
    NAMES = {code: name for name, code in CODES.items()}


@dataclass(frozen=True)
class AedEntry:
    """One AED as the index holds it."""

    id: str
    lat: float
    lon: float
    readiness: str
    in_use: bool = False
    public: bool = True
    opening_hours: str | None = None
    access_code: str | None = None
    location_hint: str | None = None
    address: str | None = None
    region: str | None = None
    """The region the AED stands in: its opening hours are read in that region's time zone."""


class AedPool:
    """AEDs by position with their readiness, use and access, updated in place."""

    def __init__(self) -> None:
        self.index = PointIndex()
        self.entries: list[AedEntry] = []
        self.slot_of: dict[str, int] = {}
        self.state = np.zeros(0, dtype=np.int8)
        self.in_use = np.zeros(0, dtype=bool)

    def __len__(self) -> int:
        return len(self.index)

    def load(self, entries: list[AedEntry]) -> None:
        self.entries = list(entries)
        self.slot_of = {entry.id: slot for slot, entry in enumerate(self.entries)}
        self.state = np.array([AedState.CODES.get(e.readiness, AedState.NOT_READY)
                               for e in entries], dtype=np.int8)
        self.in_use = np.array([e.in_use for e in entries], dtype=bool)
        lat = np.array([e.lat for e in entries], dtype=np.float64)
        lon = np.array([e.lon for e in entries], dtype=np.float64)
        self.index.bulk_load(to_xyz(lat, lon) if entries else np.zeros((0, 3)))

    def upsert(self, entry: AedEntry) -> None:
        slot = self.slot_of.get(entry.id)
        xyz = to_xyz(entry.lat, entry.lon)
        if slot is None:
            slot = self.index.add(xyz)
            self.entries.append(entry)
            self.slot_of[entry.id] = slot
            self.state = np.append(self.state, np.int8(AedState.NOT_READY))
            self.in_use = np.append(self.in_use, False)
        else:
            if (entry.lat, entry.lon) != (self.entries[slot].lat, self.entries[slot].lon):
                self.index.move(slot, xyz)
            self.entries[slot] = entry
        self.state[slot] = AedState.CODES.get(entry.readiness, AedState.NOT_READY)
        self.in_use[slot] = entry.in_use

    def set_readiness(self, aed_id: str, readiness: str) -> None:
        slot = self.slot_of.get(aed_id)
        if slot is not None:
            self.state[slot] = AedState.CODES.get(readiness, AedState.NOT_READY)

    def set_in_use(self, aed_id: str, in_use: bool) -> None:
        slot = self.slot_of.get(aed_id)
        if slot is not None:
            self.in_use[slot] = in_use

    def remove(self, aed_id: str) -> None:
        slot = self.slot_of.get(aed_id)
        if slot is not None:
            self.index.remove(slot)
            self.state[slot] = AedState.NOT_READY
