"""Township social-work stations: validation, admin changes, bulk import, seeding, lookups."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.validation import explain_validity

from service.catalog import get_service
from service.catalog_model import CAPABILITIES
from service.context import Context
from service.errors import (
    NotFoundError,
    PermissionDeniedError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from service.geo import check_lon_lat, point_doc_in, to_wgs84
from service.imports import RowError, csv_rows, decode_upload, refuse_if_errors
from service.models import Page, Principal
from service.routing import current_index, invalidate_index
from service.stations_model import KINDS, PRECISIONS, Station
from service.storage.stations import CountiesRepository, StationsRepository, bump_stations_version
from service.text import load_json_text

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
TOWNSHIPS_CSV = DATA_DIR / "anhui_townships.csv"
COUNTIES_GEOJSON = DATA_DIR / "anhui_counties.geojson"
_CAPABILITY = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_PHONE = re.compile(r"^(\+?86-?)?(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "holidays")
_HOURS = re.compile(
    r"^(closed|([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d(,([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d)*)$"
)
CSV_COLUMNS = ("code", "name", "county_code", "county_name", "city_name", "lon", "lat")
CSV_OPTIONAL = (
    "coord_source",
    "capabilities",
    "capacity",
    "active",
    "precision",
    "kind",
    "contact_phone",
    "opening_hours",
)
IMPORT_FIELDS = (*CSV_COLUMNS, *CSV_OPTIONAL, "jurisdiction")


# ---------------------------------------------------------------- field checks (pure)


def normalize_station_code(value: Any) -> str:
    """A 9-digit township code (12 digits accepted with a trailing 000), else ValueError."""
    text = str(value).strip()
    if re.fullmatch(r"\d{12}", text) and text.endswith("000"):
        text = text[:9]
    if not re.fullmatch(r"[1-9]\d{8}", text):
        raise ValueError("Must be a 9-digit township division code (or 12 digits ending in 000).")
    return text


def kind_from_name(name: str) -> str:
    """街道 -> street, 镇 -> town, 乡 -> township, anything else -> other (a 社工站 suffix is ignored)."""
    name = name.removesuffix("社工站").removesuffix("站")
    if name.endswith("街道"):
        return "street"
    if name.endswith("镇"):
        return "town"
    if name.endswith("乡"):
        return "township"
    return "other"


def _ring_problems(ring: Any, where: str) -> list[str]:
    if not isinstance(ring, list) or len(ring) < 4:
        return [f"{where}: a ring needs at least 4 positions."]
    problems = []
    for pos in ring:
        if (
            not isinstance(pos, list | tuple)
            or len(pos) < 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in pos[:2])
        ):
            return [f"{where}: every position must be [lon, lat] numbers."]
        if not (-180 <= pos[0] <= 180 and -90 <= pos[1] <= 90):
            problems.append(f"{where}: position {list(pos[:2])} is outside lon -180..180 / lat -90..90.")
            break
    if list(ring[0][:2]) != list(ring[-1][:2]):
        problems.append(f"{where}: the ring is not closed (first and last positions differ).")
    return problems


def check_polygon(value: Any) -> dict[str, Any]:
    """A valid GeoJSON Polygon or MultiPolygon (closed rings, no self-intersection), else ValueError."""
    if not isinstance(value, dict) or value.get("type") not in ("Polygon", "MultiPolygon"):
        raise ValueError("Must be a GeoJSON Polygon or MultiPolygon.")
    coords = value.get("coordinates")
    polygons = [coords] if value["type"] == "Polygon" else coords
    if not isinstance(polygons, list) or not polygons:
        raise ValueError("The polygon has no coordinates.")
    problems: list[str] = []
    for p, rings in enumerate(polygons):
        if not isinstance(rings, list) or not rings:
            problems.append(f"polygon {p}: no rings.")
            continue
        for r, ring in enumerate(rings):
            problems += _ring_problems(ring, f"polygon {p} ring {r}")
    if problems:
        raise ValueError(" ".join(problems[:5]))
    geom = shape({"type": value["type"], "coordinates": coords})
    if geom.is_empty:
        raise ValueError("The polygon is empty.")
    if not geom.is_valid:
        raise ValueError(f"The polygon is not valid: {explain_validity(geom)}.")
    return {"type": value["type"], "coordinates": coords}


def _check_opening_hours(value: Any) -> Any:
    if value is None or isinstance(value, str):
        if isinstance(value, str) and len(value) > 200:
            raise ValueError("At most 200 characters.")
        return value
    if isinstance(value, dict):
        for day, hours in value.items():
            if day not in _DAYS:
                raise ValueError(f"Unknown day {day!r}; use {', '.join(_DAYS)}.")
            if not isinstance(hours, str) or not _HOURS.match(hours):
                raise ValueError(f"{day}: use 'HH:MM-HH:MM' (several separated by commas) or 'closed'.")
        return value
    raise ValueError("Give the opening hours as text or as {day: 'HH:MM-HH:MM'}.")


def check_station_fields(data: dict[str, Any], *, partial: bool) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Validate and normalise station fields; returns (clean fields, errors by field)."""
    out: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}

    def attempt(name: str, fn: Callable[[Any], Any]) -> None:
        if name not in data:
            return
        try:
            out[name] = fn(data[name])
        except (ValueError, TypeError) as exc:
            errors.setdefault(name, []).append(str(exc) or "Invalid value.")

    required = () if partial else ("code", "name", "location")
    for name in required:
        if data.get(name) in (None, ""):
            errors[name] = ["Required."]

    def text(limit: int) -> Callable[[Any], str]:
        def fn(v: Any) -> str:
            if not isinstance(v, str) or not v.strip():
                raise ValueError("Must be non-empty text.")
            if len(v.strip()) > limit:
                raise ValueError(f"At most {limit} characters.")
            return v.strip()

        return fn

    def location(v: Any) -> dict[str, Any]:
        if not isinstance(v, dict) or v.get("type") != "Point" or not isinstance(v.get("coordinates"), list | tuple):
            raise ValueError("Must be a GeoJSON Point {type: Point, coordinates: [lon, lat]}.")
        coords = v["coordinates"]
        if len(coords) != 2:
            raise ValueError("A Point has exactly [lon, lat].")
        try:
            lon, lat = check_lon_lat(coords[0], coords[1])
        except ValidationFailedError as exc:
            raise ValueError("; ".join(m for ms in exc.errors.values() for m in ms)) from None
        return {"type": "Point", "coordinates": [lon, lat]}

    def capabilities(v: Any) -> list[str]:
        if isinstance(v, str):
            v = [p for p in re.split(r"[;|,\s]+", v) if p]
        if not isinstance(v, list) or not all(isinstance(c, str) and _CAPABILITY.match(c) for c in v):
            raise ValueError("Must be a list of capability codes (snake_case).")
        return sorted(set(v))

    def capacity(v: Any) -> int | None:
        if v is None or v == "":
            return None
        if isinstance(v, bool):
            raise ValueError("Must be a whole number of open cases, or empty for no limit.")
        try:
            number = int(str(v).strip())
        except ValueError:
            raise ValueError("Must be a whole number of open cases, or empty for no limit.") from None
        if not 0 <= number <= 1_000_000:
            raise ValueError("Must be between 0 and 1000000.")
        return number

    def active(v: Any) -> bool:
        if isinstance(v, bool):
            return v
        text_v = str(v).strip().lower()
        if text_v in ("1", "true", "yes", "y"):
            return True
        if text_v in ("0", "false", "no", "n"):
            return False
        raise ValueError("Must be true or false.")

    def choice(options: tuple[str, ...]) -> Callable[[Any], str]:
        def fn(v: Any) -> str:
            if v not in options:
                raise ValueError(f"Must be one of {', '.join(options)}.")
            return str(v)

        return fn

    def phone(v: Any) -> str | None:
        if v is None or v == "":
            return None
        if not isinstance(v, str) or not _PHONE.match(v.replace(" ", "")):
            raise ValueError("Must be a mainland China phone number.")
        return v.replace(" ", "")

    def digits(n: int) -> Callable[[Any], str]:
        def fn(v: Any) -> str:
            if not re.fullmatch(rf"\d{{{n}}}", str(v).strip()):
                raise ValueError(f"Must be {n} digits.")
            return str(v).strip()

        return fn

    attempt("code", normalize_station_code)
    attempt("name", text(100))
    attempt("kind", choice(KINDS))
    attempt("county_code", digits(6))
    attempt("county_name", text(50))
    attempt("city_code", digits(6))
    attempt("city_name", text(50))
    attempt("location", location)
    attempt("precision", choice(PRECISIONS))
    attempt("jurisdiction", lambda v: None if v is None else check_polygon(v))
    attempt("capabilities", capabilities)
    attempt("capacity", capacity)
    attempt("opening_hours", _check_opening_hours)
    attempt("contact_phone", phone)
    attempt("active", active)
    if "code" in out and "county_code" in out and not out["code"].startswith(out["county_code"]):
        errors.setdefault("county_code", []).append("The station code must start with its county code.")
    return out, errors


