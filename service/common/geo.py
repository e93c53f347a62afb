"""Coordinates: WGS-84, GCJ-02 (Chinese web maps) and BD-09 (Baidu), and great-circle distance.

Conversions use PyPI ``prcoords``. Its own China check only guards ``wgs_gcj``; the precise
inverse functions shift every point, so the outside-China guard lives here, once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import prcoords

from service.common.errors import ValidationFailedError

CoordSystem = Literal["wgs84", "gcj02", "bd09"]
COORD_SYSTEMS: tuple[CoordSystem, ...] = ("wgs84", "gcj02", "bd09")
EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)


@dataclass(frozen=True, slots=True)
class Point:
    """A WGS-84 point in degrees."""

    lon: float
    lat: float


def in_china(lon: float, lat: float) -> bool:
    """True inside the rough bounding box where the Chinese datums apply (prcoords' test)."""
    return bool(prcoords.sanity_in_china_p(prcoords.Coords(lat, lon)))


def check_lon_lat(lon: object, lat: object, *, field: str = "location") -> tuple[float, float]:
    """Finite numbers with lon in [-180, 180] and lat in [-90, 90], else ValidationFailedError."""
    errors: dict[str, list[str]] = {}
    values: list[float] = []
    for name, value, limit in (("lon", lon, 180.0), ("lat", lat, 90.0)):
        try:
            if isinstance(value, bool):
                raise TypeError
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            errors[f"{field}.{name}"] = ["Must be a number."]
            continue
        if not math.isfinite(number):
            errors[f"{field}.{name}"] = ["Must be a finite number."]
        elif not -limit <= number <= limit:
            errors[f"{field}.{name}"] = [f"Must be between {-limit:g} and {limit:g}."]
        values.append(number)
    if errors:
        raise ValidationFailedError("invalid_coordinates", "The coordinates are out of range or not numbers.", errors)
    return values[0], values[1]


def to_wgs84(lon: float, lat: float, coord_system: str = "wgs84") -> Point:
    """Convert a point given in ``coord_system`` to WGS-84; points outside China are not shifted."""
    lon, lat = check_lon_lat(lon, lat)
    if coord_system not in COORD_SYSTEMS:
        raise ValidationFailedError(
            "invalid_coord_system",
            f"Unknown coordinate system {coord_system!r}; use wgs84, gcj02 or bd09.",
            {"coord_system": [f"Must be one of {', '.join(COORD_SYSTEMS)}."]},
        )
    if coord_system == "wgs84" or not in_china(lon, lat):
        return Point(lon, lat)
    source = prcoords.Coords(lat, lon)
    out = prcoords.gcj_wgs_bored(source) if coord_system == "gcj02" else prcoords.bd_wgs_bored(source)
    return Point(float(out.lon), float(out.lat))


def from_wgs84(point: Point, coord_system: str) -> Point:
    """Convert a WGS-84 point into ``coord_system``; points outside China are not shifted."""
    if coord_system == "wgs84" or not in_china(point.lon, point.lat):
        return point
    source = prcoords.Coords(point.lat, point.lon)
    out = prcoords.wgs_gcj(source, False) if coord_system == "gcj02" else prcoords.wgs_bd(source, False)
    return Point(float(out.lon), float(out.lat))


def point_doc_in(doc: dict[str, Any] | None, coord_system: str) -> dict[str, Any] | None:
    """A stored GeoJSON Point (WGS-84) as read in ``coord_system`` (a new dict; WGS-84 stays stored)."""
    if not doc or coord_system == "wgs84" or doc.get("type") != "Point":
        return doc
    lon, lat = doc["coordinates"][:2]
    out = from_wgs84(Point(float(lon), float(lat)), coord_system)
    return {**doc, "coordinates": [round(out.lon, 7), round(out.lat, 7)]}


def haversine_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in kilometres on a sphere of the mean Earth radius."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
