"""The volunteer service's verb-named functions: each checks who may do what, then acts.

Organisers: station staff (worker, station head) of the activity's station, and the
organisers of the activity's team (volunteers themselves). "Whoever organises records,
whoever records certifies" (谁组织谁记录，谁记录谁证明): hours are written only by the
organising side, from attendance, and a certificate is issued only by the station whose
activities recorded the service. Volunteers never write hours; they may ask for a
correction, which goes to the recording organisation.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import io
import logging
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from service.cases import actions as case_actions
from service.cases import queries as case_queries
from service.cases import reads as case_reads
from service.cases.models import CaseEvent
from service.catalog.models import SCENARIO_CODES
from service.common import pii
from service.common.context import Context
from service.common.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from service.common.ids import is_id, new_id
from service.common.models import STATION_STAFF_ROLES, Page, Principal, require_role
from service.common.paging import decode_cursor, encode_cursor, paged
from service.common.timestamps import rfc3339
from service.stations import service as stations
from service.stations.models import Station
from service.volunteers import rules
from service.volunteers.models import (
    RECORD_KINDS,
    SKILLS,
    Activity,
    Actor,
    Attendance,
    Certificate,
    HistoryEntry,
    IssuedCode,
    Kpis,
    RecordEntry,
    ServiceLine,
    Signup,
    Team,
    Volunteer,
)
from service.volunteers.repository import (
    ActivitiesRepository,
    AttendanceRepository,
    CertificatesRepository,
    SignupsRepository,
    TeamsRepository,
    VolunteersRepository,
    actor_doc,
    history_doc,
    line_doc,
    record_doc,
)

log = logging.getLogger("huimin.volunteers")
LOCAL = ZoneInfo("Asia/Shanghai")
CHECKIN_GRACE = timedelta(hours=1)  # check-in opens this long before the start; check-out closes this long after
CANCEL_BEFORE = timedelta(hours=2)  # a confirmed volunteer may withdraw until this long before the start
MAX_ACTIVITY_LENGTH = timedelta(days=7)
_TOWNSHIP = re.compile(r"^[1-9]\d{8}$")

EVENT_REGISTERED = "volunteer.registered"
EVENT_PUBLISHED = "activity.published"
EVENT_CANCELLED = "activity.cancelled"
EVENT_HOURS_CONFIRMED = "volunteer.hours_confirmed"
EVENT_CORRECTED = "volunteer.hours_corrected"
EVENT_CORRECTION_REQUESTED = "volunteer.correction_requested"
EVENT_CERT_ISSUED = "certificate.issued"
EVENT_CERT_REVOKED = "certificate.revoked"
EVENT_TYPES = (
    EVENT_REGISTERED,
    EVENT_PUBLISHED,
    EVENT_CANCELLED,
    EVENT_HOURS_CONFIRMED,
    EVENT_CORRECTED,
    EVENT_CORRECTION_REQUESTED,
    EVENT_CERT_ISSUED,
    EVENT_CERT_REVOKED,
)

# Columns of the CSV export for the national volunteer information system (docs/volunteers.md).
EXPORT_COLUMNS = (
    "record_id",
    "volunteer_id",
    "volunteer_name",
    "id_card_masked",
    "activity_id",
    "activity_title",
    "scenario",
    "organisation",
    "station_code",
    "place",
    "activity_start",
    "activity_end",
    "check_in_at",
    "check_out_at",
    "hours",
    "confirmed_at",
    "case_id",
)


# ---------------------------------------------------------------- helpers


def actor_of(principal: Principal) -> Actor:
    return Actor(subject=principal.subject, role=principal.role)


def _after(cursor: str | None) -> str | None:
    """The id a page continues after (400 ``invalid_cursor`` for a cursor this server did not write)."""
    return decode_cursor(cursor, str, check=lambda v: is_id(v[0]))[0] if cursor else None


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def _station_of_township(ctx: Context, township: str) -> Station | None:
    """The station holding a township code (read through the stations area)."""
    cursor: str | None = None
    for _ in range(10):
        page = await stations.list_stations(ctx=ctx, county_code=township[:6], limit=100, cursor=cursor)
        for station in page.items:
            if station.code == township:
                return station
        if not page.next_cursor:
            return None
        cursor = page.next_cursor
    return None


async def _station(ctx: Context, station_id: str, *, field: str = "station_id") -> Station:
    try:
        return await stations.get_station(ctx=ctx, station_id=station_id)
    except NotFoundError:
        raise ValidationFailedError(
            "unknown_station", f"There is no station {station_id!r}.", errors={field: ["No such station."]}
        ) from None


async def _append_event(
    ctx: Context,
    *,
    type: str,
    key: str,
    seq: int,
    principal: Principal | None,
    station: str | None,
    division: str | None,
    data: dict[str, Any],
) -> None:
    """Write one event to the outbox (webhooks, notifications and the live feed read it from there)."""
    event = CaseEvent(
        type=type,
        case_id=key,
        seq=seq,
        actor_subject=principal.subject if principal else "system",
        actor_role=principal.role if principal else "system",
        time=ctx.now(),
        station_id=station,
        division=division,
        data=data,
    )
    with contextlib.suppress(ConflictError):  # the same change was already recorded
        await case_reads.append_event(ctx=ctx, event=event)


async def _my_volunteer(ctx: Context, principal: Principal) -> Volunteer:
    require_role(
        principal, ("resident",), code="residents_only", detail="Only a resident signed in as a volunteer can do this."
    )
    found = await VolunteersRepository(ctx.db).by_resident(principal.subject)
    if found is None:
        raise PermissionDeniedError("not_a_volunteer", "Register as a volunteer first (POST /api/v1/volunteers).")
    return found


def _can_see_station(principal: Principal, station_id: str | None, township: str | None) -> bool:
    if principal.role == "admin":
        return True
    if principal.role == "supervisor":
        return bool(principal.division_prefix) and (township or "").startswith(principal.division_prefix or "")
    if principal.role in STATION_STAFF_ROLES:
        return principal.station_id is not None and principal.station_id == station_id
    return False


async def _is_team_organiser(ctx: Context, principal: Principal, team_id: str | None) -> bool:
    if principal.role != "resident" or not team_id:
        return False
    me = await VolunteersRepository(ctx.db).by_resident(principal.subject)
    team = await TeamsRepository(ctx.db).find(team_id)
    return me is not None and team is not None and me.id in team.organiser_ids


async def _require_organiser(ctx: Context, principal: Principal, activity: Activity) -> None:
    """The caller organises this activity (its station's staff, its team's organisers, or an admin)."""
    if principal.role == "admin":
        return
    if principal.role in STATION_STAFF_ROLES and principal.station_id == activity.station_id:
        return
    if await _is_team_organiser(ctx, principal, activity.team_id):
        return
    raise PermissionDeniedError(
        "not_organiser",
        "Only the organising station's staff or the team's organisers may do this; "
        "volunteers cannot record or change hours.",
    )


# ---------------------------------------------------------------- volunteers


async def register_volunteer(*, ctx: Context, principal: Principal, data: dict[str, Any]) -> Volunteer:
    """A resident registers themself, or station staff register a person on their behalf."""
    require_role(
        principal,
        ("resident", *STATION_STAFF_ROLES, "admin"),
        code="not_allowed",
        detail="Residents and station staff register volunteers.",
    )
    township = data["township"]
    if not _TOWNSHIP.match(township):
        raise ValidationFailedError(
            "invalid_volunteer",
            "Must be a 9-digit township code.",
            errors={"township": ["Must be a 9-digit township code."]},
        )
    id_card = pii.validate_id_card(data["id_card"])
    phone = pii.normalize_phone(data["phone"])
    skills = list(dict.fromkeys(data.get("skills") or []))
    bad = [s for s in skills if s not in SKILLS]
    if bad:
        raise ValidationFailedError(
            "invalid_volunteer",
            f"Unknown skill {bad[0]!r}; use {', '.join(SKILLS)}.",
            errors={"skills": [f"Unknown skill {bad[0]!r}; use {', '.join(SKILLS)}."]},
        )
    station = await _station_of_township(ctx, township)
    if principal.role in STATION_STAFF_ROLES and (station is None or station.id != principal.station_id):
        raise PermissionDeniedError(
            "other_station", "Station staff register volunteers who live in their own station's township."
        )
    key = ctx.settings.data_key_bytes
    now = ctx.now()
    doc = {
        "_id": new_id(),
        "name": data["name"].strip(),
        "id_card_enc": pii.encrypt(key, id_card, aad="volunteers.id_card"),
        "id_card_hash": pii.lookup_hash(key, id_card),
        "id_card_masked": pii.mask_id_card(id_card),
        "phone": phone,
        "skills": skills,
        "availability": data.get("availability"),
        "township": township,
        "station_id": station.id if station else None,
        "resident_id": principal.subject if principal.role == "resident" else None,
        "registered_by": actor_doc(actor_of(principal)),
        "records": [],
        "created_at": now,
        "updated_at": now,
    }
    volunteer = await VolunteersRepository(ctx.db).insert(doc)
    await _append_event(
        ctx,
        type=EVENT_REGISTERED,
        key=f"volunteer:{volunteer.id}",
        seq=1,
        principal=principal,
        station=volunteer.station_id,
        division=township,
        data={"volunteer_id": volunteer.id, "name_masked": volunteer.name_masked, "township": township},
    )
    return volunteer


async def get_my_volunteer(*, ctx: Context, principal: Principal) -> Volunteer:
    """The caller's own volunteer registration."""
    return await _my_volunteer(ctx, principal)


