"""Reading AED registry files: the registry CSV (contract §5) and OpenStreetMap exports.

Turns each row of a file into an `AedCreate` or a `RowRejection` naming the row and the reason.
Pure parsing: no database. A bad row never stops the good ones; only a file that cannot be read at
all (not UTF-8, not JSON, no header) raises `ImportFileError`.

Formats, detected from the file:
- registry CSV: header with `id`, `lat`, `lon` and the optional columns of contract §5;
- OpenStreetMap CSV: a header with `osm_id` and OSM tag names as columns;
- GeoJSON FeatureCollection of points: OpenStreetMap `emergency=defibrillator` exports (ids such as
  `node/123`, tags as properties) or any registry with those properties.

With `german_hours`, opening hours written as German free text ("Mo-Fr 8-18 Uhr") are read into
OSM syntax (`fleet.opening_hours_de`); text that cannot be read safely is imported as no hours,
so the AED counts as closed, and noted with its line.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fleet.access import opening_hours_error
from fleet.errors import ImportFileError
from fleet.models import AedCreate
from fleet.opening_hours_de import GermanHours, read_german_hours

ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
OSM_REF = re.compile(r"(node|way|relation)/\d+")

REGISTRY_COLUMNS = (
    "id", "lat", "lon", "address", "municipality", "opening_hours", "access", "indoor",
    "location_hint", "manager", "cabinet_code", "device_id",
)
# Further columns the registry CSV accepts beyond the contract's; other columns are reported.
EXTRA_COLUMNS = ("name", "serial", "make", "model", "pads_expiry", "battery_expiry")
ALIASES = {
    "latitude": "lat",
    "lng": "lon",
    "longitude": "lon",
    "defibrillator:location": "location_hint",
    "location_details": "location_hint",
    "operator": "manager",
    "manufacturer": "make",
}

# Read when present, to complete the address or the location hint.
USED_ALSO = {"description", "postalcode"}

# OpenStreetMap `access` values: who may use the AED.
PUBLIC_ACCESS = {"yes", "public", "permissive", "customers", "designated"}
PRIVATE_ACCESS = {"private", "no", "employees", "staff"}
TRUE_WORDS = {"yes", "true", "1", "y"}
FALSE_WORDS = {"no", "false", "0", "n"}

MAX_SOURCE = 40
MAX_FIELD = {
    "address": 300, "location_hint": 500, "name": 200, "manager": 200, "municipality": 120,
    "opening_hours": 500, "cabinet_code": 32, "serial": 64, "make": 100, "model": 100,
}


@dataclass(frozen=True)
class RowRejection:
    """A row that was not imported: where it is and why."""

    line: int
    reason: str
    aed_id: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" ({self.aed_id})" if self.aed_id else "")
        return f"{where}: {self.reason}"


@dataclass
class ParsedFile:
    """Every row of a registry file, parsed."""

    format: str
    records: list[tuple[int, AedCreate]] = field(default_factory=list)
    rejections: list[RowRejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    german_hours_read: int = 0

    @property
    def rows(self) -> int:
        return len(self.records) + len(self.rejections)


class RowError(ValueError):
    """One row's problem, in words for the operator."""


def read_registry_file(path: Path, id_prefix: str = "", source: str | None = None, *,
                       german_hours: bool = False) -> ParsedFile:
    """Parse a registry file of any supported format."""
    if source is not None and not 1 <= len(source) <= MAX_SOURCE:
        raise ImportFileError(f"source name must be 1-{MAX_SOURCE} characters")
    if id_prefix and not ID_RE.fullmatch(id_prefix):
        raise ImportFileError("id prefix may hold only letters, digits, '-' and '_'")
    text = _read_text(path)
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".geojson", ".json")) or text.lstrip().startswith("{"):
        parsed = parse_geojson(text, id_prefix=id_prefix, source=source,
                               german_hours=german_hours)
    else:
        parsed = parse_csv(text, id_prefix=id_prefix, source=source, german_hours=german_hours)
    if parsed.german_hours_read:
        parsed.notes.append(f"{parsed.german_hours_read} opening_hours read from German text "
                            "into OpenStreetMap syntax")
    return parsed


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror}") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ImportFileError(f"{path} is a damaged gzip file: {exc}") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path} is not UTF-8 text (byte {exc.start})") from exc


