"""Notification claims on outbox events: handled once, stale claims taken over, parked and put back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.common.context import Context
from service.notify.repository.outbox import OutboxReader, id_floor
from tests.factories import make_case, make_station, make_wechat_resident

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
STALE = timedelta(minutes=5)


async def event_ids(ctx: Context, n: int) -> list[str]:
    """The ids of the filing events of ``n`` new cases, in outbox order."""
    await make_station(ctx)
    resident = await make_wechat_resident(ctx)
    return [(await make_case(ctx, resident))["history"][0]["event_id"] for _ in range(n)]


async def test_an_event_is_claimed_once_until_its_claim_goes_stale(ctx: Context) -> None:
    [event] = await event_ids(ctx, 1)
    outbox = OutboxReader(ctx.db)
    assert await outbox.claim(event, owner="a", now=T0, stale_before=T0 - STALE)
    assert not await outbox.claim(event, owner="b", now=T0 + timedelta(minutes=1), stale_before=T0 - STALE)
    assert await outbox.stale_claims(stale_before=T0, limit=10) == []
    assert await outbox.stale_claims(stale_before=T0 + STALE, limit=10) == [event]
    later = T0 + STALE + timedelta(seconds=1)
    assert await outbox.claim(event, owner="b", now=later, stale_before=later - STALE)  # a crashed holder
    assert not await outbox.claim(event, owner="c", now=later, stale_before=later - STALE)  # only one takes over
    assert await outbox.finished([event]) == set()
    await outbox.release(event, now=later)
    assert await outbox.finished([event]) == {event}
    far = later + timedelta(days=1)
    assert not await outbox.claim(event, owner="d", now=far, stale_before=far)  # a handled event stays handled


async def test_checkpoints_only_rise_and_the_feed_reads_in_sequence(ctx: Context) -> None:
    ids = await event_ids(ctx, 3)
    outbox = OutboxReader(ctx.db)
    assert await outbox.checkpoint("notify") == "" and await outbox.max_feed_seq() == 0
    await outbox.advance("notify", ids[2])
    await outbox.advance("notify", ids[0])  # a slower process reporting an older mark
    assert await outbox.checkpoint("notify") == ids[2] and await outbox.checkpoint("other") == ""
    assert id_floor(ids[0], 60) < ids[0] and id_floor("not-an-object-id", 60) == "not-an-object-id"
    for seq, event in zip((7, 5, 6), ids, strict=True):
        assert await outbox.claim(event, owner="a", now=T0, stale_before=T0)
        await outbox.set_feed_seq(event, seq)
    assert await outbox.max_feed_seq() == 7
    assert await outbox.feed_after(5, limit=10) == [(6, ids[2]), (7, ids[0])]
    assert await outbox.feed_after(5, limit=1) == [(6, ids[2])]


async def test_failures_count_attempts_and_parked_events_page_and_come_back(ctx: Context) -> None:
    ids = await event_ids(ctx, 3)
    outbox = OutboxReader(ctx.db)
    for event in ids:
        assert await outbox.claim(event, owner="a", now=T0, stale_before=T0)
    retry_at = T0 + timedelta(minutes=2)
    assert await outbox.fail(ids[0], error="timeout", stale_at=lambda n: retry_at) == 1
    assert await outbox.fail(ids[0], error="timeout", stale_at=lambda n: retry_at + timedelta(minutes=n - 2)) == 2
    # The failed claim turns stale only at its retry time, the other two (claimed at T0) before.
    assert sorted(await outbox.stale_claims(stale_before=T0 + timedelta(minutes=2), limit=10)) == ids[1:]
    for event in ids:
        await outbox.park(event, error="gave up", now=T0)
    first = await outbox.parked(after=None, limit=2)
    assert [p.event_id for p in first] == ids[:2] and first[0].attempts == 2 and first[0].last_error == "gave up"
    assert [p.event_id for p in await outbox.parked(after=first[-1].event_id, limit=2)] == ids[2:]
    assert await outbox.finished(ids) == set(ids)
    assert await outbox.unpark(ids[1], stale_at=T0)
    assert not await outbox.unpark(ids[1], stale_at=T0)  # no longer parked
    assert await outbox.finished(ids) == {ids[0], ids[2]}
    assert await outbox.stale_claims(stale_before=T0 + timedelta(seconds=1), limit=10) == [ids[1]]
