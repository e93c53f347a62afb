"""Volunteer teams: read back as formed, found or not found by id, listed per station in id order.

Teams are formed by station staff through the volunteers service; the repository is then read
directly.
"""

from __future__ import annotations

import pytest

from service.common.context import Context
from service.common.errors import NotFoundError
from service.common.ids import is_id
from service.common.models import utcnow
from service.volunteers import teams
from service.volunteers.inputs import TeamInput
from service.volunteers.models import Actor, Team
from service.volunteers.repository.people import TeamsRepository
from tests.factories import Who, make_staff, make_station, make_volunteer, principal_of

SECOND_CODE = "341002002"


async def form(ctx: Context, by: Who, name: str, organiser_ids: list[str] | None = None) -> Team:
    """A team formed by station staff at their own station."""
    return await teams.create_team(
        ctx=ctx,
        principal=principal_of(by),
        data=TeamInput(name=name, organiser_ids=tuple(organiser_ids or ()), description=f"{name}的说明"),
    )


async def test_a_team_reads_back_as_formed_and_a_missing_team_is_not_found(ctx: Context) -> None:
    now = utcnow().replace(microsecond=0)
    ctx.clock = lambda: now
    head = await make_staff(ctx, role="station_head")
    organisers = [(await make_volunteer(ctx))[1].id for _ in range(2)]
    made = await form(ctx, head, " 敬老志愿服务队 ", [organisers[1], organisers[0], organisers[1]])
    repo = TeamsRepository(ctx.db)
    got = await repo.get(made.id)
    assert got == made and is_id(got.id)
    assert (got.name, got.station_id, got.organiser_ids) == (
        "敬老志愿服务队",
        head.station_id,
        (organisers[1], organisers[0]),
    )
    assert (got.created_by, got.created_at) == (Actor(subject=head.id, role="station_head"), now)
    assert await repo.find(made.id) == made
    for missing in (organisers[0], "not-an-id"):
        assert await repo.find(missing) is None
        with pytest.raises(NotFoundError) as exc:
            await repo.get(missing)
        assert exc.value.code == "team_not_found"


async def test_teams_list_per_station_in_id_order_up_to_the_limit(ctx: Context) -> None:
    worker = await make_staff(ctx)
    elsewhere = await make_station(ctx, code=SECOND_CODE, name="老街街道社工站", point=(118.33, 29.71))
    other_worker = await make_staff(ctx, station_id=elsewhere.id)
    ours = [(await form(ctx, worker, f"第{n}志愿服务队")).id for n in range(3)]
    theirs = (await form(ctx, other_worker, "老街志愿服务队")).id
    repo = TeamsRepository(ctx.db)
    assert [t.id for t in await repo.find_page({"station_id": worker.station_id})] == ours
    assert [t.id for t in await repo.find_page({"station_id": worker.station_id}, limit=2)] == ours[:2]
    assert [t.id for t in await repo.find_page({"station_id": elsewhere.id})] == [theirs]
    assert [t.id for t in await repo.find_page({})] == sorted([*ours, theirs])
    assert await repo.find_page({"station_id": worker.id}) == []