def parse_csv(text: str, id_prefix: str = "", source: str | None = None, *,
              german_hours: bool = False) -> ParsedFile:
    """Parse a registry CSV or an OpenStreetMap CSV export."""
    stream = io.StringIO(text, newline="")
    reader = csv.DictReader(stream)
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise ImportFileError(f"cannot read the CSV header: {exc}") from exc
    if not header:
        raise ImportFileError("the file is empty: no header row")
    columns = [c.strip().lower() for c in header]
    is_osm = "osm_id" in columns
    parsed = ParsedFile(format="osm-csv" if is_osm else "registry-csv")
    if not is_osm:
        known = set(REGISTRY_COLUMNS) | set(EXTRA_COLUMNS) | set(ALIASES) | USED_ALSO
        unknown = [c for c in columns if c not in known]
        if unknown:
            parsed.notes.append("columns ignored (not part of the registry format): "
                                + ", ".join(unknown))
        missing = [c for c in ("id", "lat", "lon") if c not in _canonical(columns)]
        if missing:
            raise ImportFileError("required columns missing: " + ", ".join(missing))

    seen: dict[str, int] = {}
    row_iter = iter(reader)
    stuck_at, error_line = -1, 0
    while True:
        before = reader.line_num
        try:
            row = next(row_iter)
        except StopIteration:
            break
        except csv.Error as exc:
            if stream.tell() == stuck_at:  # the reader no longer moves on
                break
            # line_num leaves out the line it failed on
            stuck_at, error_line = stream.tell(), max(before, error_line) + 1
            parsed.rejections.append(RowRejection(error_line, f"unreadable CSV: {exc}"))
            continue  # the reader resumes after the row it could not read
        line = reader.line_num
        if not any(v.strip() for v in row.values() if isinstance(v, str)) and None not in row:
            continue  # a blank line, or one of spaces only
        if None in row:
            parsed.rejections.append(RowRejection(
                line, f"row has more fields than the header's {len(header)}", _row_id(row)))
            continue
        if any(value is None for value in row.values()):
            filled = sum(value is not None for value in row.values())
            parsed.rejections.append(RowRejection(
                line, f"row has {filled} of the header's {len(header)} fields (truncated?)",
                _row_id(row)))
            continue
        raw = {k.strip().lower(): v for k, v in row.items()}
        if is_osm:
            raw["id"] = _osm_id(raw.get("osm_type") or "node", raw.get("osm_id"))
        _add_record(parsed, line, raw, id_prefix, source or parsed.format, seen, german_hours)
    return parsed


def _row_id(row: dict[str | None, object]) -> str | None:
    value = row.get("id") or row.get("osm_id")
    return value.strip() or None if isinstance(value, str) else None


def parse_geojson(text: str, id_prefix: str = "", source: str | None = None, *,
                  german_hours: bool = False) -> ParsedFile:
    """Parse a GeoJSON FeatureCollection of AED points; rows are numbered by feature."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(
            f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            " (is the file truncated?)") from exc
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number; [[[[...]]]]
        raise ImportFileError(f"not valid JSON: {str(exc)[:200]}") from exc
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise ImportFileError("not a GeoJSON FeatureCollection")
    features = document.get("features")
    if not isinstance(features, list):
        raise ImportFileError("GeoJSON FeatureCollection without a features list")
    parsed = ParsedFile(format="geojson")
    seen: dict[str, int] = {}
    for number, feature in enumerate(features, start=1):
        try:
            raw, from_osm = _feature_fields(feature)
        except RowError as exc:
            parsed.rejections.append(RowRejection(number, str(exc)))
            continue
        if from_osm:
            parsed.format = "osm-geojson"
        _add_record(parsed, number, raw, id_prefix,
                    source or ("osm-geojson" if from_osm else "geojson"), seen, german_hours)
    return parsed


def _feature_fields(feature: Any) -> tuple[dict[str, str], bool]:
    """The feature's fields, and whether it is an OpenStreetMap element."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise RowError("not a GeoJSON Feature")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise RowError("feature properties are not an object")
    raw = {str(k).strip().lower(): "" if v is None else str(v) for k, v in props.items()}
    geometry = feature.get("geometry")
    if geometry is None:
        raise RowError("bad coordinates: feature has no geometry")
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        raise RowError("bad coordinates: geometry is not a Point")
    coords = geometry.get("coordinates")
    if not isinstance(coords, list) or len(coords) < 2:
        raise RowError("bad coordinates: Point without [lon, lat]")
    raw["lon"], raw["lat"] = str(coords[0]), str(coords[1])
    osm_type = raw.get("osm_type") or ""
    feature_id = feature.get("id")
    osm_ref = next((ref for ref in (feature_id, raw.get("@id"))
                    if isinstance(ref, str) and OSM_REF.fullmatch(ref)), None)
    if raw.get("osm_id"):
        raw["id"] = _osm_id(osm_type or "node", raw["osm_id"])
        return raw, True
    if osm_ref is not None:
        kind, number = osm_ref.split("/")
        raw["id"] = _osm_id(kind, number)
        return raw, True
    if not raw.get("id") and feature_id is not None:
        raw["id"] = str(feature_id)
    return raw, False


def _osm_id(osm_type: str, osm_id: str | None) -> str:
    if not osm_id or not str(osm_id).strip().isdigit():
        return ""
    return f"osm-{osm_type.strip().lower()}-{str(osm_id).strip()}"


def _canonical(columns: list[str]) -> set[str]:
    return {ALIASES.get(c, c) for c in columns}


