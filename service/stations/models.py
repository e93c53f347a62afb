"""The station dataclass, shared by the stations service and its repository."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

KINDS = ("street", "town", "township", "other")
KIND_NAMES = {"street": "街道", "town": "镇", "township": "乡", "other": "其他"}
PRECISIONS = ("exact", "approx")


@dataclasses.dataclass(frozen=True, slots=True)
class Station:
    """A township social-work station (乡镇/街道社工站)."""

    id: str
    code: str  # 9-digit township division code
    name: str
    kind: str
    county_code: str
    county_name: str
    city_code: str
    city_name: str
    location: dict[str, Any]  # GeoJSON Point, WGS-84 [lon, lat]
    precision: str  # exact | approx
    jurisdiction: dict[str, Any] | None = None  # GeoJSON Polygon or MultiPolygon
    capabilities: list[str] = dataclasses.field(default_factory=list)
    capacity: int | None = None  # open cases it can hold; None: no limit
    open_cases: int = 0
    opening_hours: Any = None  # text, or {"mon": "08:30-17:30", ...}
    contact_phone: str | None = None
    active: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def lon(self) -> float:
        return float(self.location["coordinates"][0])

    @property
    def lat(self) -> float:
        return float(self.location["coordinates"][1])


@dataclasses.dataclass(frozen=True, slots=True)
class IndexedStation:
    """What routing needs to know about one active station."""

    id: str
    code: str
    name: str
    county_code: str
    county_name: str
    lon: float
    lat: float
    capabilities: frozenset[str]
    capacity: int | None = None
    open_cases: int = 0
    jurisdiction: dict[str, Any] | None = None
    precision: str = "exact"  # exact | approx: whether the point tells this station's township apart

    @property
    def at_capacity(self) -> bool:
        return self.capacity is not None and self.open_cases >= self.capacity


@dataclasses.dataclass(frozen=True, slots=True)
class CountyArea:
    """A county-level jurisdiction polygon."""

    code: str
    name: str
    geometry: dict[str, Any]