def complete_station(fields: dict[str, Any], now: Any) -> dict[str, Any]:
    """Fill derivable and default values of a new station's document."""
    code = fields["code"]
    doc = {
        "kind": kind_from_name(fields["name"]),
        "county_code": code[:6],
        "county_name": "",
        "city_code": code[:4] + "00",
        "city_name": "",
        "precision": "exact",
        "jurisdiction": None,
        "capabilities": list(CAPABILITIES),
        "capacity": None,
        "open_cases": 0,
        "opening_hours": None,
        "contact_phone": None,
        "active": True,
        **fields,
        "created_at": now,
        "updated_at": now,
    }
    return doc


def _require_admin(principal: Principal) -> None:
    if principal.role != "admin":
        raise PermissionDeniedError("admin_only", "Only an administrator may change stations.")


# ---------------------------------------------------------------- admin changes


async def _fill_names(ctx: Context, doc: dict[str, Any]) -> None:
    if not doc.get("county_name"):
        doc["county_name"] = (await CountiesRepository(ctx.db).names()).get(doc["county_code"], "")
    if not doc.get("city_name"):
        page = await StationsRepository(ctx.db).list_page(
            county_code=None, city_code=doc["city_code"], active=None, limit=1, cursor=None
        )
        doc["city_name"] = page.items[0].city_name if page.items else ""


