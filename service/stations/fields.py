"""Checks of station fields (pure): codes, polygons, opening hours, phone numbers."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from shapely.geometry import shape
from shapely.validation import explain_validity

from service.catalog.models import CAPABILITIES
from service.common.errors import (
    ValidationFailedError,
)
from service.common.geo import check_lon_lat
from service.stations.models import KINDS, PRECISIONS

_CAPABILITY = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


_PHONE = re.compile(r"^(\+?86-?)?(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "holidays")


_HOURS = re.compile(
    r"^(closed|([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d(,([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d)*)$"
)


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
