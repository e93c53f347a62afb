"""Activities: publishing, reading, listing and cancelling them."""

from __future__ import annotations

from datetime import datetime, timedelta

from service.cases.models import Subject
from service.catalog.models import SCENARIO_CODES
from service.common.context import Context
from service.common.errors import (
    InvalidStateError,
    PermissionDeniedError,
    ValidationFailedError,
)
from service.common.ids import new_id
from service.common.models import STATION_STAFF_ROLES, Page, Principal
from service.common.paging import encode_cursor, paged
from service.common.timestamps import rfc3339
from service.volunteers.access import (
    EVENT_CANCELLED,
    EVENT_PUBLISHED,
    MAX_ACTIVITY_LENGTH,
    actor_of,
    after_id,
    append_event,
    aware,
    is_team_organiser,
    known_station,
    require_organiser,
)
from service.volunteers.inputs import ActivityInput
from service.volunteers.models import (
    SKILLS,
    Activity,
    Team,
    VolunteerScope,
)
from service.volunteers.repository.activities import ActivitiesRepository
from service.volunteers.repository.codecs import actor_doc
from service.volunteers.repository.people import TeamsRepository

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
    *, ctx: Context, principal: Principal, data: ActivityInput, case_id: str | None = None
) -> Activity:
    """An organiser publishes an activity (项目) at a station; volunteers can then sign up."""
    now = ctx.now()
    start, end = aware(data.start_at), aware(data.end_at)
    _check_activity_times(start, end, now)
    if data.scenario not in SCENARIO_CODES:
        raise ValidationFailedError(
            "invalid_activity",
            f"Must be one of {', '.join(SCENARIO_CODES)}.",
            errors={"scenario": [f"Must be one of {', '.join(SCENARIO_CODES)}."]},
        )
    bad = [s for s in data.skills_wanted if s not in SKILLS]
    if bad:
        raise ValidationFailedError(
            "invalid_activity", f"Unknown skill {bad[0]!r}.", errors={"skills_wanted": [f"Unknown skill {bad[0]!r}."]}
        )
    team_id = data.team_id
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
        station_id = data.station_id or (team.station_id if team else "")
        if not station_id:
            raise ValidationFailedError(
                "unknown_station",
                "Name the station (or a team) the activity belongs to.",
                errors={"station_id": ["Name the station (or a team) the activity belongs to."]},
            )
    elif principal.role == "resident" and team is not None and await is_team_organiser(ctx, principal, team.id):
        station_id = team.station_id
    else:
        raise PermissionDeniedError(
            "not_organiser", "Station staff and the organisers of a volunteer team publish activities."
        )
    station = await known_station(ctx, station_id)
    doc = {
        "_id": new_id(now),
        "title": data.title.strip(),
        "scenario": data.scenario,
        "content": data.content.strip(),
        "station_id": station.id,
        "station_name": station.name,
        "township": station.code,
        "team_id": team.id if team else None,
        "location": (data.location or station.name).strip(),
        "start_at": start,
        "end_at": end,
        "slots": int(data.slots),
        "skills_wanted": list(dict.fromkeys(data.skills_wanted)),
        "status": "published",
        "confirmed_count": 0,
        "case_id": case_id,
        "organiser": actor_doc(actor_of(principal)),
        "created_at": now,
        "updated_at": now,
    }
    activity = await ActivitiesRepository(ctx.db).insert(doc)
    await append_event(
        ctx,
        type=EVENT_PUBLISHED,
        subject=Subject("activity", activity.id),
        seq=1,
        principal=principal,
        station=activity.station_id,
        division=activity.township,
        data={"activity_id": activity.id, "title": activity.title, "start_at": rfc3339(start), "case_id": case_id},
    )
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
    county: str | None = None,
    status: str | None = None,
    upcoming: bool = False,
    limit: int = 20,
    cursor: str | None = None,
) -> Page[Activity]:
    """Activities, newest first: staff see their station's by default; anyone may filter by station, township
    or county, and ask only for those not yet over (``upcoming``)."""
    station: str | None = station_id or None
    prefix: str | None = None
    if station is None and principal.role in STATION_STAFF_ROLES:
        station = principal.station_id or ""
    elif station is None and principal.role == "supervisor":
        prefix = principal.division_prefix or "-"
    scope = VolunteerScope(station_id=station, township_prefix=county or prefix, township=township or None)
    items, next_cursor = paged(
        await ActivitiesRepository(ctx.db).find_page(
            scope,
            status=status,
            ends_after=ctx.now() if upcoming else None,
            before=after_id(cursor),
            limit=limit + 1,
            now=ctx.now(),
        ),
        limit,
        lambda a: encode_cursor(a.id),
    )
    return Page(items=items, next_cursor=next_cursor)


async def cancel_activity(*, ctx: Context, principal: Principal, activity_id: str, reason: str) -> Activity:
    """The organiser cancels an activity that has not started; nobody can sign up any more."""
    repo = ActivitiesRepository(ctx.db)
    activity = await repo.get(activity_id)
    await require_organiser(ctx, principal, activity)
    if activity.start_at <= ctx.now():
        raise InvalidStateError("activity_started", "An activity that has started cannot be cancelled.")
    if not await repo.cancel(activity_id, reason.strip(), ctx.now()):
        raise InvalidStateError("activity_not_open", "The activity is already cancelled.")
    await append_event(
        ctx,
        type=EVENT_CANCELLED,
        subject=Subject("activity", activity.id),
        seq=2,
        principal=principal,
        station=activity.station_id,
        division=activity.township,
        data={"activity_id": activity.id, "reason": reason.strip()},
    )
    return await repo.get(activity_id)
