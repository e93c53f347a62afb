"""Webhook deliveries: one per subscription and event (even from two fan-outs at once), pending ones
in event order, a lease taken once and an attempt counted only under it, a redelivery's fresh
window, the delivery log newest first with pages that continue where they stopped, and the
fan-out checkpoint that only moves forward.

Deliveries are made by the fan-out from the events of cases an integrator filed and a worker
acted on; the repository is then read and driven directly.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from service.common.context import Context
from service.common.errors import NotFoundError
from service.common.models import utcnow
from service.identity.accounts import IssuedClient, StaffMember
from service.webhooks.fanout import fan_out_events
from service.webhooks.models import Attempt, Delivery, Subscription
from service.webhooks.repository import ATTEMPT_LOG_KEEP, EPOCH, WebhookDeliveriesRepository, WebhookStateRepository
from tests.factories import act_on, events_of, make_case, make_client, make_staff, make_station, make_webhook

HOOKS = ("cases:read", "cases:write", "webhooks:manage")
SECOND = timedelta(seconds=1)


class Integrator:
    """A client with a webhook for every event, a station's worker acting on its cases."""

    client: IssuedClient
    subscription: Subscription
    worker: StaffMember

    async def file(self, ctx: Context, *actions: str) -> dict[str, Any]:
        """A case the client files, then the worker's ``actions`` on it (each writes one event)."""
        case = await make_case(ctx, self.client)
        for action in actions:
            case = await act_on(ctx, self.worker, case["id"], action)
        return case


async def integrator(ctx: Context) -> Integrator:
    it = Integrator()
    station = await make_station(ctx)
    it.worker = await make_staff(ctx, station_id=station.id)
    it.client = await make_client(ctx, scopes=HOOKS)
    it.subscription = (await make_webhook(ctx, it.client)).subscription
    return it


def after_now() -> datetime:
    """A whole second later than every time written so far (the store keeps milliseconds)."""
    return (utcnow() + SECOND).replace(microsecond=0)


def token() -> str:
    return uuid.uuid4().hex


def attempt(at: datetime, status_code: int | None = 500, n: int = 0) -> Attempt:
    return Attempt(at=at, status_code=status_code, latency_ms=12 + n, error=f"HTTP {status_code} #{n}", worker_id="w1")


async def test_fan_outs_at_the_same_moment_store_one_delivery_per_subscription_and_event(ctx: Context) -> None:
    it = await integrator(ctx)
    await it.file(ctx, "accept", "start")
    made = await asyncio.gather(fan_out_events(ctx=ctx), fan_out_events(ctx=ctx), fan_out_events(ctx=ctx))
    repo = WebhookDeliveriesRepository(ctx.db)
    assert sum(made) == 3 == await repo.col.count_documents({})
    assert await fan_out_events(ctx=ctx) == 0
    pending = await repo.pending_for(it.subscription.id, 10)
    assert len({d.event_id for d in pending}) == 3
    assert await repo.existing_pairs([d.event_id for d in pending]) == {
        (it.subscription.id, d.event_id) for d in pending
    }
    assert await repo.existing_pairs([]) == set()


async def test_pending_deliveries_come_in_event_order_and_read_back_alike(ctx: Context) -> None:
    it = await integrator(ctx)
    case = await it.file(ctx, "accept", "start")
    await fan_out_events(ctx=ctx)
    repo = WebhookDeliveriesRepository(ctx.db)
    pending = await repo.pending_for(it.subscription.id, 10)
    assert [d.event_type for d in pending] == ["case.created", "case.accepted", "case.started"]
    assert [d.event_id for d in pending] == [h["event_id"] for h in case["history"]]
    assert [d.id for d in await repo.pending_for(it.subscription.id, 2)] == [d.id for d in pending[:2]]
    for d in pending:
        assert await repo.get(d.id) == d == await repo.get(d.id, subscription_id=it.subscription.id)
        assert (d.status, d.attempts, d.lease_until, d.lease_token) == ("pending", 0, EPOCH, None)
        assert d.client_id == it.client.client.client_id and d.created_at.utcoffset() == timedelta(0)
    other = await make_webhook(ctx, it.client)
    for call in (repo.get(pending[0].id, subscription_id=other.subscription.id), repo.get(it.subscription.id)):
        with pytest.raises(NotFoundError) as exc:
            await call
        assert exc.value.code == "delivery_not_found"