async def _visible_volunteer(ctx: Context, principal: Principal, volunteer_id: str) -> Volunteer:
    volunteer = await VolunteersRepository(ctx.db).get(volunteer_id)
    if principal.role == "resident":
        if volunteer.resident_id != principal.subject:
            raise NotFoundError("volunteer_not_found", f"There is no volunteer {volunteer_id!r}.")
        return volunteer
    if principal.role in STATION_STAFF_ROLES:
        # A station sees its residents and everyone who served at its activities.
        if volunteer.station_id == principal.station_id:
            return volunteer
        served = await AttendanceRepository(ctx.db).for_volunteer(volunteer_id, station_id=principal.station_id)
        signed = [
            s
            for s in await SignupsRepository(ctx.db).for_volunteer(volunteer_id)
            if (await ActivitiesRepository(ctx.db).get(s.activity_id)).station_id == principal.station_id
        ]
        if served or signed:
            return volunteer
        raise NotFoundError("volunteer_not_found", f"There is no volunteer {volunteer_id!r}.")
    if _can_see_station(principal, volunteer.station_id, volunteer.township):
        return volunteer
    raise NotFoundError("volunteer_not_found", f"There is no volunteer {volunteer_id!r}.")


def shown_to(principal: Principal, volunteer: Volunteer) -> Volunteer:
    """The volunteer as this caller sees them: the phone in full only to the volunteer and station staff."""
    if principal.role in ("resident", *STATION_STAFF_ROLES):
        return volunteer
    return dataclasses.replace(volunteer, phone=pii.mask_phone(volunteer.phone))


async def get_volunteer(*, ctx: Context, principal: Principal, volunteer_id: str) -> Volunteer:
    """One volunteer, if the caller may see them."""
    return shown_to(principal, await _visible_volunteer(ctx, principal, volunteer_id))


async def list_volunteers(
    *, ctx: Context, principal: Principal, limit: int = 20, cursor: str | None = None, skill: str | None = None
) -> Page[Volunteer]:
    """Volunteers of the caller's station (staff), division (supervisor) or all (admin)."""
    query: dict[str, Any] = {}
    if principal.role in STATION_STAFF_ROLES:
        query["station_id"] = principal.station_id
    elif principal.role == "supervisor":
        query["township"] = {"$regex": f"^{re.escape(principal.division_prefix or '-')}"}
    elif principal.role != "admin":
        raise PermissionDeniedError("staff_only", "Only staff list volunteers.")
    if skill:
        query["skills"] = skill
    items, next_cursor = paged(
        await VolunteersRepository(ctx.db).find_page(query, after=_after(cursor), limit=limit + 1),
        limit,
        lambda v: encode_cursor(v.id),
    )
    return Page(items=[shown_to(principal, v) for v in items], next_cursor=next_cursor)


async def add_record_entry(
    *, ctx: Context, principal: Principal, volunteer_id: str, kind: str, text: str, on: date
) -> Volunteer:
    """Station staff enter a training, award or evaluation on a volunteer's record."""
    require_role(
        principal,
        (*STATION_STAFF_ROLES, "admin"),
        code="not_recording_organisation",
        detail="Only station staff write volunteers' records.",
    )
    if kind not in RECORD_KINDS:
        raise ValidationFailedError(
            "invalid_record",
            f"Must be one of {', '.join(RECORD_KINDS)}.",
            errors={"kind": [f"Must be one of {', '.join(RECORD_KINDS)}."]},
        )
    volunteer = await _visible_volunteer(ctx, principal, volunteer_id)
    if on > ctx.now().astimezone(LOCAL).date():
        raise ValidationFailedError(
            "invalid_record", "Must not be in the future.", errors={"on": ["Must not be in the future."]}
        )
    entry = RecordEntry(
        kind=kind,
        text=text.strip(),
        on=on.isoformat(),
        station_id=principal.station_id or volunteer.station_id or "",
        by=actor_of(principal),
        at=ctx.now(),
    )
    return await VolunteersRepository(ctx.db).add_record(volunteer.id, entry, ctx.now())


# ---------------------------------------------------------------- teams


