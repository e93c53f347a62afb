"""What callers give the stations service: a new station and a change to one.

The API's schemas build these (``@post_load``); each names the fields given in ``fields_set``
(leaving one out differs from clearing it; see ``service.common.inputs``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class StationRegistration:
    """A station to add: its township code, name and location, and what defaults otherwise.

    ``location`` a GeoJSON point; ``jurisdiction`` a GeoJSON (Multi)Polygon; ``opening_hours`` text
    or a week's hours.
    """

    code: str
    name: str
    location: Mapping[str, Any]
    kind: str | None = None
    county_code: str | None = None
    county_name: str | None = None
    city_code: str | None = None
    city_name: str | None = None
    precision: str | None = None
    jurisdiction: Mapping[str, Any] | None = None
    capabilities: tuple[str, ...] = ()
    capacity: int | None = None
    opening_hours: Any = None
    contact_phone: str | None = None
    active: bool | None = None
    fields_set: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True, slots=True)
class StationChanges:
    """A change to a station (PATCH): only the fields in ``fields_set`` change."""

    code: str | None = None
    name: str | None = None
    location: Mapping[str, Any] | None = None
    kind: str | None = None
    county_code: str | None = None
    county_name: str | None = None
    city_code: str | None = None
    city_name: str | None = None
    precision: str | None = None
    jurisdiction: Mapping[str, Any] | None = None
    capabilities: tuple[str, ...] | None = None
    capacity: int | None = None
    opening_hours: Any = None
    contact_phone: str | None = None
    active: bool | None = None
    fields_set: frozenset[str] = frozenset()
