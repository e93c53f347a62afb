"""Typed records of the volunteer service; the repository returns these, never raw documents."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Literal

SignupStatus = Literal["pending", "confirmed", "waitlisted", "declined", "cancelled"]
AttendanceStatus = Literal["checked_in", "checked_out", "confirmed"]
RecordRequestStatus = Literal["open", "recorded", "declined"]
RECORD_REQUEST_STATUSES: tuple[str, ...] = ("open", "recorded", "declined")
RecordKind = Literal["training", "award", "evaluation"]
ActivityStatus = Literal["published", "cancelled"]

SIGNUP_STATUSES: tuple[str, ...] = ("pending", "confirmed", "waitlisted", "declined", "cancelled")
RECORD_KINDS: tuple[str, ...] = ("training", "award", "evaluation")
SKILLS: tuple[str, ...] = (
    "companionship",  # 陪伴关怀
    "errands",  # 代办跑腿
    "medical",  # 医疗护理
    "counselling",  # 心理疏导
    "legal",  # 法律咨询
    "teaching",  # 教育辅导
    "repair",  # 家电维修
    "cleaning",  # 保洁
    "cooking",  # 助餐
    "driving",  # 驾驶
    "photography",  # 摄影
    "other",  # 其他
)


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who did something: subject id and role (staff ids stay inside the service)."""

    subject: str
    role: str


@dataclasses.dataclass(frozen=True, slots=True)
class RecordEntry:
    """A training, award or evaluation entered on a volunteer's record by a station."""

    kind: str
    text: str
    on: str  # ISO date
    station_id: str
    by: Actor
    at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Volunteer:
    id: str
    name: str
    id_card_masked: str
    phone: str
    skills: tuple[str, ...]
    availability: str | None
    township: str
    station_id: str | None
    resident_id: str | None
    registered_by: Actor
    records: tuple[RecordEntry, ...]
    created_at: datetime
    updated_at: datetime

    @property
    def name_masked(self) -> str:
        value = self.name.strip()
        return value[:1] + "*" * (len(value) - 1) if len(value) > 1 else "*"


@dataclasses.dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str
    station_id: str
    organiser_ids: tuple[str, ...]  # volunteer ids
    description: str | None
    created_by: Actor
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Activity:
    id: str
    title: str
    scenario: str
    content: str
    station_id: str
    station_name: str
    township: str
    team_id: str | None
    location: str
    start_at: datetime
    end_at: datetime
    slots: int
    skills_wanted: tuple[str, ...]
    status: str
    confirmed_count: int
    case_id: str | None
    organiser: Actor
    created_at: datetime
    updated_at: datetime
    cancel_reason: str | None = None

    @property
    def length_hours(self) -> float:
        return (self.end_at - self.start_at).total_seconds() / 3600


@dataclasses.dataclass(frozen=True, slots=True)
class Signup:
    id: str
    activity_id: str
    volunteer_id: str
    status: str
    note: str | None
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One append-only entry of an attendance record's history: who changed what, when and why."""

    at: datetime
    by: Actor
    action: str  # check_in, check_out, recorded, confirmed, corrected, correction_requested
    changes: dict[str, dict[str, Any]]  # field -> {"old": ..., "new": ...}
    reason: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Attendance:
    id: str
    activity_id: str
    volunteer_id: str
    station_id: str
    check_in_at: datetime | None
    check_out_at: datetime | None
    method: str  # code or organiser
    hours: float | None
    status: str
    evaluation: str | None
    history: tuple[HistoryEntry, ...]
    version: int
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class RecordRequest:
    """A volunteer's request that the organiser record service that has no attendance record (补录申请).

    ``status``: open, recorded (the organiser recorded the attendance) or declined (with a reason).
    """

    id: str
    activity_id: str
    volunteer_id: str
    station_id: str
    township: str
    reason: str
    proposed_check_in_at: datetime | None
    proposed_check_out_at: datetime | None
    proposed_hours: float | None
    status: str
    attendance_id: str | None
    decline_reason: str | None
    history: tuple[HistoryEntry, ...]
    version: int
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceLine:
    """One confirmed service as a certificate lists it."""

    activity_id: str
    title: str
    content: str
    place: str
    start_at: datetime
    end_at: datetime
    hours: float


@dataclasses.dataclass(frozen=True, slots=True)
class Certificate:
    id: str
    number: str
    verification_code: str
    volunteer_id: str
    volunteer_name: str
    id_card_masked: str
    station_id: str
    organisation: str
    period_from: str  # ISO dates, inclusive
    period_to: str
    total_hours: float
    services: tuple[ServiceLine, ...]
    records: tuple[RecordEntry, ...]
    issued_by: Actor
    issued_at: datetime
    status: str  # valid or revoked
    revoked_at: datetime | None = None
    revoked_reason: str | None = None

    @property
    def name_masked(self) -> str:
        value = self.volunteer_name.strip()
        return value[:1] + "*" * (len(value) - 1) if len(value) > 1 else "*"


@dataclasses.dataclass(frozen=True, slots=True)
class CheckinCode:
    """What a verified check-in code says: which activity, check in or out, its nonce and expiry."""

    activity_id: str
    purpose: str  # in or out
    nonce: str
    expires_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class IssuedCode:
    code: str
    purpose: str
    expires_at: datetime
    activity_id: str
    short_code: str = ""  # the 6 characters volunteers can type instead of scanning


@dataclasses.dataclass(frozen=True, slots=True)
class Kpis:
    scope: str
    registered_volunteers: int
    active_volunteers: int
    hours: float
    activities_held: int
    activities_published: int
    certificates_issued: int
    by_station: list[dict[str, Any]]


@dataclasses.dataclass(frozen=True, slots=True)
class VolunteerScope:
    """Which records (volunteers, activities, attendance, certificates: each carries ``station_id`` and
    ``township``) a list or a count reads: those of one station, of one township or of the townships
    under a prefix (``township`` wins), any of these together, or all (none set)."""

    station_id: str | None = None
    township_prefix: str | None = None
    township: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class TimeWindow:
    """``[start, end)``; an end left None is open."""

    start: datetime | None = None
    end: datetime | None = None