async def create_team(*, ctx: Context, principal: Principal, data: dict[str, Any]) -> Team:
    """Station staff form a volunteer team (志愿服务队) attached to their station as its service point."""
    require_role(
        principal, (*STATION_STAFF_ROLES, "admin"), code="not_allowed", detail="Station staff form volunteer teams."
    )
    station_id = data.get("station_id") or principal.station_id
    if not station_id:
        raise ValidationFailedError(
            "unknown_station",
            "Name the station the team is attached to.",
            errors={"station_id": ["Name the station the team is attached to."]},
        )
    if principal.role in STATION_STAFF_ROLES and station_id != principal.station_id:
        raise PermissionDeniedError("other_station", "Teams are attached to your own station.")
    await _station(ctx, station_id)
    organisers = list(dict.fromkeys(data.get("organiser_ids") or []))
    found = await VolunteersRepository(ctx.db).many(organisers)
    missing = [o for o in organisers if o not in found]
    if missing:
        raise ValidationFailedError(
            "unknown_volunteer",
            f"No such volunteer: {missing[0]!r}.",
            errors={"organiser_ids": [f"No such volunteer: {missing[0]!r}."]},
        )
    now = ctx.now()
    return await TeamsRepository(ctx.db).insert(
        {
            "_id": new_id(),
            "name": data["name"].strip(),
            "station_id": station_id,
            "organiser_ids": organisers,
            "description": data.get("description"),
            "created_by": actor_doc(actor_of(principal)),
            "created_at": now,
        }
    )


async def list_teams(*, ctx: Context, principal: Principal, station_id: str | None = None) -> list[Team]:
    """Teams of one station (any signed-in caller may browse teams)."""
    query: dict[str, Any] = {}
    if station_id:
        query["station_id"] = station_id
    elif principal.role in STATION_STAFF_ROLES:
        query["station_id"] = principal.station_id
    return await TeamsRepository(ctx.db).find_page(query)


async def get_team(*, ctx: Context, principal: Principal, team_id: str) -> Team:
    """One team."""
    return await TeamsRepository(ctx.db).get(team_id)


# ---------------------------------------------------------------- activities


def _check_activity_times(start: datetime, end: datetime, now: datetime) -> None:
    errors: dict[str, list[str]] = {}
    if end <= start:
        errors["end_at"] = ["Must be after start_at."]
    elif end - start > MAX_ACTIVITY_LENGTH:
        errors["end_at"] = ["An activity lasts at most 7 days; publish longer projects as several activities."]
    if start < now - timedelta(days=30):
        errors["start_at"] = ["Must not be more than 30 days in the past."]
    if start > now + timedelta(days=366):
        errors["start_at"] = ["Must be within a year from now."]
    if errors:
        raise ValidationFailedError("invalid_activity", "The activity's times are not possible.", errors=errors)


async def publish_activity(
    *, ctx: Context, principal: Principal, data: dict[str, Any], case_id: str | None = None
) -> Activity:
    """An organiser publishes an activity (项目) at a station; volunteers can then sign up."""
    now = ctx.now()
    start, end = _aware(data["start_at"]), _aware(data["end_at"])
    _check_activity_times(start, end, now)
    if data["scenario"] not in SCENARIO_CODES:
        raise ValidationFailedError(
            "invalid_activity",
            f"Must be one of {', '.join(SCENARIO_CODES)}.",
            errors={"scenario": [f"Must be one of {', '.join(SCENARIO_CODES)}."]},
        )
    bad = [s for s in data.get("skills_wanted") or [] if s not in SKILLS]
    if bad:
        raise ValidationFailedError(
            "invalid_activity", f"Unknown skill {bad[0]!r}.", errors={"skills_wanted": [f"Unknown skill {bad[0]!r}."]}
        )
    team_id = data.get("team_id")
    team: Team | None = None
    if team_id:
        team = await TeamsRepository(ctx.db).find(team_id)
        if team is None:
            raise ValidationFailedError(
                "unknown_team", f"There is no team {team_id!r}.", errors={"team_id": ["No such volunteer team."]}
            )
    if principal.role in STATION_STAFF_ROLES:
        station_id = principal.station_id or ""
        if team and team.station_id != station_id:
            raise PermissionDeniedError("other_station", "This team belongs to another station.")
    elif principal.role == "admin":
        station_id = data.get("station_id") or (team.station_id if team else "")
        if not station_id:
            raise ValidationFailedError(
                "unknown_station",
                "Name the station (or a team) the activity belongs to.",
                errors={"station_id": ["Name the station (or a team) the activity belongs to."]},
            )
    elif principal.role == "resident" and team is not None and await _is_team_organiser(ctx, principal, team.id):
        station_id = team.station_id
    else:
        raise PermissionDeniedError(
            "not_organiser", "Station staff and the organisers of a volunteer team publish activities."
        )
    station = await _station(ctx, station_id)
    doc = {
        "_id": new_id(),
        "title": data["title"].strip(),
        "scenario": data["scenario"],
        "content": data["content"].strip(),
        "station_id": station.id,
        "station_name": station.name,
        "township": station.code,
        "team_id": team.id if team else None,
        "location": (data.get("location") or station.name).strip(),
        "start_at": start,
        "end_at": end,
        "slots": int(data["slots"]),
        "skills_wanted": list(dict.fromkeys(data.get("skills_wanted") or [])),
        "status": "published",
        "confirmed_count": 0,
        "case_id": case_id,
        "organiser": actor_doc(actor_of(principal)),
        "created_at": now,
        "updated_at": now,
    }
    activity = await ActivitiesRepository(ctx.db).insert(doc)
    await _append_event(
        ctx,
        type=EVENT_PUBLISHED,
        key=f"activity:{activity.id}",
        seq=1,
        principal=principal,
        station=activity.station_id,
        division=activity.township,
        data={"activity_id": activity.id, "title": activity.title, "start_at": rfc3339(start), "case_id": case_id},
    )
    return activity


async def task_from_case(*, ctx: Context, principal: Principal, case_id: str, data: dict[str, Any]) -> Activity:
    """Turn a case (a home visit, an errand) into a volunteer task; the case's history notes it."""
    require_role(
        principal,
        (*STATION_STAFF_ROLES, "admin"),
        code="not_allowed",
        detail="Station staff turn cases into volunteer tasks.",
    )
    case = await case_queries.get_case(ctx=ctx, principal=principal, case_id=case_id)
    if "note" not in case.get("allowed_actions", []):
        raise InvalidStateError("case_not_open", "Only an open case of your station can become a volunteer task.")
    if principal.role in STATION_STAFF_ROLES and case.get("station_id") != principal.station_id:
        raise PermissionDeniedError("other_station", "The case is not your station's.")
    service = case.get("service") or {}
    body = {
        "scenario": service.get("scenario") or "community",
        "content": data.get("content") or case.get("description") or service.get("name_zh") or "",
        "station_id": case.get("station_id"),
        **{k: v for k, v in data.items() if v is not None},
    }
    if not str(body["content"]).strip():
        body["content"] = body["title"]
    activity = await publish_activity(ctx=ctx, principal=principal, data=body, case_id=case_id)
    try:
        await case_actions.act(
            ctx=ctx,
            principal=principal,
            case_id=case_id,
            action="note",
            data={"text": f"已转为志愿服务任务 (volunteer task): {activity.title} [{activity.id}]"},
        )
    except Exception:
        await ActivitiesRepository(ctx.db).delete(activity.id)  # nothing half-written
        raise
    return activity


async def get_activity(*, ctx: Context, principal: Principal, activity_id: str) -> Activity:
    """One activity (volunteers browse them; staff see their own stations')."""
    return await ActivitiesRepository(ctx.db).get(activity_id)


