"""What callers give the cases service: a submission and an action's fields, typed.

The API's schemas build these (``@post_load``); the areas that open cases themselves (visits,
alerts, Open311) build a ``CaseSubmission`` directly. Sub-objects stay mappings of the shape the
case stores (``TypedDict``), since a case keeps them as given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NotRequired, TypedDict


class LocationInput(TypedDict):
    """A point as given: degrees in ``coord_system`` (wgs84, gcj02 or bd09)."""

    lon: float
    lat: float
    coord_system: NotRequired[str]


class ContactInput(TypedDict):
    """Who the station calls back."""

    name: str
    phone: str | None


class ServedPersonInput(TypedDict, total=False):
    """The person served, if not the applicant (``id_card`` is stored encrypted, never as given)."""

    name: str
    relation: str | None
    phone: str | None
    id_card: str


class TimeWindowInput(TypedDict):
    """A preferred time for a booking."""

    start: datetime
    end: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class CaseSubmission:
    """A case to file: the service, its answers, where, who to call and who is served.

    ``urgent`` and ``source`` are set by the areas that open cases themselves (a visit's finding,
    a device alert, an Open311 request), never by the API's body.
    """

    service_code: str
    answers: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    description: str | None = None
    location: LocationInput | None = None
    division_code: str | None = None
    address: str | None = None
    contact: ContactInput | None = None
    served_person: ServedPersonInput | None = None
    preferred_window: TimeWindowInput | None = None
    anonymous: bool = False
    photos: tuple[str, ...] = ()
    urgent: bool = False
    source: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ActionInput:
    """The fields of a case action; which ones an action needs is ``lifecycle.TRANSITIONS``' ``required``.

    ``expected_version``: refuse the action (409) unless the case is at that version.
    """

    expected_version: int | None = None
    note: str | None = None
    reason: str | None = None
    text: str | None = None
    assignee_id: str | None = None
    scheduled_at: datetime | None = None
    extra_days: int | None = None
    result: str | None = None
    photos: tuple[str, ...] = ()
    rating: int | None = None
    comment: str | None = None
    station_id: str | None = None
