"""What every volunteer verb shares: the area's constants and event types, who the caller is and
what they may see, the station lookup and the event outbox.

Organisers: station staff (worker, station head) of the activity's station, and the
organisers of the activity's team (volunteers themselves). "Whoever organises records,
whoever records certifies" (谁组织谁记录，谁记录谁证明): hours are written only by the
organising side, from attendance, and a certificate is issued only by the station whose
activities recorded the service. Volunteers never write hours; they may ask for a
correction, which goes to the recording organisation.
"""

from __future__ import annotations

import contextlib
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from service.cases import reads as case_reads
from service.cases.models import CaseEvent, Subject
from service.common.context import Context
from service.common.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from service.common.ids import is_id
from service.common.models import STATION_STAFF_ROLES, Principal, require_role
from service.common.paging import decode_cursor
from service.stations import service as stations
from service.stations.models import Station
from service.volunteers.models import (
    Activity,
    Actor,
    Volunteer,
)
from service.volunteers.repository.people import TeamsRepository, VolunteersRepository

log = logging.getLogger("huimin.volunteers")
LOCAL = ZoneInfo("Asia/Shanghai")
CHECKIN_GRACE = timedelta(hours=1)  # check-in opens this long before the start; check-out closes this long after
CANCEL_BEFORE = timedelta(hours=2)  # a confirmed volunteer may withdraw until this long before the start
MAX_ACTIVITY_LENGTH = timedelta(days=7)
TOWNSHIP = re.compile(r"^[1-9]\d{8}$")

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


def after_id(cursor: str | None) -> str | None:
    """The id a page continues after (400 ``invalid_cursor`` for a cursor this server did not write)."""
    return decode_cursor(cursor, str, check=lambda v: is_id(v[0]))[0] if cursor else None


def aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def station_of_township(ctx: Context, township: str) -> Station | None:
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


async def known_station(ctx: Context, station_id: str, *, field: str = "station_id") -> Station:
    try:
        return await stations.get_station(ctx=ctx, station_id=station_id)
    except NotFoundError:
        raise ValidationFailedError(
            "unknown_station", f"There is no station {station_id!r}.", errors={field: ["No such station."]}
        ) from None


async def append_event(
    ctx: Context,
    *,
    type: str,
    subject: Subject,
    seq: int,
    principal: Principal | None,
    station: str | None,
    division: str | None,
    data: dict[str, Any],
) -> None:
    """Write one event to the outbox (webhooks, notifications and the live feed read it from there)."""
    event = CaseEvent(
        type=type,
        case_id=None,
        subject=subject,
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


async def my_volunteer(ctx: Context, principal: Principal) -> Volunteer:
    require_role(
        principal, ("resident",), code="residents_only", detail="Only a resident signed in as a volunteer can do this."
    )
    found = await VolunteersRepository(ctx.db).by_resident(principal.subject)
    if found is None:
        raise PermissionDeniedError("not_a_volunteer", "Register as a volunteer first (POST /api/v1/volunteers).")
    return found


def can_see_station(principal: Principal, station_id: str | None, township: str | None) -> bool:
    if principal.role == "admin":
        return True
    if principal.role == "supervisor":
        return bool(principal.division_prefix) and (township or "").startswith(principal.division_prefix or "")
    if principal.role in STATION_STAFF_ROLES:
        return principal.station_id is not None and principal.station_id == station_id
    return False


async def is_team_organiser(ctx: Context, principal: Principal, team_id: str | None) -> bool:
    if principal.role != "resident" or not team_id:
        return False
    me = await VolunteersRepository(ctx.db).by_resident(principal.subject)
    team = await TeamsRepository(ctx.db).find(team_id)
    return me is not None and team is not None and me.id in team.organiser_ids


async def require_organiser(ctx: Context, principal: Principal, activity: Activity) -> None:
    """The caller organises this activity (its station's staff, its team's organisers, or an admin)."""
    if principal.role == "admin":
        return
    if principal.role in STATION_STAFF_ROLES and principal.station_id == activity.station_id:
        return
    if await is_team_organiser(ctx, principal, activity.team_id):
        return
    raise PermissionDeniedError(
        "not_organiser",
        "Only the organising station's staff or the team's organisers may do this; "
        "volunteers cannot record or change hours.",
    )