async def create_station(*, ctx: Context, principal: Principal, data: dict[str, Any]) -> Station:
    """Add a station; routing in every process sees it within a few seconds."""
    _require_admin(principal)
    fields, errors = check_station_fields(data, partial=False)
    if errors:
        raise ValidationFailedError("invalid_station", "The station is not valid; see errors.", errors)
    doc = complete_station(fields, ctx.now())
    await _fill_names(ctx, doc)
    station = await StationsRepository(ctx.db).insert(Station(id="", **doc))
    invalidate_index(ctx=ctx)
    return station


async def update_station(*, ctx: Context, principal: Principal, station_id: str, changes: dict[str, Any]) -> Station:
    """Change some fields of a station."""
    _require_admin(principal)
    repo = StationsRepository(ctx.db)
    current = await repo.get(station_id)
    for frozen in ("open_cases", "id", "created_at", "updated_at"):
        if frozen in changes:
            raise ValidationFailedError("invalid_station", f"{frozen} cannot be set.", {frozen: ["Read-only."]})
    fields, errors = check_station_fields(changes, partial=True)
    for name in ("code", "name", "location"):
        if name in changes and changes[name] is None:
            errors[name] = ["Cannot be removed."]
    if "code" in fields and not fields["code"].startswith(fields.get("county_code", current.county_code)):
        errors.setdefault("code", []).append("The station code must start with its county code.")
    if errors:
        raise ValidationFailedError("invalid_station", "The change is not valid; see errors.", errors)
    fields["updated_at"] = ctx.now()
    station = await repo.update(station_id, fields)
    invalidate_index(ctx=ctx)
    return station


