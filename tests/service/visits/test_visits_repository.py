"""The visit records and the due visits of each period, read and written through their repositories."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from service.common.context import Context
from service.common.errors import NotFoundError
from service.identity.accounts import StaffMember
from service.visits.repository.visits import VisitSchedulesRepository, VisitsRepository
from tests.factories import make_elder, make_staff, make_station, make_visit


async def _visit(ctx: Context, worker: StaffMember, elder_id: str, minutes_ago: int, *, reached: bool = True) -> str:
    return str((await make_visit(ctx, worker, elder_id, minutes_ago=minutes_ago, reached=reached))["id"])


async def test_a_visit_reads_back_typed_and_a_persons_visits_come_newest_first(ctx: Context) -> None:
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    elder, other = await make_elder(ctx), await make_elder(ctx)
    ids = [await _visit(ctx, worker, elder.id, minutes) for minutes in (300, 30, 120)]
    await _visit(ctx, worker, other.id, 10)
    repo = VisitsRepository(ctx.db)
    got = await repo.get(ids[1])
    assert (got.id, got.elder_id, got.method, got.reached) == (ids[1], elder.id, "home", True)
    assert isinstance(got.id, str) and got.visited_at.tzinfo is not None
    assert [v.id for v in await repo.list_for_elder(elder.id, 10)] == [ids[1], ids[2], ids[0]]
    assert [v.id for v in await repo.list_for_elder(elder.id, 2)] == [ids[1], ids[2]]
    with pytest.raises(NotFoundError):
        await repo.get(VisitsRepository.new_id())


async def test_a_due_visit_is_marked_visited_once_and_its_period_counts_the_visit(ctx: Context) -> None:
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    elder = await make_elder(ctx)
    schedules = VisitSchedulesRepository(ctx.db)
    [due] = await schedules.covering(elder.id, ctx.now())
    visit_id = await _visit(ctx, worker, elder.id, 20)
    visit = await VisitsRepository(ctx.db).get(visit_id)
    counted = await schedules.counted_by(elder.id, [visit_id])
    assert counted == {visit_id: [due["period"]]}
    # The period was marked by the recording; a second marking (by another visit or process) is refused.
    assert await schedules.mark_visited(due["_id"], visit) is False
    assert await VisitsRepository(ctx.db).counting_in(elder.id, due["period_start"], due["period_end"]) is not None


async def test_inserting_a_periods_due_visits_twice_at_once_stores_them_once(ctx: Context) -> None:
    await make_station(ctx)
    elder = await make_elder(ctx)
    schedules = VisitSchedulesRepository(ctx.db)
    [due] = await schedules.covering(elder.id, ctx.now())
    # The next period's due visit, as the schedule sweep writes it: one per person and period.
    year, week = due["period"].split("-W")
    period = f"{year}-W{int(week) + 1:02d}"
    later = {**due, "_id": f"{elder.id}:{period}", "period": period}
    for key in ("period_start", "period_end"):
        later[key] = due[key] + timedelta(days=7)
    inserted = await asyncio.gather(*(schedules.insert_missing([due, later]) for _ in range(4)))
    assert sum(inserted) == 1  # only the new period, once
    assert await schedules.existing_ids([due, later]) == {due["_id"], later["_id"]}
