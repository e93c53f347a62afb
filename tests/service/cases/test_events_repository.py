"""The event log, written atomically with the case change through a transaction.

The cases and their events are made by filing and acting on cases through the service; the
repository is then read, re-fed and driven inside transactions directly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service.cases.models import CaseEvent
from service.cases.repository.cases import CasesRepository
from service.cases.repository.events import EventsRepository
from service.common.context import Context
from service.common.errors import ConflictError
from service.storage.transactions import in_transaction
from tests.factories import act_on, events_of, make_case, make_staff, make_station, make_wechat_resident

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


async def filed_case(ctx: Context) -> tuple[dict[str, Any], Any]:
    """A case a resident filed at a station, and a worker of that station."""
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    return await make_case(ctx, await make_wechat_resident(ctx)), worker


def accepted_event(case: dict[str, Any], worker: Any) -> CaseEvent:
    """The event the case area writes when the worker signs for the case (version 1 -> 2)."""
    return CaseEvent(
        type="case.accepted",
        case_id=case["id"],
        seq=2,
        actor_subject=worker.id,
        actor_role="worker",
        time=T0,
        case_number=case["number"],
        station_id=case["station_id"],
        division=case["division"],
        from_state="dispatched",
        to_state="accepted",
    )


async def test_events_are_listed_in_case_order_with_all_fields(ctx: Context) -> None:
    ctx.clock = lambda: T0
    await make_station(ctx, capabilities=[])  # the township's station offers nothing yet
    resident = await make_wechat_resident(ctx)
    case = await make_case(ctx, resident)  # so no station is found: created, then unrouted, both seq 1
    other = await make_case(ctx, resident)
    station = await make_station(ctx, code="341002002", name="老街街道社工站", point=(118.33, 29.71))
    admin = await make_staff(ctx, role="admin")
    await act_on(ctx, admin, case["id"], "dispatch", station_id=station.id)
    history = await events_of(ctx, case["id"])
    assert [(e.seq, e.type) for e in history] == [(1, "case.created"), (1, "case.unrouted"), (2, "case.dispatched")]
    assert [e.type for e in await events_of(ctx, other["id"])] == ["case.created", "case.unrouted"]
    first = history[0]
    assert first.id == case["history"][0]["event_id"]
    assert first.case_number == case["number"]
    assert first.division == case["division"] and first.to_state == "unrouted"
    assert first.actor_subject == resident.id and first.actor_role == "resident"
    assert first.time == T0
    assert first.created_at is not None and first.created_at.tzinfo is not None
    assert history[2].station_id == station.id and history[2].from_state == "unrouted"
    raw = await ctx.db["events"].find_one({"_id": first.id})
    assert raw is not None and raw["actor"] == {"subject": resident.id, "role": "resident"}


async def test_the_same_change_cannot_be_logged_twice(ctx: Context) -> None:
    case, worker = await filed_case(ctx)
    repo = EventsRepository(ctx.db)
    await repo.append(accepted_event(case, worker))
    with pytest.raises(ConflictError) as exc:
        await repo.append(accepted_event(case, worker))  # a retry of the same change, with a new event id
    assert exc.value.code == "event_already_recorded"
    created = (await events_of(ctx, case["id"]))[0]
    with pytest.raises(ConflictError):
        await repo.append(created)  # the filing's own event, logged again
    assert len(await events_of(ctx, case["id"])) == 2


async def test_outbox_reads_forward_from_a_mark(ctx: Context) -> None:
    await make_station(ctx)
    resident = await make_wechat_resident(ctx)
    ids = [(await make_case(ctx, resident))["history"][0]["event_id"] for _ in range(5)]
    repo = EventsRepository(ctx.db)
    first_two = await repo.after(None, limit=2)
    rest = await repo.after(first_two[-1].id)
    assert [e.id for e in first_two + rest] == ids


async def test_case_update_and_event_commit_together(ctx: Context) -> None:
    case, worker = await filed_case(ctx)
    repo = EventsRepository(ctx.db)
    cases = CasesRepository(ctx.db)

    async def accept(session: Any) -> str:
        assert await cases.apply(
            case["id"],
            expected_version=1,
            expected_status="dispatched",
            fields={"status": "accepted", "assignee_id": worker.id},
            session=session,
        )
        await repo.append(accepted_event(case, worker), session=session)
        return "done"

    assert await in_transaction(ctx, accept) == "done"
    stored = await cases.get(case["id"])
    assert (stored.status, stored.version, stored.assignee_id) == ("accepted", 2, worker.id)
    assert [e.type for e in await events_of(ctx, case["id"])] == ["case.created", "case.accepted"]


async def test_an_error_inside_the_transaction_leaves_neither_write(ctx: Context) -> None:
    case, worker = await filed_case(ctx)
    repo = EventsRepository(ctx.db)
    cases = CasesRepository(ctx.db)

    async def accept_then_fail(session: Any) -> None:
        assert await cases.apply(
            case["id"],
            expected_version=1,
            expected_status="dispatched",
            fields={"status": "accepted"},
            session=session,
        )
        await repo.append(accepted_event(case, worker), session=session)
        raise ConflictError("case_changed", "The case changed meanwhile.")

    with pytest.raises(ConflictError):
        await in_transaction(ctx, accept_then_fail)
    stored = await cases.get(case["id"])
    assert (stored.status, stored.version) == ("dispatched", 1)
    assert [e.type for e in await events_of(ctx, case["id"])] == ["case.created"]
    assert await ctx.db["events"].count_documents({}) == 1