async def deactivate_station(*, ctx: Context, principal: Principal, station_id: str) -> Station:
    """Take a station out of routing (it is kept for its cases)."""
    _require_admin(principal)
    station = await StationsRepository(ctx.db).update(station_id, {"active": False, "updated_at": ctx.now()})
    invalidate_index(ctx=ctx)
    return station


async def adjust_open_cases(*, ctx: Context, station_id: str, delta: int) -> None:
    """Count a case opened (+1) or closed (-1) at a station; routing sees it within a second."""
    await StationsRepository(ctx.db).adjust_open_cases(station_id, delta)


# ---------------------------------------------------------------- reading


def in_coord_system(station: Station, coord_system: str) -> Station:
    """The station with its location in ``coord_system`` (WGS-84 stays stored)."""
    if coord_system == "wgs84":
        return station
    return dataclasses.replace(station, location=point_doc_in(station.location, coord_system) or station.location)


async def get_station(*, ctx: Context, station_id: str, coord_system: str = "wgs84") -> Station:
    """One station by id, its location in ``coord_system``."""
    return in_coord_system(await StationsRepository(ctx.db).get(station_id), coord_system)


async def list_stations(
    *,
    ctx: Context,
    county_code: str | None = None,
    city_code: str | None = None,
    include_inactive: bool = False,
    limit: int = 20,
    cursor: str | None = None,
) -> Page[Station]:
    """Stations by code, optionally of one county or city."""
    return await StationsRepository(ctx.db).list_page(
        county_code=county_code,
        city_code=city_code,
        active=None if include_inactive else True,
        limit=limit,
        cursor=cursor,
    )


async def _capability_of(ctx: Context, service_code: str) -> str:
    try:
        return (await get_service(ctx=ctx, code=service_code)).capability
    except NotFoundError:
        raise ValidationFailedError(
            "unknown_service", f"There is no service with code {service_code!r}.", {"service": ["Unknown service."]}
        ) from None


@dataclasses.dataclass(frozen=True, slots=True)
class NearbyStation:
    station: Station
    distance_km: float


async def find_nearby_stations(
    *,
    ctx: Context,
    lon: float,
    lat: float,
    coord_system: str = "wgs84",
    service_code: str | None = None,
    limit: int = 10,
) -> list[NearbyStation]:
    """Active stations nearest a point (offering a service, if given), from the routing index."""
    point = to_wgs84(lon, lat, coord_system)
    index = await current_index(ctx=ctx)
    if service_code is not None:
        mask = index.candidate_mask(await _capability_of(ctx, service_code), ())
    else:
        mask = np.ones(len(index), dtype=bool)
    radius = 25.0
    while True:
        idx, dist = index.nearest(point, mask, radius)
        if len(idx) >= limit or radius >= 2500:
            break
        radius *= 2
    idx, dist = idx[:limit], dist[:limit]
    stations = await StationsRepository(ctx.db).get_many([index.stations[int(i)].id for i in idx])
    by_id = {s.id: s for s in stations}
    out = []
    for i, d in zip(idx, dist, strict=True):
        s = by_id.get(index.stations[int(i)].id)
        if s is not None:
            out.append(NearbyStation(s, round(float(d), 3)))
    return out


# ---------------------------------------------------------------- bulk import


@dataclasses.dataclass(frozen=True, slots=True)
class ImportReport:
    dry_run: bool
    total: int
    to_create: int
    to_update: int
    written: bool
    errors: tuple[RowError, ...] = ()


