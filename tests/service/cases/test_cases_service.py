"""The cases service called directly, without HTTP: who reads what, acting, and the sweeps."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.cases import actions, queries, sweeps
from service.cases.inputs import ActionInput, CaseSubmission
from service.cases.models import CaseChange
from service.cases.repository.cases import CasesRepository
from service.cases.submit import submit_case
from service.common.context import Context
from service.common.errors import NotFoundError
from service.stations.service import get_station
from tests.factories import (
    case_body,
    events_of,
    make_case,
    make_staff,
    make_station,
    make_wechat_resident,
    principal_of,
)

OTHER_TOWNSHIP = "341002002"


async def two_stations_with_a_case_each(ctx: Context):
    here = await make_station(ctx)
    there = await make_station(ctx, code=OTHER_TOWNSHIP, name="老街街道社工站", point=(118.33, 29.71))
    resident = await make_wechat_resident(ctx)
    mine = await make_case(ctx, resident)
    theirs = await make_case(ctx, resident, division_code=OTHER_TOWNSHIP)
    return here, there, mine, theirs


async def test_worker_lists_and_reads_only_cases_held_by_their_station(ctx: Context) -> None:
    here, there, mine, theirs = await two_stations_with_a_case_each(ctx)
    assert (mine["station_id"], theirs["station_id"]) == (here.id, there.id)
    worker = principal_of(await make_staff(ctx, station_id=here.id))
    page = await queries.list_cases(ctx=ctx, principal=worker, query={"limit": 50})
    assert [c["id"] for c in page.items] == [mine["id"]]
    assert (await queries.get_case(ctx=ctx, principal=worker, case_id=mine["id"]))["id"] == mine["id"]
    with pytest.raises(NotFoundError) as refused:
        await queries.get_case(ctx=ctx, principal=worker, case_id=theirs["id"])
    assert refused.value.code == "case_not_found"


async def test_worker_of_another_station_cannot_accept_the_case(ctx: Context) -> None:
    _here, there, mine, _theirs = await two_stations_with_a_case_each(ctx)
    stranger = await make_staff(ctx, station_id=there.id)
    with pytest.raises(NotFoundError):
        await actions.act(
            ctx=ctx, principal=principal_of(stranger), case_id=mine["id"], action="accept", data=ActionInput()
        )
    assert [e.type for e in await events_of(ctx, mine["id"])][-1] != "case.accepted"


async def test_accepting_writes_the_state_and_one_event(ctx: Context) -> None:
    here, _there, mine, _theirs = await two_stations_with_a_case_each(ctx)
    worker = await make_staff(ctx, station_id=here.id)
    before = len(await events_of(ctx, mine["id"]))
    accepted = await actions.act(
        ctx=ctx, principal=principal_of(worker), case_id=mine["id"], action="accept", data=ActionInput()
    )
    assert accepted["status"] == "accepted"
    after = await events_of(ctx, mine["id"])
    assert len(after) == before + 1 and after[-1].type == "case.accepted"
    assert (after[-1].from_state, after[-1].to_state) == ("dispatched", "accepted")


async def test_sweep_flags_an_unsigned_case_overdue_once(ctx: Context) -> None:
    _here, _there, mine, _theirs = await two_stations_with_a_case_each(ctx)
    now = ctx.now()
    ctx.clock = lambda: now + timedelta(days=30)  # long past the time to sign
    first = await sweeps.sweep_once(ctx=ctx)
    assert first["sign_overdue"] == 2  # both dispatched cases
    assert (await sweeps.sweep_once(ctx=ctx))["sign_overdue"] == 0  # flagged once, not again
    assert [e.type for e in await events_of(ctx, mine["id"])].count("case.overdue") == 1
    history = (await CasesRepository(ctx.db).get(mine["id"])).history
    assert history[-1].action == "overdue" and (history[-1].actor_subject, history[-1].actor_role) == (
        "system",
        "system",
    )


async def test_the_plan_of_a_return_is_a_typed_change_that_moves_the_case_and_the_loads(ctx: Context) -> None:
    here, _there, mine, _theirs = await two_stations_with_a_case_each(ctx)
    worker = principal_of(await make_staff(ctx, station_id=here.id))
    case = await CasesRepository(ctx.db).get(mine["id"])
    plan = await actions._plan(ctx, worker, case, "return", ActionInput(reason="不属本站 not ours"), ctx.now())
    assert isinstance(plan, CaseChange)
    assert plan.event_type == "case.returned" and plan.increments == {"return_count": 1}
    assert plan.fields["returned_by"] == [here.id] and plan.fields["assignee_id"] is None
    next_station = plan.fields["station_id"]
    assert next_station != here.id and plan.to_state == ("dispatched" if next_station else "unrouted")
    assert (here.id, -1) in plan.load and plan.event_data["returned_by_station"] == here.id
    # Acting writes what the plan says: the counters raised, one history line naming the event.
    returned = await actions.act(
        ctx=ctx, principal=worker, case_id=mine["id"], action="return", data=ActionInput(reason="x")
    )
    stored = await CasesRepository(ctx.db).get(mine["id"])
    assert stored.return_count == 1 and stored.version == case.version + 1
    assert stored.history[-1].action == "return" and returned["status"] == stored.status
    [event] = [e for e in await events_of(ctx, mine["id"]) if e.type == "case.returned"]
    assert stored.history[-1].event_id == event.id and event.data["reason"] == "x"


async def test_a_filing_counts_at_its_station_once_and_a_retry_of_a_stored_one_not_again(ctx: Context) -> None:
    here, there, mine, _theirs = await two_stations_with_a_case_each(ctx)
    assert (await get_station(ctx=ctx, station_id=here.id)).open_cases == 1
    assert (await get_station(ctx=ctx, station_id=there.id)).open_cases == 1
    resident = await make_wechat_resident(ctx)
    await make_case(ctx, resident)
    assert (await get_station(ctx=ctx, station_id=here.id)).open_cases == 2
    # A retry that took over an abandoned Idempotency-Key files under the id its first attempt
    # stored: it answers with that case, and the station's count stays.
    body = await case_body(ctx)
    again = await submit_case(
        ctx=ctx, principal=principal_of(resident), data=CaseSubmission(**body), case_id=mine["id"]
    )
    assert again["id"] == mine["id"] and again["number"] == mine["number"]
    assert (await get_station(ctx=ctx, station_id=here.id)).open_cases == 2