def _add_record(parsed: ParsedFile, line: int, raw: dict[str, str], id_prefix: str,
                source: str, seen: dict[str, int], german_hours: bool = False) -> None:
    german = _read_german_hours(raw) if german_hours else None
    try:
        record = record_from_fields(raw, id_prefix=id_prefix, source=source)
    except RowError as exc:
        aed_id = (raw.get("id") or "").strip() or None
        parsed.rejections.append(RowRejection(line, str(exc), aed_id))
        return
    first = seen.get(record.id)
    if first is not None:
        parsed.rejections.append(RowRejection(
            line, f"duplicate id {record.id} (first seen at line {first})", record.id))
        return
    seen[record.id] = line
    parsed.records.append((line, record))
    if german is None:
        return
    if german.opening_hours is None:
        record.opening_hours = None  # set, so that a re-import clears hours stored before
        parsed.notes.append(f"line {line}: opening_hours {german.text!r} not read "
                            f"({german.reason}): imported without hours, counts as closed")
    else:
        parsed.german_hours_read += 1


def _read_german_hours(raw: dict[str, str]) -> GermanHours | None:
    """The row's hours read from German free text into OSM syntax, put into the row (nothing
    where they cannot be read); None when the row has no hours or OSM hours already."""
    hours = (raw.get("opening_hours") or "").strip()
    if not hours or opening_hours_error(hours) is None:
        return None
    read = read_german_hours(hours)
    raw["opening_hours"] = read.opening_hours or ""
    return read


def record_from_fields(raw: dict[str, str], id_prefix: str = "",
                       source: str | None = None) -> AedCreate:
    """Validate one row's fields (lower-case keys, OSM tags or registry columns)."""
    fields: dict[str, str] = {}
    for key, value in raw.items():
        canonical = ALIASES.get(key, key)
        value = value.strip() if isinstance(value, str) else value
        # The registry column wins over an alias (e.g. `manager` over OSM `operator`).
        if value and (canonical not in fields or key == canonical):
            fields[canonical] = value

    aed_id = fields.get("id", "")
    if not aed_id:
        raise RowError("missing id")
    aed_id = id_prefix + aed_id
    if not ID_RE.fullmatch(aed_id):
        raise RowError(f"invalid id {aed_id!r}: use 1-64 letters, digits, '-' or '_'")

    values: dict[str, Any] = {"id": aed_id, "source": source}
    values["lat"], values["lon"] = _coordinates(fields.get("lat"), fields.get("lon"))

    address = fields.get("address") or _osm_address(fields)
    if address:
        postcode = fields.get("postalcode")
        values["address"] = f"{address}, {postcode}" if postcode and postcode not in address \
            else address
    for name in ("name", "location_hint", "municipality", "manager", "cabinet_code",
                 "serial", "make", "model"):
        if fields.get(name):
            values[name] = fields[name]
    if not fields.get("location_hint") and fields.get("description"):
        values["location_hint"] = fields["description"]

    hours = fields.get("opening_hours")
    if hours:
        error = opening_hours_error(hours)
        if error:
            raise RowError(error)
        values["opening_hours"] = hours
    if "access" in fields:
        values["access"] = _access(fields["access"])
    if "indoor" in fields:
        values["indoor"] = _indoor(fields["indoor"])
    for name in ("pads_expiry", "battery_expiry"):
        if fields.get(name):
            values[name] = _date(name, fields[name])
    if fields.get("device_id"):
        if not ID_RE.fullmatch(fields["device_id"]):
            raise RowError(f"invalid device_id {fields['device_id']!r}")
        values["device_id"] = fields["device_id"]

    for name, limit in MAX_FIELD.items():
        if isinstance(values.get(name), str) and len(values[name]) > limit:
            raise RowError(f"{name} longer than {limit} characters")
    try:
        return AedCreate(**values)
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise RowError(f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}") from None


def _coordinates(lat_text: str | None, lon_text: str | None) -> tuple[float, float]:
    if not lat_text or not lon_text:
        raise RowError("bad coordinates: lat and lon are required")
    try:
        lat, lon = float(lat_text.replace(",", ".")), float(lon_text.replace(",", "."))
    except ValueError:
        raise RowError(f"bad coordinates: {lat_text!r}, {lon_text!r} are not numbers") from None
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise RowError("bad coordinates: not finite")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise RowError(f"bad coordinates: lat {lat} / lon {lon} out of range")
    if lat == 0 and lon == 0:
        raise RowError("bad coordinates: 0, 0 (a missing location)")
    return round(lat, 7), round(lon, 7)


def _osm_address(fields: dict[str, str]) -> str | None:
    street = " ".join(p for p in (fields.get("addr:street"), fields.get("addr:housenumber")) if p)
    place = " ".join(p for p in (fields.get("addr:postcode"), fields.get("addr:city")) if p)
    return ", ".join(p for p in (street, place) if p) or None


def _access(value: str) -> str:
    word = value.strip().lower()
    if word in PUBLIC_ACCESS:
        return "public"
    if word in PRIVATE_ACCESS:
        return "private"
    raise RowError(f"unknown access value {value!r}: expected public/yes/permissive or private/no")


def _indoor(value: str) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise RowError(f"unknown indoor value {value!r}: expected yes or no")


def _date(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RowError(f"{name} {value!r} is not a date (YYYY-MM-DD)") from None


def iter_rejections(parsed: ParsedFile) -> Iterator[RowRejection]:
    yield from sorted(parsed.rejections, key=lambda r: r.line)
