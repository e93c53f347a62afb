"""The event log, written atomically with the case change through a transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service.context import Context
from service.errors import ConflictError
from service.storage.events import CaseEvent, EventsRepository
from service.storage.transactions import in_transaction

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def event(type_: str, seq: int, case_id: str = "c1", **kw: Any) -> CaseEvent:
    return CaseEvent(type=type_, case_id=case_id, seq=seq, actor_subject="u1", actor_role="resident", time=T0, **kw)


async def test_events_are_listed_in_case_order_with_all_fields(ctx: Context) -> None:
    repo = EventsRepository(ctx.db)
    await repo.append(
        event("case.created", 1, case_number="HM34010220261128" + "00001", to_state="unrouted", division="340102001"),
        event("case.unrouted", 1, to_state="unrouted"),
    )
    await repo.append(event("case.dispatched", 2, from_state="unrouted", to_state="dispatched", station_id="s1"))
    await repo.append(event("case.created", 1, case_id="other"))
    history = await repo.list_for_case("c1")
    assert [(e.seq, e.type) for e in history] == [(1, "case.created"), (1, "case.unrouted"), (2, "case.dispatched")]
    first = history[0]
    assert first.case_number == "HM3401022026112800001"
    assert first.division == "340102001"
    assert first.actor_subject == "u1" and first.actor_role == "resident"
    assert first.time == T0
    assert first.created_at is not None and first.created_at.tzinfo is not None
    raw = await ctx.db["events"].find_one({"_id": first.id})
    assert raw is not None and raw["actor"] == {"subject": "u1", "role": "resident"}


async def test_the_same_change_cannot_be_logged_twice(ctx: Context) -> None:
    repo = EventsRepository(ctx.db)
    await repo.append(event("case.accepted", 3))
    with pytest.raises(ConflictError) as exc:
        await repo.append(event("case.accepted", 3))
    assert exc.value.code == "event_already_recorded"


async def test_outbox_reads_forward_from_a_mark(ctx: Context) -> None:
    repo = EventsRepository(ctx.db)
    for seq in range(1, 6):
        await repo.append(event("case.noted", seq))
    first_two = await repo.after(None, limit=2)
    rest = await repo.after(first_two[-1].id)
    assert [e.seq for e in first_two + rest] == [1, 2, 3, 4, 5]


async def test_case_update_and_event_commit_together(ctx: Context) -> None:
    repo = EventsRepository(ctx.db)
    await ctx.db["cases_t"].insert_one({"_id": "c1", "state": "dispatched", "version": 1})

    async def accept(session: Any) -> str:
        await ctx.db["cases_t"].update_one(
            {"_id": "c1", "state": "dispatched", "version": 1},
            {"$set": {"state": "accepted", "version": 2}},
            session=session,
        )
        await repo.append(event("case.accepted", 2, from_state="dispatched", to_state="accepted"), session=session)
        return "done"

    assert await in_transaction(ctx, accept) == "done"
    assert (await ctx.db["cases_t"].find_one({"_id": "c1"}) or {})["state"] == "accepted"
    assert [e.type for e in await repo.list_for_case("c1")] == ["case.accepted"]


async def test_an_error_inside_the_transaction_leaves_neither_write(ctx: Context) -> None:
    repo = EventsRepository(ctx.db)
    await ctx.db["cases_t"].insert_one({"_id": "c1", "state": "dispatched", "version": 1})

    async def accept_then_fail(session: Any) -> None:
        await ctx.db["cases_t"].update_one(
            {"_id": "c1"}, {"$set": {"state": "accepted", "version": 2}}, session=session
        )
        await repo.append(event("case.accepted", 2), session=session)
        raise ConflictError("case_changed", "The case changed meanwhile.")

    with pytest.raises(ConflictError):
        await in_transaction(ctx, accept_then_fail)
    assert (await ctx.db["cases_t"].find_one({"_id": "c1"}) or {})["state"] == "dispatched"
    assert await repo.list_for_case("c1") == []
    assert await ctx.db["events"].count_documents({}) == 0