async def list_activities(
    *,
    ctx: Context,
    principal: Principal,
    station_id: str | None = None,
    township: str | None = None,
    status: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> Page[Activity]:
    """Activities, newest first: staff see their station's by default; anyone may filter by station or township."""
    query: dict[str, Any] = {}
    if station_id:
        query["station_id"] = station_id
    elif principal.role in STATION_STAFF_ROLES:
        query["station_id"] = principal.station_id
    elif principal.role == "supervisor":
        query["township"] = {"$regex": f"^{re.escape(principal.division_prefix or '-')}"}
    if township:
        query["township"] = township
    if status:
        query["status"] = status
    items, next_cursor = paged(
        await ActivitiesRepository(ctx.db).find_page(query, after=_after(cursor), limit=limit + 1),
        limit,
        lambda a: encode_cursor(a.id),
    )
    return Page(items=items, next_cursor=next_cursor)


async def cancel_activity(*, ctx: Context, principal: Principal, activity_id: str, reason: str) -> Activity:
    """The organiser cancels an activity that has not started; nobody can sign up any more."""
    repo = ActivitiesRepository(ctx.db)
    activity = await repo.get(activity_id)
    await _require_organiser(ctx, principal, activity)
    if activity.start_at <= ctx.now():
        raise InvalidStateError("activity_started", "An activity that has started cannot be cancelled.")
    if not await repo.cancel(activity_id, reason.strip(), ctx.now()):
        raise InvalidStateError("activity_not_open", "The activity is already cancelled.")
    await _append_event(
        ctx,
        type=EVENT_CANCELLED,
        key=f"activity:{activity.id}",
        seq=2,
        principal=principal,
        station=activity.station_id,
        division=activity.township,
        data={"activity_id": activity.id, "reason": reason.strip()},
    )
    return await repo.get(activity_id)


# ---------------------------------------------------------------- sign-up


async def sign_up(*, ctx: Context, principal: Principal, activity_id: str, note: str | None = None) -> Signup:
    """A volunteer signs up: pending the organiser's confirmation, or on the waiting list when full."""
    volunteer = await _my_volunteer(ctx, principal)
    activity = await ActivitiesRepository(ctx.db).get(activity_id)
    now = ctx.now()
    if activity.status != "published" or activity.end_at <= now:
        raise InvalidStateError("activity_not_open", "This activity is not open for sign-up.")
    status = rules.signup_status(confirmed=activity.confirmed_count, slots=activity.slots, auto_confirm=False)
    return await SignupsRepository(ctx.db).insert(
        {
            "_id": new_id(),
            "activity_id": activity.id,
            "volunteer_id": volunteer.id,
            "status": status,
            "note": note,
            "created_at": now,
            "updated_at": now,
        }
    )


async def decide_signup(*, ctx: Context, principal: Principal, signup_id: str, decision: str) -> Signup:
    """The organiser confirms (if a slot is free) or declines a sign-up."""
    signups = SignupsRepository(ctx.db)
    activities = ActivitiesRepository(ctx.db)
    signup = await signups.get(signup_id)
    activity = await activities.get(signup.activity_id)
    await _require_organiser(ctx, principal, activity)
    now = ctx.now()
    if decision == "decline":
        if not await signups.move(signup.id, expected=("pending", "waitlisted"), status="declined", now=now):
            raise InvalidStateError("signup_not_pending", "Only a pending or waiting sign-up can be declined.")
        return await signups.get(signup.id)
    if signup.status not in ("pending", "waitlisted"):
        raise InvalidStateError("signup_not_pending", "Only a pending or waiting sign-up can be confirmed.")
    if not await activities.take_slot(activity.id, slots=activity.slots, now=now):
        raise ConflictError("activity_full", "Every slot is taken; the sign-up stays on the waiting list.")
    if not await signups.move(signup.id, expected=("pending", "waitlisted"), status="confirmed", now=now):
        await activities.free_slot(activity.id, now)
        raise InvalidStateError("signup_not_pending", "The sign-up changed meanwhile; reload it.")
    return await signups.get(signup.id)


async def cancel_signup(*, ctx: Context, principal: Principal, signup_id: str) -> Signup:
    """The volunteer withdraws (a confirmed place only until 2 hours before the start); the first waiting moves up."""
    signups = SignupsRepository(ctx.db)
    signup = await signups.get(signup_id)
    me = await _my_volunteer(ctx, principal)
    if signup.volunteer_id != me.id:
        raise NotFoundError("signup_not_found", f"There is no sign-up {signup_id!r}.")
    activity = await ActivitiesRepository(ctx.db).get(signup.activity_id)
    now = ctx.now()
    if signup.status == "confirmed" and activity.start_at - now < CANCEL_BEFORE:
        raise InvalidStateError(
            "cancellation_too_late",
            "A confirmed place can be given up until 2 hours before the start; call the organiser.",
        )
    if signup.status not in ("pending", "waitlisted", "confirmed") or not await signups.move(
        signup.id, expected=(signup.status,), status="cancelled", now=now
    ):
        raise InvalidStateError("signup_not_active", "This sign-up is no longer active.")
    if signup.status == "confirmed":
        await ActivitiesRepository(ctx.db).free_slot(activity.id, now)
        waiting = await signups.first_waiting(activity.id)
        if waiting is not None:
            await signups.move(waiting.id, expected=("waitlisted",), status="pending", now=now)
    return await signups.get(signup.id)


async def list_signups(*, ctx: Context, principal: Principal, activity_id: str) -> list[Signup]:
    """Sign-ups of an activity (its organisers), or the caller's own (a volunteer)."""
    activity = await ActivitiesRepository(ctx.db).get(activity_id)
    if principal.role == "resident" and not await _is_team_organiser(ctx, principal, activity.team_id):
        me = await _my_volunteer(ctx, principal)
        return [s for s in await SignupsRepository(ctx.db).for_activity(activity_id) if s.volunteer_id == me.id]
    if principal.role == "supervisor" and _can_see_station(principal, activity.station_id, activity.township):
        return await SignupsRepository(ctx.db).for_activity(activity_id)
    await _require_organiser(ctx, principal, activity)
    return await SignupsRepository(ctx.db).for_activity(activity_id)


# ---------------------------------------------------------------- attendance


async def issue_checkin_code(*, ctx: Context, principal: Principal, activity_id: str, purpose: str) -> IssuedCode:
    """A short-lived signed code for the organiser's screen (the QR code volunteers scan)."""
    activity = await ActivitiesRepository(ctx.db).get(activity_id)
    await _require_organiser(ctx, principal, activity)
    if activity.status != "published":
        raise InvalidStateError("activity_not_open", "The activity is cancelled.")
    code = rules.make_checkin_code(
        activity_id=activity.id, purpose=purpose, now=ctx.now(), ttl_seconds=ctx.settings.volunteer_checkin_code_seconds
    )
    text = rules.sign_checkin_code(rules.code_key(ctx.settings.data_key_bytes), code)
    return IssuedCode(code=text, purpose=purpose, expires_at=code.expires_at, activity_id=activity.id)


async def _check_overlap(
    ctx: Context, volunteer_id: str, start: datetime, end: datetime, *, except_activity: str
) -> None:
    """Refuse attendance that overlaps the volunteer's attendance at another activity."""
    for other in await AttendanceRepository(ctx.db).for_volunteer(volunteer_id):
        if other.activity_id == except_activity or other.check_in_at is None:
            continue
        other_end = other.check_out_at
        if other_end is None:  # still checked in there: it runs until that activity's end
            other_end = (await ActivitiesRepository(ctx.db).get(other.activity_id)).end_at
        if rules.overlaps(start, end, other.check_in_at, other_end):
            raise ConflictError(
                "attendance_overlap",
                "The volunteer was recorded at another activity at the same time.",
                other_activity_id=other.activity_id,
            )


async def check_in_by_code(*, ctx: Context, principal: Principal, code: str) -> Attendance:
    """A volunteer scans the organiser's code to check in or out (each code once per volunteer, while fresh)."""
    volunteer = await _my_volunteer(ctx, principal)
    now = ctx.now()
    try:
        parsed = rules.verify_checkin_code(rules.code_key(ctx.settings.data_key_bytes), code, now=now)
    except rules.CodeProblem as problem:
        if problem.code == "checkin_code_expired":
            raise InvalidStateError("checkin_code_expired", problem.detail) from None
        raise ValidationFailedError("checkin_code_invalid", problem.detail, errors={"code": [problem.detail]}) from None
    activity = await ActivitiesRepository(ctx.db).get(parsed.activity_id)
    signup = await SignupsRepository(ctx.db).find(activity.id, volunteer.id)
    if signup is None or signup.status != "confirmed":
        raise PermissionDeniedError("not_confirmed", "Only volunteers confirmed for this activity can check in.")
    if activity.status != "published":
        raise InvalidStateError("activity_not_open", "The activity is cancelled.")
    ttl = int((parsed.expires_at - now).total_seconds()) + 5
    used_key = ctx.key("volunteer-code", parsed.nonce, volunteer.id)
    if not await ctx.redis.set(used_key, "1", nx=True, ex=max(ttl, 1)):
        raise ConflictError("checkin_code_used", "This code was already used; scan the code on the screen again.")
    attendance_repo = AttendanceRepository(ctx.db)
    if parsed.purpose == "in":
        if now < activity.start_at - CHECKIN_GRACE or now > activity.end_at:
            raise InvalidStateError(
                "outside_activity_time", "Check-in opens 1 hour before the start and closes at the end."
            )
        await _check_overlap(ctx, volunteer.id, now, activity.end_at, except_activity=activity.id)
        entry = HistoryEntry(
            at=now, by=actor_of(principal), action="check_in", changes={"check_in_at": {"old": None, "new": now}}
        )
        return await attendance_repo.insert(
            _attendance_doc(activity, volunteer.id, check_in=now, check_out=None, method="code", entry=entry)
        )
    current = await attendance_repo.find(activity.id, volunteer.id)
    if current is None or current.status != "checked_in" or current.check_in_at is None:
        raise InvalidStateError("not_checked_in", "Check in first; a check-out needs an open check-in.")
    if now > activity.end_at + CHECKIN_GRACE:
        raise InvalidStateError("outside_activity_time", "Check-out closes 1 hour after the end; ask the organiser.")
    hours = rules.attended_hours(current.check_in_at, now, activity.start_at, activity.end_at)
    entry = HistoryEntry(
        at=now,
        by=actor_of(principal),
        action="check_out",
        changes={"check_out_at": {"old": None, "new": now}, "hours": {"old": None, "new": hours}},
    )
    sets = {"check_out_at": now, "hours": hours, "status": "checked_out", "updated_at": now}
    if not await attendance_repo.apply(current.id, version=current.version, sets=sets, entry=entry):
        raise ConflictError("attendance_changed", "The record changed at the same moment; try again.")
    return await attendance_repo.get(current.id)


def _attendance_doc(
    activity: Activity,
    volunteer_id: str,
    *,
    check_in: datetime,
    check_out: datetime | None,
    method: str,
    entry: HistoryEntry,
) -> dict[str, Any]:
    hours = (
        rules.attended_hours(check_in, check_out, activity.start_at, activity.end_at) if check_out is not None else None
    )
    return {
        "_id": new_id(),
        "activity_id": activity.id,
        "volunteer_id": volunteer_id,
        "station_id": activity.station_id,
        "township": activity.township,
        "check_in_at": check_in,
        "check_out_at": check_out,
        "method": method,
        "hours": hours,
        "status": "checked_in" if check_out is None else "checked_out",
        "evaluation": None,
        "history": [history_doc(entry)],
        "version": 1,
        "created_at": entry.at,
        "updated_at": entry.at,
    }


async def record_attendance(
    *, ctx: Context, principal: Principal, activity_id: str, data: dict[str, Any]
) -> Attendance:
    """The organiser records a volunteer's attendance (confirmation by the organiser, for those without a phone)."""
    activity = await ActivitiesRepository(ctx.db).get(activity_id)
    await _require_organiser(ctx, principal, activity)
    volunteer_id = data["volunteer_id"]
    signup = await SignupsRepository(ctx.db).find(activity.id, volunteer_id)
    if signup is None or signup.status != "confirmed":
        raise ValidationFailedError(
            "unknown_volunteer",
            "Not a volunteer confirmed for this activity.",
            errors={"volunteer_id": ["Not a volunteer confirmed for this activity."]},
        )
    check_in, check_out = _aware(data["check_in_at"]), _aware(data["check_out_at"])
    if check_out > ctx.now() + timedelta(minutes=5):
        raise ValidationFailedError(
            "invalid_attendance_time",
            "Must not be in the future.",
            errors={"check_out_at": ["Must not be in the future."]},
        )
    rules.check_attendance_window(
        check_in, check_out, start=activity.start_at, end=activity.end_at, grace=CHECKIN_GRACE
    )
    await _check_overlap(ctx, volunteer_id, check_in, check_out, except_activity=activity.id)
    entry = HistoryEntry(
        at=ctx.now(),
        by=actor_of(principal),
        action="recorded",
        changes={"check_in_at": {"old": None, "new": check_in}, "check_out_at": {"old": None, "new": check_out}},
    )
    return await AttendanceRepository(ctx.db).insert(
        _attendance_doc(activity, volunteer_id, check_in=check_in, check_out=check_out, method="organiser", entry=entry)
    )


async def list_attendance(*, ctx: Context, principal: Principal, activity_id: str) -> list[Attendance]:
    """An activity's attendance (its organisers and supervisors)."""
    activity = await ActivitiesRepository(ctx.db).get(activity_id)
    if not (principal.role == "supervisor" and _can_see_station(principal, activity.station_id, activity.township)):
        await _require_organiser(ctx, principal, activity)
    return await AttendanceRepository(ctx.db).for_activity(activity_id)


async def get_attendance(*, ctx: Context, principal: Principal, attendance_id: str) -> Attendance:
    """One attendance record with its history (the volunteer, the organisers, supervisors)."""
    attendance = await AttendanceRepository(ctx.db).get(attendance_id)
    if principal.role == "resident":
        me = await VolunteersRepository(ctx.db).by_resident(principal.subject)
        if me is not None and me.id == attendance.volunteer_id:
            return attendance
    activity = await ActivitiesRepository(ctx.db).get(attendance.activity_id)
    if principal.role == "supervisor" and _can_see_station(principal, activity.station_id, activity.township):
        return attendance
    try:
        await _require_organiser(ctx, principal, activity)
    except PermissionDeniedError:
        raise NotFoundError("attendance_not_found", f"There is no attendance record {attendance_id!r}.") from None
    return attendance


async def _change_attendance(
    ctx: Context, attendance: Attendance, *, sets: dict[str, Any], entry: HistoryEntry
) -> Attendance:
    repo = AttendanceRepository(ctx.db)
    if not await repo.apply(
        attendance.id, version=attendance.version, sets={**sets, "updated_at": entry.at}, entry=entry
    ):
        raise ConflictError("attendance_changed", "Someone changed this record at the same moment; reload it.")
    return await repo.get(attendance.id)


async def confirm_hours(
    *, ctx: Context, principal: Principal, attendance_id: str, hours: float | None = None, evaluation: str | None = None
) -> Attendance:
    """The organiser confirms the hours computed from attendance (or fewer/more within the activity's length)."""
    attendance = await AttendanceRepository(ctx.db).get(attendance_id)
    activity = await ActivitiesRepository(ctx.db).get(attendance.activity_id)
    await _require_organiser(ctx, principal, activity)
    if attendance.status == "confirmed":
        raise InvalidStateError("hours_already_confirmed", "These hours are confirmed; change them by a correction.")
    if attendance.status != "checked_out" or attendance.hours is None:
        raise InvalidStateError("not_checked_out", "Hours are confirmed after the check-out.")
    final = rules.check_hours(
        attendance.hours if hours is None else hours, start=activity.start_at, end=activity.end_at
    )
    now = ctx.now()
    changes: dict[str, dict[str, Any]] = {"status": {"old": attendance.status, "new": "confirmed"}}
    if final != attendance.hours:
        changes["hours"] = {"old": attendance.hours, "new": final}
    entry = HistoryEntry(at=now, by=actor_of(principal), action="confirmed", changes=changes)
    updated = await _change_attendance(
        ctx,
        attendance,
        sets={
            "hours": final,
            "status": "confirmed",
            "confirmed_at": now,
            "confirmed_by": actor_doc(actor_of(principal)),
            "evaluation": evaluation,
        },
        entry=entry,
    )
    await _append_event(
        ctx,
        type=EVENT_HOURS_CONFIRMED,
        key=f"attendance:{attendance.id}",
        seq=updated.version,
        principal=principal,
        station=activity.station_id,
        division=activity.township,
        data={
            "attendance_id": attendance.id,
            "activity_id": activity.id,
            "volunteer_id": attendance.volunteer_id,
            "hours": final,
        },
    )
    return updated


async def correct_attendance(
    *, ctx: Context, principal: Principal, attendance_id: str, data: dict[str, Any]
) -> Attendance:
    """The recording organisation corrects a record; the old values and the reason stay in its history."""
    attendance = await AttendanceRepository(ctx.db).get(attendance_id)
    activity = await ActivitiesRepository(ctx.db).get(attendance.activity_id)
    await _require_organiser(ctx, principal, activity)
    reason = data["reason"].strip()
    check_in = _aware(data["check_in_at"]) if data.get("check_in_at") else attendance.check_in_at
    check_out = _aware(data["check_out_at"]) if data.get("check_out_at") else attendance.check_out_at
    if check_in is None or check_out is None:
        raise InvalidStateError("not_checked_out", "Correct a record after its check-out.")
    rules.check_attendance_window(
        check_in, check_out, start=activity.start_at, end=activity.end_at, grace=CHECKIN_GRACE
    )
    await _check_overlap(ctx, attendance.volunteer_id, check_in, check_out, except_activity=activity.id)
    if data.get("hours") is not None:
        hours = rules.check_hours(float(data["hours"]), start=activity.start_at, end=activity.end_at)
    elif data.get("check_in_at") or data.get("check_out_at"):
        hours = rules.attended_hours(check_in, check_out, activity.start_at, activity.end_at)
    else:
        hours = attendance.hours or 0.0
    changes: dict[str, dict[str, Any]] = {}
    for name, old, new in (
        ("check_in_at", attendance.check_in_at, check_in),
        ("check_out_at", attendance.check_out_at, check_out),
        ("hours", attendance.hours, hours),
    ):
        if old != new:
            changes[name] = {"old": old, "new": new}
    if not changes:
        raise ValidationFailedError(
            "nothing_to_correct", "The correction changes nothing.", errors={"hours": ["Give a value that differs."]}
        )
    entry = HistoryEntry(at=ctx.now(), by=actor_of(principal), action="corrected", changes=changes, reason=reason)
    updated = await _change_attendance(
        ctx, attendance, sets={"check_in_at": check_in, "check_out_at": check_out, "hours": hours}, entry=entry
    )
    await _append_event(
        ctx,
        type=EVENT_CORRECTED,
        key=f"attendance:{attendance.id}",
        seq=updated.version,
        principal=principal,
        station=activity.station_id,
        division=activity.township,
        data={
            "attendance_id": attendance.id,
            "volunteer_id": attendance.volunteer_id,
            "old_hours": attendance.hours,
            "hours": hours,
            "reason": reason,
        },
    )
    return updated


async def request_correction(
    *, ctx: Context, principal: Principal, attendance_id: str, reason: str, proposed_hours: float | None = None
) -> Attendance:
    """A volunteer asks the recording organisation to correct a wrong or missing record (nothing changes yet)."""
    me = await _my_volunteer(ctx, principal)
    attendance = await AttendanceRepository(ctx.db).get(attendance_id)
    if attendance.volunteer_id != me.id:
        raise NotFoundError("attendance_not_found", f"There is no attendance record {attendance_id!r}.")
    activity = await ActivitiesRepository(ctx.db).get(attendance.activity_id)
    if proposed_hours is not None:
        rules.check_hours(proposed_hours, start=activity.start_at, end=activity.end_at, field="proposed_hours")
    entry = HistoryEntry(
        at=ctx.now(),
        by=actor_of(principal),
        action="correction_requested",
        changes={"hours": {"old": attendance.hours, "new": proposed_hours}} if proposed_hours is not None else {},
        reason=reason.strip(),
    )
    updated = await _change_attendance(ctx, attendance, sets={"correction_requested": True}, entry=entry)
    await _append_event(
        ctx,
        type=EVENT_CORRECTION_REQUESTED,
        key=f"attendance:{attendance.id}",
        seq=updated.version,
        principal=principal,
        station=activity.station_id,
        division=activity.township,
        data={"attendance_id": attendance.id, "activity_id": activity.id, "reason": reason.strip()},
    )
    return updated


# ---------------------------------------------------------------- records


def _local_date(value: datetime) -> date:
    return value.astimezone(LOCAL).date()


async def _service_lines(
    ctx: Context, volunteer_id: str, *, station_id: str | None, start: date | None, end: date | None
) -> list[tuple[Attendance, ServiceLine]]:
    records = await AttendanceRepository(ctx.db).for_volunteer(volunteer_id, status="confirmed", station_id=station_id)
    activities = await ActivitiesRepository(ctx.db).many([r.activity_id for r in records])
    out = []
    for r in records:
        a = activities.get(r.activity_id)
        if a is None or r.check_in_at is None or r.check_out_at is None:
            continue
        day = _local_date(r.check_in_at)
        if (start and day < start) or (end and day > end):
            continue
        line = ServiceLine(
            activity_id=a.id,
            title=a.title,
            content=a.content,
            place=f"{a.station_name} {a.location}".strip() if a.location != a.station_name else a.station_name,
            start_at=r.check_in_at,
            end_at=r.check_out_at,
            hours=float(r.hours or 0),
        )
        out.append((r, line))
    return out


async def volunteer_record(*, ctx: Context, principal: Principal, volunteer_id: str) -> dict[str, Any]:
    """A volunteer's record: every confirmed service with hours, training, awards, evaluations and certificates."""
    volunteer = await _visible_volunteer(ctx, principal, volunteer_id)
    lines = await _service_lines(ctx, volunteer.id, station_id=None, start=None, end=None)
    certificates = await CertificatesRepository(ctx.db).for_volunteer(volunteer.id)
    return {
        "volunteer": shown_to(principal, volunteer),
        "services": [
            {**_line_dict(line), "attendance_id": att.id, "station_id": att.station_id, "evaluation": att.evaluation}
            for att, line in lines
        ],
        "total_hours": round(sum(line.hours for _, line in lines), 1),
        "records": list(volunteer.records),
        "certificates": certificates,
    }


def _line_dict(line: ServiceLine) -> dict[str, Any]:
    return {
        "activity_id": line.activity_id,
        "title": line.title,
        "content": line.content,
        "place": line.place,
        "start_at": line.start_at,
        "end_at": line.end_at,
        "hours": line.hours,
    }


# ---------------------------------------------------------------- certificates


def base_url(ctx: Context) -> str:
    """Where public links (the verify page) point."""
    return ctx.settings.public_base_url or f"http://{ctx.settings.host}:{ctx.settings.port}"


async def issue_certificate(
    *,
    ctx: Context,
    principal: Principal,
    volunteer_id: str,
    period_from: date,
    period_to: date,
    station_id: str | None = None,
) -> Certificate:
    """The recording station issues a certificate (志愿服务记录证明) of the hours it recorded in a period."""
    require_role(
        principal,
        (*STATION_STAFF_ROLES, "admin"),
        code="not_recording_organisation",
        detail="Only the station that recorded the service issues its certificate.",
    )
    if principal.role in STATION_STAFF_ROLES:
        if station_id and station_id != principal.station_id:
            raise PermissionDeniedError(
                "not_recording_organisation",
                "A station certifies only what it recorded (谁记录谁证明); this is another station.",
            )
        station_id = principal.station_id
    if not station_id:
        raise ValidationFailedError(
            "unknown_station", "Name the recording station.", errors={"station_id": ["Name the recording station."]}
        )
    if period_to < period_from:
        raise ValidationFailedError(
            "invalid_period",
            "Must not be before period_from.",
            errors={"period_to": ["Must not be before period_from."]},
        )
    if period_to > _local_date(ctx.now()):
        raise ValidationFailedError(
            "invalid_period", "Must not be in the future.", errors={"period_to": ["Must not be in the future."]}
        )
    station = await _station(ctx, station_id)
    volunteers = VolunteersRepository(ctx.db)
    volunteer = await volunteers.get(volunteer_id)
    lines = await _service_lines(ctx, volunteer.id, station_id=station.id, start=period_from, end=period_to)
    if not lines:
        raise ValidationFailedError(
            "no_records_in_period",
            "This station has no confirmed service of this volunteer in the period; nothing to certify.",
            errors={"period_from": ["No confirmed service recorded by this station in the period."]},
        )
    total = round(sum(line.hours for _, line in lines), 1)
    records = [
        r
        for r in volunteer.records
        if r.station_id == station.id and period_from.isoformat() <= r.on <= period_to.isoformat()
    ]
    repo = CertificatesRepository(ctx.db)
    now = ctx.now()
    prefix = f"ZYZM-{station.code}-{now.year}-"
    for _attempt in range(20):
        serial = await repo.count_numbers(prefix) + 1 + _attempt
        doc = {
            "_id": new_id(),
            "number": rules.certificate_number(township=station.code, issued_at=now, serial=serial),
            "verification_code": rules.new_verification_code(),
            "volunteer_id": volunteer.id,
            "volunteer_name": volunteer.name,
            "id_card_masked": volunteer.id_card_masked,
            "station_id": station.id,
            "township": station.code,
            "organisation": station.name,
            "period_from": period_from.isoformat(),
            "period_to": period_to.isoformat(),
            "total_hours": total,
            "services": [line_doc(line) for _, line in lines],
            "records": [record_doc(r) for r in records],
            "issued_by": actor_doc(actor_of(principal)),
            "issued_at": now,
            "status": "valid",
        }
        certificate = await repo.insert(doc)
        if certificate is not None:
            break
    else:  # pragma: no cover - twenty collisions in a row
        raise ConflictError("certificate_number_busy", "Certificates are being numbered at this moment; try again.")
    await _append_event(
        ctx,
        type=EVENT_CERT_ISSUED,
        key=f"certificate:{certificate.id}",
        seq=1,
        principal=principal,
        station=station.id,
        division=station.code,
        data={
            "certificate_id": certificate.id,
            "number": certificate.number,
            "volunteer_id": volunteer.id,
            "total_hours": total,
            "period_from": certificate.period_from,
            "period_to": certificate.period_to,
        },
    )
    return certificate


async def _visible_certificate(ctx: Context, principal: Principal, certificate_id: str) -> Certificate:
    certificate = await CertificatesRepository(ctx.db).get(certificate_id)
    if principal.role == "resident":
        me = await VolunteersRepository(ctx.db).by_resident(principal.subject)
        if me is not None and me.id == certificate.volunteer_id:
            return certificate
    elif principal.role == "supervisor":
        if certificate.number.split("-")[1].startswith(principal.division_prefix or "-"):
            return certificate
    elif principal.role == "admin" or (
        principal.role in STATION_STAFF_ROLES and principal.station_id == certificate.station_id
    ):
        return certificate
    raise NotFoundError("certificate_not_found", f"There is no certificate {certificate_id!r}.")


async def get_certificate(*, ctx: Context, principal: Principal, certificate_id: str) -> Certificate:
    """One certificate (the volunteer, the issuing station, supervisors)."""
    return await _visible_certificate(ctx, principal, certificate_id)


async def certificate_pdf(*, ctx: Context, principal: Principal, certificate_id: str) -> bytes:
    """The certificate as a PDF (rendered off the event loop: font subsetting takes a moment)."""
    from service.volunteers.certificate_pdf import render_certificate

    certificate = await _visible_certificate(ctx, principal, certificate_id)
    url = rules.verify_url(base_url(ctx), certificate.verification_code)
    return await asyncio.to_thread(render_certificate, certificate, url)


async def revoke_certificate(*, ctx: Context, principal: Principal, certificate_id: str, reason: str) -> Certificate:
    """The issuing station revokes a certificate with a reason; the verify page then says so."""
    certificate = await _visible_certificate(ctx, principal, certificate_id)
    require_role(
        principal,
        (*STATION_STAFF_ROLES, "admin"),
        code="not_recording_organisation",
        detail="Only the issuing station revokes its certificates.",
    )
    repo = CertificatesRepository(ctx.db)
    if not await repo.revoke(certificate.id, reason=reason.strip(), by=actor_of(principal), now=ctx.now()):
        raise InvalidStateError("certificate_revoked", "This certificate is already revoked.")
    await _append_event(
        ctx,
        type=EVENT_CERT_REVOKED,
        key=f"certificate:{certificate.id}",
        seq=2,
        principal=principal,
        station=certificate.station_id,
        division=certificate.number.split("-")[1],
        data={"certificate_id": certificate.id, "number": certificate.number, "reason": reason.strip()},
    )
    return await repo.get(certificate.id)


async def verify_certificate(*, ctx: Context, code: str) -> dict[str, Any]:
    """What the public verify page shows: masked name, organisation, hours, period, valid or revoked."""
    normalised = code.strip().upper()
    found = (
        await CertificatesRepository(ctx.db).by_code(normalised)
        if re.fullmatch(f"[{rules.VERIFY_ALPHABET}]{{{rules.VERIFY_LENGTH}}}", normalised)
        else None
    )
    if found is None:
        raise NotFoundError("certificate_not_found", "No certificate has this verification code.")
    return {
        "number": found.number,
        "status": found.status,
        "valid": found.status == "valid",
        "name_masked": found.name_masked,
        "organisation": found.organisation,
        "total_hours": found.total_hours,
        "period_from": found.period_from,
        "period_to": found.period_to,
        "issued_at": found.issued_at,
        "revoked_at": found.revoked_at,
        "revoked_reason": found.revoked_reason,
    }


# ---------------------------------------------------------------- KPIs and export


def _scope(principal: Principal, station_id: str | None, county: str | None) -> tuple[str, dict[str, Any]]:
    """(label, filter) of what the caller may count: a station, a division prefix, or everything."""
    if principal.role in STATION_STAFF_ROLES:
        if station_id and station_id != principal.station_id:
            raise PermissionDeniedError("other_station", "Staff read their own station's figures.")
        return f"station:{principal.station_id}", {"station_id": principal.station_id}
    if principal.role == "supervisor":
        prefix = principal.division_prefix or "-"
        if county and not county.startswith(prefix):
            raise PermissionDeniedError("outside_division", "This county is outside your division.")
        prefix = county or prefix
        query: dict[str, Any] = {"township": {"$regex": f"^{re.escape(prefix)}"}}
        if station_id:
            query["station_id"] = station_id
        return f"division:{prefix}", query
    if principal.role != "admin":
        raise PermissionDeniedError("staff_only", "Only staff read volunteer figures.")
    if station_id:
        return f"station:{station_id}", {"station_id": station_id}
    if county:
        return f"division:{county}", {"township": {"$regex": f"^{re.escape(county)}"}}
    return "all", {}


def _period_bounds(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    lo = datetime.combine(start, time.min, LOCAL).astimezone(UTC) if start else None
    hi = datetime.combine(end + timedelta(days=1), time.min, LOCAL).astimezone(UTC) if end else None
    return lo, hi


def _time_filter(field: str, lo: datetime | None, hi: datetime | None) -> dict[str, Any]:
    cond: dict[str, Any] = {}
    if lo:
        cond["$gte"] = lo
    if hi:
        cond["$lt"] = hi
    return {field: cond} if cond else {}


async def kpis(
    *,
    ctx: Context,
    principal: Principal,
    station_id: str | None = None,
    county: str | None = None,
    period_from: date | None = None,
    period_to: date | None = None,
) -> Kpis:
    """Registered and active volunteers, confirmed hours, activities held, certificates, per station."""
    label, query = _scope(principal, station_id, county)
    lo, hi = _period_bounds(period_from, period_to)
    registered = await VolunteersRepository(ctx.db).count(query)
    active: set[str] = set()
    hours = 0.0
    per_station: dict[str, dict[str, Any]] = {}
    async for att in AttendanceRepository(ctx.db).confirmed({**query, **_time_filter("check_in_at", lo, hi)}):
        active.add(att.volunteer_id)
        hours += float(att.hours or 0)
        row = per_station.setdefault(att.station_id, {"station_id": att.station_id, "hours": 0.0, "volunteers": set()})
        row["hours"] += float(att.hours or 0)
        row["volunteers"].add(att.volunteer_id)
    activities = ActivitiesRepository(ctx.db)
    window = _time_filter("start_at", lo, hi)
    held_query = {
        **query,
        **window,
        "status": "published",
        "start_at": {**window.get("start_at", {}), "$lt": min(hi or ctx.now(), ctx.now())},
    }
    held = await activities.count(held_query)
    published = await activities.count({**query, **_time_filter("start_at", lo, hi)})
    certificates = await CertificatesRepository(ctx.db).count(
        {**query, **_time_filter("issued_at", lo, hi), "status": "valid"}
    )
    return Kpis(
        scope=label,
        registered_volunteers=registered,
        active_volunteers=len(active),
        hours=round(hours, 1),
        activities_held=held,
        activities_published=published,
        certificates_issued=certificates,
        by_station=[
            {"station_id": k, "hours": round(v["hours"], 1), "active_volunteers": len(v["volunteers"])}
            for k, v in sorted(per_station.items())
        ],
    )


async def export_records_csv(
    *,
    ctx: Context,
    principal: Principal,
    station_id: str | None = None,
    county: str | None = None,
    period_from: date | None = None,
    period_to: date | None = None,
) -> str:
    """Confirmed service records as CSV (UTF-8 with BOM) in the documented columns (docs/volunteers.md)."""
    _, query = _scope(principal, station_id, county)
    lo, hi = _period_bounds(period_from, period_to)
    rows = [
        att async for att in AttendanceRepository(ctx.db).confirmed({**query, **_time_filter("check_in_at", lo, hi)})
    ]
    activities = await ActivitiesRepository(ctx.db).many(list({r.activity_id for r in rows}))
    volunteers = await VolunteersRepository(ctx.db).many(list({r.volunteer_id for r in rows}))
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for r in rows:
        a, v = activities.get(r.activity_id), volunteers.get(r.volunteer_id)
        if a is None or v is None:
            continue
        confirmed = next((h.at for h in reversed(r.history) if h.action == "confirmed"), None)
        writer.writerow(
            [
                r.id, v.id, _csv_safe(v.name), v.id_card_masked, a.id, _csv_safe(a.title), a.scenario,
                _csv_safe(a.station_name), a.township, _csv_safe(a.location), rfc3339(a.start_at), rfc3339(a.end_at),
                rfc3339(r.check_in_at) if r.check_in_at else "", rfc3339(r.check_out_at) if r.check_out_at else "",
                rules.format_hours(float(r.hours or 0)), rfc3339(confirmed) if confirmed else "", a.case_id or "",
            ]
        )  # fmt: skip
    return out.getvalue()


def _csv_safe(text: str) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