async def test_a_lease_is_taken_once_and_an_attempt_counts_only_under_it(ctx: Context) -> None:
    it = await integrator(ctx)
    await it.file(ctx, "accept")
    await fan_out_events(ctx=ctx)
    repo = WebhookDeliveriesRepository(ctx.db)
    first, second = await repo.pending_for(it.subscription.id, 10)
    now = after_now()
    until = now + 30 * SECOND
    tokens = [token() for _ in range(5)]
    leased = await asyncio.gather(
        *(repo.lease(first.id, now=now, until=until, owner=f"w{n}", token=t) for n, t in enumerate(tokens))
    )
    [won] = [d for d in leased if d is not None]
    assert won.lease_until == until and won.lease_token in tokens
    assert await repo.subscriptions_with_due_work(now) == [it.subscription.id]  # the second is still due
    assert await repo.lease(second.id, now=now, until=until, owner="w1", token=token()) is not None
    assert await repo.subscriptions_with_due_work(now) == []  # everything due is leased
    assert await repo.subscriptions_with_due_work(until) == [it.subscription.id]  # the leases ran out
    assert await repo.lease(first.id, now=now - 60 * SECOND, until=until, owner="w9", token=token()) is None

    assert not await repo.record_attempt(first.id, token=token(), attempt=attempt(now), changes={})
    retry_at = now + 10 * SECOND
    assert await repo.record_attempt(
        first.id, token=won.lease_token or "", attempt=attempt(now), changes={"next_attempt_at": retry_at}
    )
    after = await repo.get(first.id)
    assert (after.attempts, after.next_attempt_at, after.last_status_code, after.last_error) == (
        1,
        retry_at,
        500,
        "HTTP 500 #0",
    )
    assert (after.lease_until, after.lease_owner, after.lease_token) == (EPOCH, None, None)
    assert after.attempt_log == (attempt(now),)
    assert await repo.lease(first.id, now=now, until=until, owner="w1", token=token()) is None  # not due yet


async def test_a_lost_lease_cannot_record_and_the_attempt_log_keeps_the_newest(ctx: Context) -> None:
    it = await integrator(ctx)
    await it.file(ctx)
    await fan_out_events(ctx=ctx)
    repo = WebhookDeliveriesRepository(ctx.db)
    [d] = await repo.pending_for(it.subscription.id, 10)
    now = after_now()
    slow, fast = token(), token()
    assert await repo.lease(d.id, now=now, until=now + SECOND, owner="slow", token=slow)
    assert await repo.lease(d.id, now=now + 2 * SECOND, until=now + 60 * SECOND, owner="fast", token=fast)
    assert not await repo.record_attempt(d.id, token=slow, attempt=attempt(now), changes={"status": "dead"})
    assert await repo.record_attempt(d.id, token=fast, attempt=attempt(now, 503), changes={})
    assert (await repo.get(d.id)).status == "pending"
    for n in range(1, ATTEMPT_LOG_KEEP + 2):
        t = token()
        at = now + n * SECOND
        assert await repo.lease(d.id, now=at, until=at + SECOND, owner="w1", token=t)
        assert await repo.record_attempt(d.id, token=t, attempt=attempt(at, 500, n), changes={"next_attempt_at": at})
    after = await repo.get(d.id)
    assert after.attempts == ATTEMPT_LOG_KEEP + 2
    assert [a.error for a in after.attempt_log] == [f"HTTP 500 #{n}" for n in range(2, ATTEMPT_LOG_KEEP + 2)]


