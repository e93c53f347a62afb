"""What callers give the volunteers service: a registration, a team, an activity or a task from a case,
attendance, a correction of it and a request to record missing service.

The API's schemas build these (``@post_load``).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime


@dataclasses.dataclass(frozen=True, slots=True)
class VolunteerRegistration:
    """A resident registering as a volunteer under their real name (实名)."""

    name: str
    id_card: str
    phone: str
    township: str
    skills: tuple[str, ...] = ()
    availability: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class TeamInput:
    """A volunteer team attached to a station (default: the caller's)."""

    name: str
    station_id: str | None = None
    organiser_ids: tuple[str, ...] = ()
    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ActivityInput:
    """An activity (项目) to publish; ``location`` defaults to the station, ``station_id`` (admins) to the team's."""

    title: str
    scenario: str
    content: str
    start_at: datetime
    end_at: datetime
    slots: int
    skills_wanted: tuple[str, ...] = ()
    location: str | None = None
    team_id: str | None = None
    station_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class TaskFromCase:
    """A case turned into a volunteer task: its scenario and station come from the case, the content too
    unless given."""

    case_id: str
    title: str
    start_at: datetime
    end_at: datetime
    slots: int = 1
    skills_wanted: tuple[str, ...] = ()
    content: str | None = None
    location: str | None = None
    team_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class AttendanceInput:
    """A volunteer's attendance as the organiser records it."""

    volunteer_id: str
    check_in_at: datetime
    check_out_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class CorrectionInput:
    """A correction of recorded attendance: new hours, or new times (the hours follow), with a reason."""

    reason: str
    hours: float | None = None
    check_in_at: datetime | None = None
    check_out_at: datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RecordRequestInput:
    """A volunteer's request to record service they were not checked in for (补录申请)."""

    reason: str
    proposed_check_in_at: datetime | None = None
    proposed_check_out_at: datetime | None = None
    proposed_hours: float | None = None
