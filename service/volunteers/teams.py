"""Volunteer teams: creating, listing and reading them."""

from __future__ import annotations

from typing import Any

from service.common.context import Context
from service.common.errors import (
    PermissionDeniedError,
    ValidationFailedError,
)
from service.common.ids import new_id
from service.common.models import STATION_STAFF_ROLES, Principal, require_role
from service.volunteers.access import actor_of, known_station
from service.volunteers.inputs import TeamInput
from service.volunteers.models import (
    Team,
)
from service.volunteers.repository.codecs import actor_doc
from service.volunteers.repository.people import TeamsRepository, VolunteersRepository

# ---------------------------------------------------------------- teams


async def create_team(*, ctx: Context, principal: Principal, data: TeamInput) -> Team:
    """Station staff form a volunteer team (志愿服务队) attached to their station as its service point."""
    require_role(
        principal, (*STATION_STAFF_ROLES, "admin"), code="not_allowed", detail="Station staff form volunteer teams."
    )
    station_id = data.station_id or principal.station_id
    if not station_id:
        raise ValidationFailedError(
            "unknown_station",
            "Name the station the team is attached to.",
            errors={"station_id": ["Name the station the team is attached to."]},
        )
    if principal.role in STATION_STAFF_ROLES and station_id != principal.station_id:
        raise PermissionDeniedError("other_station", "Teams are attached to your own station.")
    await known_station(ctx, station_id)
    organisers = list(dict.fromkeys(data.organiser_ids))
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
            "name": data.name.strip(),
            "station_id": station_id,
            "organiser_ids": organisers,
            "description": data.description,
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
