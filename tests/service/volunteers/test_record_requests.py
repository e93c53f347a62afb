"""Requests to record missing service: one open per volunteer and activity, even at the same moment; settled once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from service.common.context import Context
from service.common.errors import ConflictError
from service.volunteers import record_requests
from service.volunteers.inputs import RecordRequestInput
from service.volunteers.models import HistoryEntry, RecordRequest
from service.volunteers.repository.record_requests import RecordRequestsRepository
from tests.factories import make_activity, make_confirmed_volunteer, make_staff, principal_of


async def test_concurrent_requests_open_one_and_a_settled_request_makes_room_for_another(ctx: Context) -> None:
    organiser = await make_staff(ctx)
    activity = await make_activity(ctx, organiser)
    resident, volunteer = await make_confirmed_volunteer(ctx, activity, organiser)
    later = activity.end_at + timedelta(minutes=5)
    ctx.clock = lambda: later

    async def ask(n: int) -> RecordRequest | str:
        try:
            return await record_requests.request_record(
                ctx=ctx,
                principal=principal_of(resident),
                activity_id=activity.id,
                data=RecordRequestInput(reason=f"忘记签到 {n}"),
            )
        except ConflictError as exc:
            return exc.code

    results = await asyncio.gather(*(ask(n) for n in range(5)))
    made = [r for r in results if isinstance(r, RecordRequest)]
    assert len(made) == 1 and sorted(r for r in results if isinstance(r, str)) == ["record_request_open"] * 4
    repo = RecordRequestsRepository(ctx.db)
    assert [r.id for r in await repo.for_activity(activity.id)] == [made[0].id]

    opened = await repo.find_open(activity.id, volunteer.id)
    assert opened is not None and opened.version == 1
    entry = HistoryEntry(at=datetime.now(UTC), by=opened.history[0].by, action="declined", changes={}, reason="不符")
    assert await repo.settle(opened.id, version=1, sets={"status": "declined", "decline_reason": "不符"}, entry=entry)
    assert not await repo.settle(opened.id, version=1, sets={"status": "declined"}, entry=entry)  # settled once
    settled = await repo.get(opened.id)
    assert (settled.status, settled.version, len(settled.history)) == ("declined", 2, 2)
    assert await repo.find_open(activity.id, volunteer.id) is None
    again = await ask(9)
    assert isinstance(again, RecordRequest) and again.status == "open"
    assert len(await repo.for_volunteer(volunteer.id)) == 2