async def test_a_redelivery_makes_a_dead_delivery_pending_with_a_fresh_window(ctx: Context) -> None:
    it = await integrator(ctx)
    await it.file(ctx, "accept")
    await fan_out_events(ctx=ctx)
    repo = WebhookDeliveriesRepository(ctx.db)
    dead, delivered = await repo.pending_for(it.subscription.id, 10)
    now = after_now()
    for d, changes in ((dead, {"status": "dead"}), (delivered, {"status": "delivered", "delivered_at": now})):
        t = token()
        assert await repo.lease(d.id, now=now, until=now + SECOND, owner="w1", token=t)
        assert await repo.record_attempt(d.id, token=t, attempt=attempt(now, 410), changes=changes)
    assert await repo.lease(dead.id, now=now, until=now + SECOND, owner="w1", token=token()) is None
    assert await repo.subscriptions_with_due_work(now + SECOND) == []
    log, _ = await repo.list_page(
        subscription_id=it.subscription.id, status="delivered", cursor=None, limit=10, now=ctx.now()
    )
    assert [d.id for d in log] == [delivered.id] and log[0].delivered_at == now
    later = now + 60 * SECOND
    again = await repo.requeue(dead.id, subscription_id=it.subscription.id, now=later)
    assert (again.status, again.next_attempt_at, again.window_start, again.attempts) == ("pending", later, later, 1)
    assert (again.lease_until, again.lease_token) == (EPOCH, None)
    assert await repo.subscriptions_with_due_work(later) == [it.subscription.id]
    other = await make_webhook(ctx, it.client)
    with pytest.raises(NotFoundError) as exc:
        await repo.requeue(dead.id, subscription_id=other.subscription.id, now=later)
    assert exc.value.code == "delivery_not_found"
    assert await repo.delete_for_subscription(it.subscription.id) == 2
    with pytest.raises(NotFoundError):
        await repo.get(dead.id)


async def test_the_delivery_log_is_newest_first_and_a_cursor_continues_where_it_stopped(ctx: Context) -> None:
    it = await integrator(ctx)
    await it.file(ctx, "accept", "start")
    await fan_out_events(ctx=ctx)  # three deliveries made at one moment
    await it.file(ctx, "accept")
    await fan_out_events(ctx=ctx)  # two more, later
    repo = WebhookDeliveriesRepository(ctx.db)
    whole, end = await repo.list_page(
        subscription_id=it.subscription.id, status=None, cursor=None, limit=10, now=ctx.now()
    )
    assert len(whole) == 5 and end is None
    assert [(d.created_at, d.id) for d in whole] == sorted(((d.created_at, d.id) for d in whole), reverse=True)
    assert len({d.created_at for d in whole}) == 2
    pages: list[list[Delivery]] = []
    cursor: str | None = None
    while True:
        page, cursor = await repo.list_page(
            subscription_id=it.subscription.id, status=None, cursor=cursor, limit=2, now=ctx.now()
        )
        pages.append(page)
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]  # only the last page is short
    assert [d.id for p in pages for d in p] == [d.id for d in whole]
    other = await make_webhook(ctx, it.client)
    assert await repo.list_page(
        subscription_id=other.subscription.id, status=None, cursor=None, limit=10, now=ctx.now()
    ) == ([], None)
    pending, _ = await repo.list_page(
        subscription_id=it.subscription.id, status="pending", cursor=None, limit=10, now=ctx.now()
    )
    assert len(pending) == 5


async def test_the_fan_out_checkpoint_only_moves_forward_even_when_set_at_once(ctx: Context) -> None:
    state = WebhookStateRepository(ctx.db)
    assert await state.checkpoint() is None
    it = await integrator(ctx)
    case = await it.file(ctx, "accept")
    await fan_out_events(ctx=ctx)
    last = (await events_of(ctx, case["id"]))[-1].created_at
    assert last is not None and await state.checkpoint() == last
    await asyncio.gather(*(state.advance(last - n * SECOND) for n in range(1, 4)))  # older sweeps finishing late
    assert await state.checkpoint() == last
    later = after_now()
    await asyncio.gather(*(state.advance(later + n * SECOND) for n in (2, 0, 3, 1)))
    assert await state.checkpoint() == later + 3 * SECOND
    assert await state.col.count_documents({}) == 1


async def test_the_first_checkpoints_written_at_once_make_one_document_holding_the_latest(ctx: Context) -> None:
    state = WebhookStateRepository(ctx.db)
    at = after_now()
    await asyncio.gather(*(state.advance(at + n * SECOND) for n in (1, 4, 2, 3, 0)))
    assert await state.checkpoint() == at + 4 * SECOND
    assert await state.col.count_documents({}) == 1
