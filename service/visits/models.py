"""The registered older person (探访关爱对象), shared by the elders service and its repository."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

FLAGS = ("alone", "empty_nest", "left_behind", "very_old", "disabled", "dementia", "extreme_poverty")
FLAG_NAMES = {
    "alone": "独居 lives alone",
    "empty_nest": "空巢 empty nest",
    "left_behind": "留守 left behind",
    "very_old": "高龄 80 or older",
    "disabled": "失能 unable to care for oneself",
    "dementia": "失智 dementia",
    "extreme_poverty": "特困 extreme poverty",
}
END_REASONS = ("moved", "deceased", "in_care", "other")
CONSENT_METHODS = ("written", "verbal")
VERY_OLD_AGE = 80


@dataclasses.dataclass(frozen=True, slots=True)
class Elder:
    """One older person in special difficulty on a station's visit register."""

    id: str
    name: str
    id_card_masked: str
    id_card_hash: str
    birth_date: str  # YYYY-MM-DD
    gender: str  # male | female, from the ID number
    township: str  # 9-digit division code of the responsible station
    station_id: str
    county_code: str
    city_code: str
    flags: list[str]
    suggested_tier: str
    tier: str
    phone: str | None = None
    address: str | None = None
    location: dict[str, Any] | None = None  # GeoJSON Point, WGS-84
    visitor_id: str | None = None
    emergency_contacts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    consent: dict[str, Any] | None = None
    tier_pinned: bool = False  # set by staff: the tier rules leave it alone
    previous_tier: str | None = None  # the tier that still applies before ``tier_from``
    tier_from: datetime | None = None
    active: bool = True
    ended: dict[str, Any] | None = None  # {reason, note, at, by}
    last_visited_at: datetime | None = None
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None
    age: int | None = None  # filled in when read

    def tier_at(self, at: datetime) -> str:
        """The tier in force at ``at``: a change takes effect from the next ISO week."""
        if self.tier_from is not None and self.previous_tier and at < self.tier_from:
            return self.previous_tier
        return self.tier


@dataclasses.dataclass(frozen=True, slots=True)
class Referral:
    """A need or danger a visit found, and the case opened for it (None until it is open)."""

    kind: str  # need | danger
    service_code: str
    source_key: str  # "<visit id>:need:<n>" or "<visit id>:danger": the case's unique source.visit_id
    plan: dict[str, Any]  # the case's service, answers and note, as planned when the visit was recorded
    case_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Visit:
    """A visit record (探访记录): append-only; a correction is a new record naming the one it corrects."""

    id: str
    elder_id: str
    station_id: str
    township: str
    method: str  # phone | video | home | ai_call
    visitor: str
    visited_at: datetime
    reached: bool
    recorded_by: dict[str, Any]  # {subject, role, station_id, division_prefix}: who recorded it, to act again as them
    created_at: datetime
    findings: dict[str, Any] = dataclasses.field(default_factory=dict)
    needs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    danger: dict[str, Any] = dataclasses.field(default_factory=lambda: {"found": False})
    summary: str | None = None
    flags: list[str] = dataclasses.field(default_factory=list)
    corrects: str | None = None
    referrals: tuple[Referral, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class RegisterScope:
    """The part of the visit register a reader may see: all of it (neither set), the people of the
    townships under a division prefix, or the people of one station."""

    township_prefix: str | None = None
    station_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ElderFilter:
    """Which people on the register a list holds: those in ``scope``, narrowed by the filters given."""

    scope: RegisterScope
    station_id: str | None = None
    tier: str | None = None
    flag: str | None = None
    active: bool | None = True


@dataclasses.dataclass(frozen=True, slots=True)
class DueWindow:
    """Which due visits a due list holds: those of periods in progress at ``at``, or (``at`` None)
    those whose due date, the end of their own period, falls in ``(after, until]``."""

    at: datetime | None = None
    after: datetime | None = None
    until: datetime | None = None

    @classmethod
    def in_progress(cls, at: datetime) -> DueWindow:
        """Due visits of the periods in progress at ``at``."""
        return cls(at=at)

    @classmethod
    def due_within(cls, after: datetime, until: datetime) -> DueWindow:
        """Due visits whose due date falls in ``(after, until]``."""
        return cls(after=after, until=until)


@dataclasses.dataclass(frozen=True, slots=True)
class DueVisit:
    """One person's unvisited due visit of one period, as the due list shows it."""

    id: str
    elder_id: str
    station_id: str
    township: str
    tier: str
    period: str
    period_start: datetime
    period_end: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class RateScope:
    """The due visits a visit rate counts: one station's, those of townships under a prefix, both, or all."""

    station_id: str | None = None
    township_prefix: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class TierWindow:
    """The due visits of one tier a report counts: its period ``period`` (one in progress), or (``period``
    None) those of its ``kind`` whose period ends in ``(ends_after, ends_by]``."""

    tier: str
    kind: str
    period: str | None = None
    ends_after: datetime | None = None
    ends_by: datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class MachineCalls:
    """Where an answered machine call counts as a visit: in every county but ``exceptions``
    (``by_default`` True), or only in ``exceptions`` (``by_default`` False)."""

    by_default: bool
    exceptions: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class RateQuery:
    """What the visit rate reads: the scope, one window per tier, the grouping field (``station_id``,
    ``county_code`` or ``city_code``), the tier whose visits are counted by method (a counted machine
    call under ``machine_method``), and at most ``max_misses`` unvisited due visits."""

    scope: RateScope
    windows: tuple[TierWindow, ...]
    group_field: str
    method_tier: str
    machine_method: str
    machine_calls: MachineCalls
    max_misses: int


@dataclasses.dataclass(frozen=True, slots=True)
class WeeklyQuery:
    """The due visits of one tier and kind whose period ends in ``(ends_after, ends_by]``, per period."""

    scope: RateScope
    tier: str
    kind: str
    ends_after: datetime
    ends_by: datetime
    machine_calls: MachineCalls


@dataclasses.dataclass(frozen=True, slots=True)
class TierCount:
    """Due visits and how many were visited: as each county counts machine calls (``visited``), never
    counting them (``visited_human``) and always counting them (``visited_with_machine``)."""

    due: int = 0
    visited: int = 0
    visited_human: int = 0
    visited_with_machine: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class MissedVisit:
    """A due visit not (yet) counted as visited."""

    elder_id: str
    station_id: str
    tier: str
    period: str
    period_end: datetime
    name_masked: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RateFigures:
    """The counts behind a visit rate: per tier, visits of the method tier per method, per group key and
    tier (keys in ascending order), and the first misses by due date."""

    by_tier: dict[str, TierCount]
    by_method: dict[str, int]
    groups: dict[str, dict[str, TierCount]]
    misses: tuple[MissedVisit, ...]
