"""Volunteers and activities: one registration per person, slots never overbooked, newest activities first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.common.context import Context
from service.common.errors import ConflictError, NotFoundError
from service.volunteers import signups
from service.volunteers.models import VolunteerScope
from service.volunteers.repository.activities import ActivitiesRepository, SignupsRepository
from service.volunteers.repository.people import VolunteersRepository
from tests.factories import id_card, make_activity, make_phone_resident, make_staff, make_volunteer, principal_of
from tests.helpers_paging import LIMITS, in_pages, made_over_time, read_pages

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


async def test_a_person_registers_once_by_id_card_and_by_account(ctx: Context) -> None:
    ctx.clock = lambda: T0  # whole milliseconds, as the store keeps them
    card = id_card("19900101", 77, region="341002")
    resident, volunteer = await make_volunteer(ctx, id_card=card)
    repo = VolunteersRepository(ctx.db)
    assert await repo.get(volunteer.id) == volunteer
    assert await repo.by_resident(resident.id) == volunteer
    assert await repo.by_resident((await make_phone_resident(ctx)).id) is None
    with pytest.raises(ConflictError) as exc:  # the same ID number from another account
        await make_volunteer(ctx, id_card=card)
    assert exc.value.code == "volunteer_exists"
    with pytest.raises(ConflictError):  # the same account with another ID number
        await make_volunteer(ctx, resident=resident)
    assert await repo.count(VolunteerScope()) == 1
    with pytest.raises(NotFoundError) as nf:
        await repo.get(resident.id)
    assert nf.value.code == "volunteer_not_found"


async def test_volunteers_page_newest_first(ctx: Context) -> None:
    made = sorted([(await make_volunteer(ctx))[1].id for _ in range(3)], reverse=True)
    repo = VolunteersRepository(ctx.db)
    first = await repo.find_page(VolunteerScope(), before=None, limit=2, now=ctx.now())
    rest = await repo.find_page(VolunteerScope(), before=first[-1].id, limit=2, now=ctx.now())
    assert [v.id for v in first + rest] == made
    assert set(await repo.many([made[0], "missing"])) == {made[0]}


async def test_a_slot_is_never_overbooked_and_an_activity_is_cancelled_once(ctx: Context) -> None:
    organiser = await make_staff(ctx)
    activity = await make_activity(ctx, organiser, slots=1)
    later = await make_activity(ctx, organiser)
    repo = ActivitiesRepository(ctx.db)
    assert await repo.take_slot(activity.id, slots=1, now=T0)
    assert not await repo.take_slot(activity.id, slots=1, now=T0)  # full
    assert not await repo.take_slot(activity.id, slots=2, now=T0)  # the organiser changed the slots meanwhile
    await repo.free_slot(activity.id, T0)
    await repo.free_slot(activity.id, T0)  # never below zero
    assert (await repo.get(activity.id)).confirmed_count == 0
    assert await repo.cancel(activity.id, "下雨", T0)
    assert not await repo.cancel(activity.id, "下雨", T0)
    assert not await repo.take_slot(activity.id, slots=1, now=T0)  # a cancelled activity takes nobody
    assert [a.id for a in await repo.find_page(VolunteerScope(), before=None, limit=10, now=ctx.now())] == [
        later.id,
        activity.id,
    ]
    assert [a.id for a in await repo.find_page(VolunteerScope(), before=later.id, limit=10, now=ctx.now())] == [
        activity.id
    ]
    with pytest.raises(NotFoundError) as nf:
        await repo.get(organiser.id)
    assert nf.value.code == "activity_not_found"


async def test_one_signup_per_volunteer_and_a_status_move_is_won_once(ctx: Context) -> None:
    organiser = await make_staff(ctx)
    activity = await make_activity(ctx, organiser)
    people = [await make_volunteer(ctx) for _ in range(2)]
    made = [
        await signups.sign_up(ctx=ctx, principal=principal_of(resident), activity_id=activity.id)
        for resident, _ in people
    ]
    with pytest.raises(ConflictError) as exc:
        await signups.sign_up(ctx=ctx, principal=principal_of(people[0][0]), activity_id=activity.id)
    assert exc.value.code == "already_signed_up"
    repo = SignupsRepository(ctx.db)
    assert [s.id for s in await repo.for_activity(activity.id)] == [s.id for s in made]
    found = await repo.find(activity.id, people[1][1].id)
    assert found is not None and found.id == made[1].id
    assert await repo.move(made[0].id, expected=(made[0].status,), status="cancelled", now=T0)
    assert not await repo.move(made[0].id, expected=(made[0].status,), status="confirmed", now=T0)  # lost the race
    assert (await repo.get(made[0].id)).status == "cancelled"
    with pytest.raises(NotFoundError) as nf:
        await repo.get(activity.id)
    assert nf.value.code == "signup_not_found"


async def test_a_stations_volunteers_and_activities_page_newest_first_across_windows(ctx: Context) -> None:
    organiser = await make_staff(ctx)

    async def make(i: int) -> tuple[str, str]:
        _, volunteer = await make_volunteer(ctx)
        start = ctx.now() + timedelta(days=1)
        activity = await make_activity(ctx, organiser, start_at=start, end_at=start + timedelta(hours=3))
        return volunteer.id, activity.id

    made = list(reversed(await made_over_time(ctx, make)))
    station = VolunteerScope(station_id=organiser.station_id)
    volunteers, activities = VolunteersRepository(ctx.db), ActivitiesRepository(ctx.db)
    for repo, ids in ((volunteers, [v for v, _ in made]), (activities, [a for _, a in made])):
        for query in (station, VolunteerScope()):  # a station's: in windows; every station's: in one query
            for limit in LIMITS:

                async def read(cursor: str | None, repo: Any = repo, query: Any = query, limit: int = limit) -> Any:
                    found = await repo.find_page(query, before=cursor, limit=limit + 1, now=ctx.now())
                    page = [x.id for x in found[:limit]]
                    return page, (page[-1] if len(found) > limit else None)

                assert await read_pages(read) == in_pages(ids, limit), (repo, query, limit)