def _rows_from_csv(text: str) -> list[tuple[int, dict[str, Any]]]:
    return csv_rows(text, required=CSV_COLUMNS, optional=CSV_OPTIONAL, what="stations")


def _rows_from_geojson(data: Any) -> list[tuple[int, dict[str, Any]]]:
    if (
        not isinstance(data, dict)
        or data.get("type") != "FeatureCollection"
        or not isinstance(data.get("features"), list)
    ):
        raise ValidationFailedError(
            "invalid_import",
            "A GeoJSON import must be a FeatureCollection with a features list.",
            {"type": ["Must be FeatureCollection."]},
        )
    rows = []
    for n, feature in enumerate(data["features"], start=1):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            rows.append((n, {"__error__": "Not a GeoJSON Feature."}))
            continue
        props = feature.get("properties") or {}
        geometry = feature.get("geometry") or {}
        if not isinstance(props, dict) or not isinstance(geometry, dict) or geometry.get("type") != "Point":
            rows.append((n, {"__error__": "A station feature needs a Point geometry and a properties object."}))
            continue
        coords = geometry.get("coordinates") or [None, None]
        row = dict(props)
        row["lon"], row["lat"] = [*coords, None, None][:2] if isinstance(coords, list) else (None, None)
        rows.append((n, row))
    return rows


