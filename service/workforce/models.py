"""Typed records of the workforce area."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

OCCUPATIONS = ("social_work", "elderly_care")
OCCUPATION_NAMES = {"social_work": "社会工作者 social worker", "elderly_care": "养老护理员 elderly-care worker"}
# 社会工作者职业水平: 助理社会工作师, 社会工作师, 高级社会工作师; none: no certificate (yet).
QUALIFICATION_LEVELS = ("none", "assistant", "intermediate", "senior")
QUALIFICATION_NAMES = {
    "none": "无证书 no certificate",
    "assistant": "助理社会工作师 assistant social worker",
    "intermediate": "社会工作师 social worker",
    "senior": "高级社会工作师 senior social worker",
}
EMPLOYER_KINDS = ("station", "care_home", "child_welfare", "social_org")
EMPLOYER_NAMES = {
    "station": "乡镇（街道）社工站 township social-work station",
    "care_home": "养老机构 care home",
    "child_welfare": "儿童福利机构 child-welfare institution",
    "social_org": "社会组织 social organisation",
}
ROLES = ("frontline", "manager", "supervisor")
ROLE_NAMES = {"frontline": "一线社工 frontline", "manager": "管理人员 manager", "supervisor": "督导 supervisor"}
STATUSES = ("active", "suspended", "left")
STATUS_NAMES = {"active": "在岗 active", "suspended": "暂停 suspended", "left": "离职 left"}

TRAINING_CATEGORIES = ("certified", "manager", "supervisor", "elderly_care")
CATEGORY_NAMES = {
    "certified": "持证社会工作者 certified social workers",
    "manager": "社会工作管理人才 managers",
    "supervisor": "社会工作督导人才 supervisors",
    "elderly_care": "养老护理员 elderly-care workers",
}
TIERS = ("beginner", "intermediate", "senior")
TIER_NAMES = {"beginner": "初级 beginner", "intermediate": "中级 intermediate", "senior": "高级 senior"}
RECORD_STATUSES = ("enrolled", "attended", "completed", "not_completed")
RECORD_STATUS_NAMES = {
    "enrolled": "已报名 enrolled",
    "attended": "已参训 attended",
    "completed": "已结业 completed",
    "not_completed": "未结业 not completed",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Qualification:
    level: str
    certificate_no: str | None = None
    year: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Employer:
    kind: str
    name: str
    station_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Person:
    """One person on the workforce register; the ID number only ever masked."""

    id: str
    name: str
    id_card_masked: str
    gender: str
    birth_date: str
    phone: str | None
    occupation: str
    qualification: Qualification
    employer: Employer
    division: str  # township (9 digits) or county-level (6 digits) code of the workplace
    county_code: str
    city_code: str
    post: str | None
    role: str
    status: str
    start_date: str
    end_date: str | None
    staff_id: str | None
    version: int
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change of a register entry: who, when, which fields from what to what (personal values masked)."""

    id: str
    person_id: str
    at: datetime
    actor: dict[str, str]
    action: str  # created | updated | imported
    changes: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Programme:
    id: str
    name: str
    category: str
    tier: str
    organiser_division: str
    description: str | None
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    id: str
    programme_id: str
    category: str
    tier: str
    organiser_division: str
    starts_on: str
    ends_on: str
    place: str
    hours: float
    trainer: str
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class TrainingRecord:
    """A person's enrolment in one session: attendance and completion."""

    id: str
    person_id: str
    person_name: str
    session_id: str
    programme_id: str
    programme_name: str
    category: str
    tier: str
    division: str  # the person's workplace when enrolled
    status: str
    attended_hours: float
    completed_on: str | None
    certificate_no: str | None
    version: int
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ReferenceFigure:
    """Figures the indicators need and Huimin does not own (older population, care-home beds)."""

    id: str
    division: str
    year: int
    older_population: int | None
    care_home_beds: int | None
    source: str
    imported_at: datetime
    imported_by: str


@dataclasses.dataclass(frozen=True, slots=True)
class RowProblem:
    row: int
    field: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class ImportReport:
    dry_run: bool
    total: int
    to_create: int
    to_update: int
    written: bool
    encoding: str
    errors: tuple[Any, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Indicator:
    """One plan indicator: target, actual, gap and how it was computed."""

    code: str
    name: str
    name_en: str
    unit: str
    target: float | None
    target_note: str | None
    actual: float | None
    gap: float | None
    progress: float | None
    met: bool | None
    available: bool
    reason: str | None
    computation: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class PlanReport:
    division: str
    division_name: str | None
    level: str
    year: int
    as_of: str
    computed_at: datetime
    plan_period: dict[str, Any]
    indicators: tuple[Indicator, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class DivisionFigure:
    """One indicator for one division under the one asked about: for the map and its legend."""

    division: str
    name: str
    level: str
    target: float | None
    actual: float | None
    progress: float | None
    met: bool | None
    available: bool
    reason: str | None
    records: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class PlanBreakdown:
    """One indicator of the plan for each division directly under a division (cities, counties, townships)."""

    division: str
    division_name: str | None
    level: str
    year: int
    as_of: str
    computed_at: datetime
    indicator: str
    name: str
    name_en: str
    unit: str
    divisions: tuple[DivisionFigure, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class RegisterWindow:
    """What the register's plan figures count, under the division ``prefix``: social workers in post on
    ``as_of`` and on ``before``, people trained from ``year_start`` and elderly-care completions from
    ``period_start``, both up to ``as_of``."""

    prefix: str
    as_of: date
    before: date
    year_start: date
    period_start: date


@dataclasses.dataclass(frozen=True, slots=True)
class RegisterCounts:
    """The register's plan figures of one window: social workers in post by employer kind and in post
    on the day before, distinct people trained per category, elderly-care completions (person-times)."""

    in_post_by_kind: dict[str, int]
    in_post_before: int
    trained_by_category: dict[str, int]
    elderly_care_completions: int


@dataclasses.dataclass(frozen=True, slots=True)
class StoredCounts:
    """Register counts stored with the change counter value and the time they were computed at."""

    counts: RegisterCounts
    version: int | None
    computed_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ReadScope:
    """The part of the register a reader may see: all of it (neither set), everything under a division
    ``prefix``, or the people of one station."""

    prefix: str | None = None
    station_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PeopleFilter:
    """Which register entries a list holds: those in ``scope``, narrowed by the filters given
    (``in_post_on``: started on or before that day and not left by it)."""

    scope: ReadScope = dataclasses.field(default_factory=ReadScope)
    division_prefix: str | None = None
    station_id: str | None = None
    status: str | None = None
    role: str | None = None
    occupation: str | None = None
    employer_kind: str | None = None
    qualification_level: str | None = None
    in_post_on: date | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RecordFilter:
    """Which training records a list holds: those in ``scope`` (by where the person worked when enrolled),
    narrowed by the filters given (``completed_from`` / ``completed_to`` inclusive)."""

    scope: ReadScope = dataclasses.field(default_factory=ReadScope)
    division_prefix: str | None = None
    person_id: str | None = None
    category: str | None = None
    status: str | None = None
    session_id: str | None = None
    completed_from: date | None = None
    completed_to: date | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class FigureFilter:
    """Which reference figures a list holds: those of divisions under ``prefix``, of ``year``."""

    prefix: str | None = None
    year: int | None = None
