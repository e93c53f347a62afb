"""What callers give the visits service: a person to register, a change to their record, a visit.

The API's schemas build these (``@post_load``). A registration or a change names the fields given
in ``fields_set`` (leaving one out differs from clearing it; see ``service.common.inputs``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class ElderRegistration:
    """A person as staff register them; ``fields_set`` names the fields given (see ``service.common.inputs``).

    ``location`` {lon, lat, coord_system}; ``emergency_contacts`` [{name, relation, phone}];
    ``consent`` {given, method, ...}.
    """

    name: str
    id_card: str
    township: str
    phone: str | None = None
    address: str | None = None
    location: Mapping[str, Any] | None = None
    flags: tuple[str, ...] = ()
    tier: str | None = None
    visitor_id: str | None = None
    emergency_contacts: tuple[Mapping[str, Any], ...] = ()
    consent: Mapping[str, Any] | None = None
    birth_date: date | None = None
    fields_set: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True, slots=True)
class ElderChanges:
    """A change to a person's record (PATCH): only the fields named in ``fields_set`` change; a field
    given as None clears it. ``tier_pinned`` False lets the tier rules set the tier again."""

    name: str | None = None
    phone: str | None = None
    address: str | None = None
    location: Mapping[str, Any] | None = None
    township: str | None = None
    flags: tuple[str, ...] | None = None
    tier: str | None = None
    visitor_id: str | None = None
    emergency_contacts: tuple[Mapping[str, Any], ...] | None = None
    consent: Mapping[str, Any] | None = None
    tier_pinned: bool | None = None
    fields_set: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True, slots=True)
class VisitInput:
    """A visit as a visitor (or a calling platform, ``method`` ai_call) records it.

    ``findings`` (area -> level and note), ``needs`` (service code, note, answers, preferred window)
    and ``danger`` (found, kind, note) are a visitor's; ``summary`` and ``flags`` a machine call's.
    """

    elder_id: str
    method: str
    visited_at: datetime
    reached: bool
    visitor: str | None = None
    findings: Mapping[str, Any] | None = None
    needs: tuple[Mapping[str, Any], ...] = ()
    danger: Mapping[str, Any] | None = None
    corrects: str | None = None
    summary: str | None = None
    flags: tuple[str, ...] = ()