def _row_fields(row: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Station fields from one import row, with (field, message) problems."""
    problems: list[tuple[str, str]] = []
    unknown = sorted(k for k in row if k not in IMPORT_FIELDS)
    for k in unknown:
        problems.append((k, "Unknown field."))
    data = {k: v for k, v in row.items() if k in IMPORT_FIELDS and k not in ("lon", "lat", "coord_source")}
    for name in CSV_COLUMNS:
        if row.get(name) in (None, ""):
            problems.append((name, "Required."))
    try:
        lon, lat = check_lon_lat(row.get("lon"), row.get("lat"))
        data["location"] = {"type": "Point", "coordinates": [lon, lat]}
    except ValidationFailedError as exc:
        for key, msgs in exc.errors.items():
            problems.append((key.split(".")[-1], msgs[0]))
    if "precision" not in data:
        data["precision"] = "approx" if "approx" in str(row.get("coord_source", "")) else "exact"
    fields, errors = check_station_fields(data, partial=False)
    for key, msgs in errors.items():
        if key == "location" and any(f in ("lon", "lat") for f, _ in problems):
            continue
        if msgs == ["Required."] and any(f == key for f, _ in problems):
            continue
        problems += [(key, m) for m in msgs]
    return fields, problems


async def import_stations(
    *,
    ctx: Context,
    principal: Principal,
    body: bytes,
    content_type: str,
    dry_run: bool,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ImportReport:
    """Validate every row of a CSV or GeoJSON station file; unless a dry run, write all or nothing."""
    _require_admin(principal)
    text = decode_upload(body)
    if content_type == "text/csv":
        rows = _rows_from_csv(text)
    elif content_type in ("application/geo+json", "application/json"):
        rows = _rows_from_geojson(load_json_text(text, what="GeoJSON"))
    else:
        raise UnsupportedMediaTypeError(
            "unsupported_media_type", "Send text/csv, application/geo+json or application/json."
        )
    errors: list[RowError] = []
    docs: dict[str, dict[str, Any]] = {}
    for line, row in rows:
        if "__error__" in row:
            errors.append(RowError(line, "_row", row["__error__"]))
            continue
        fields, problems = _row_fields(row)
        errors += [RowError(line, f, m) for f, m in problems]
        if problems:
            continue
        if fields["code"] in docs:
            errors.append(RowError(line, "code", f"Code {fields['code']} appears twice in the file."))
            continue
        docs[fields["code"]] = fields
    repo = StationsRepository(ctx.db)
    existing = await repo.codes(docs) if docs else {}
    now = ctx.now()
    inserts = [complete_station(f, now) for code, f in docs.items() if code not in existing]
    updates = [(code, {**f, "updated_at": now}) for code, f in docs.items() if code in existing]
    report = ImportReport(
        dry_run=dry_run,
        total=len(rows),
        to_create=len(inserts),
        to_update=len(updates),
        written=False,
        errors=tuple(errors),
    )
    if not dry_run:
        refuse_if_errors(errors)
    if dry_run or not rows:
        return report
    if on_total:
        on_total(len(inserts) + len(updates))
    await repo.apply_import(inserts, updates, progress)
    invalidate_index(ctx=ctx)
    return dataclasses.replace(report, written=True)


# ---------------------------------------------------------------- seeding


def township_station_docs(now: Any) -> list[dict[str, Any]]:
    """One station document per township of the vendored division list (approximate points)."""
    docs = []
    with TOWNSHIPS_CSV.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            code = row["code"]
            doc = complete_station(
                {
                    "code": code,
                    "name": f"{row['name']}社工站",
                    "county_code": row["county_code"],
                    "county_name": row["county_name"],
                    "city_name": row["city_name"],
                    "location": {"type": "Point", "coordinates": [float(row["lon"]), float(row["lat"])]},
                    "precision": "approx",
                },
                now,
            )
            doc["kind"] = kind_from_name(row["name"])
            docs.append(doc)
    return docs


def county_docs() -> list[dict[str, Any]]:
    """The vendored county polygons as documents (polygons checked with shapely, repaired if needed)."""
    data = json.loads(COUNTIES_GEOJSON.read_text(encoding="utf-8"))
    out = []
    for feature in data["features"]:
        geom = feature["geometry"]
        shp = shape(geom)
        if not shp.is_valid:
            shp = shapely.make_valid(shp)
            geom = shapely.geometry.mapping(shp)
        code = feature["properties"]["code"]
        out.append(
            {
                "code": code,
                "name": feature["properties"]["name"],
                "city_code": code[:4] + "00",
                "geometry": json.loads(json.dumps(geom)),
            }
        )
    return out


async def seed_stations(ctx: Context) -> str:
    """Seed the county polygons and one station per township (only what is missing)."""
    counties = await CountiesRepository(ctx.db).upsert_many(county_docs())
    stations = await StationsRepository(ctx.db).insert_missing(township_station_docs(ctx.now()))
    if counties and not stations:
        await bump_stations_version(ctx.db)
    invalidate_index(ctx=ctx)
    return f"{counties} county polygons and {stations} township stations added"


async def search_stations(
    *,
    ctx: Context,
    near: tuple[float, float] | None = None,
    coord_system: str = "wgs84",
    service: str | None = None,
    county: str | None = None,
    city: str | None = None,
    include_inactive: bool = False,
    limit: int = 20,
    cursor: str | None = None,
) -> Page[Any]:
    """Nearest stations to a point (one page, with distances), or the list by code with filters.

    ``coord_system`` is the system of ``near`` and of the locations returned (WGS-84 stays stored).
    """
    if near is not None:
        hits = await find_nearby_stations(
            ctx=ctx, lon=near[0], lat=near[1], coord_system=coord_system, service_code=service, limit=limit
        )
        return Page(
            items=[
                dataclasses.replace(h, station=in_coord_system(h.station, coord_system))
                for h in hits
                if (not county or h.station.county_code == county) and (not city or h.station.city_code == city)
            ],
            next_cursor=None,
        )
    page = await list_stations(
        ctx=ctx, county_code=county, city_code=city, include_inactive=include_inactive, limit=limit, cursor=cursor
    )
    if service is not None:
        capability = await _capability_of(ctx, service)
        page = Page(items=[s for s in page.items if capability in s.capabilities], next_cursor=page.next_cursor)
    return Page(items=[in_coord_system(s, coord_system) for s in page.items], next_cursor=page.next_cursor)
