"""Webhook subscriptions: found or not found by id, paged oldest first per client, pauses kept short."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.common.context import Context
from service.common.errors import NotFoundError
from service.webhooks.repository import MAX_PAUSES, WebhookSubscriptionsRepository
from tests.factories import make_client, make_webhook

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
HOOKS = ("cases:read", "webhooks:manage")


async def test_subscriptions_page_oldest_first_per_client(ctx: Context) -> None:
    one, two = await make_client(ctx, scopes=HOOKS), await make_client(ctx, scopes=HOOKS)
    mine = [(await make_webhook(ctx, one)).subscription.id for _ in range(3)]
    theirs = (await make_webhook(ctx, two)).subscription.id
    repo = WebhookSubscriptionsRepository(ctx.db)
    first, cursor = await repo.list_page(client_id=one.client.client_id, cursor=None, limit=2)
    rest, end = await repo.list_page(client_id=one.client.client_id, cursor=cursor, limit=2)
    assert [s.id for s in first + rest] == sorted(mine) and cursor and end is None
    everyone, _ = await repo.list_page(client_id=None, cursor=None, limit=10)
    assert [s.id for s in everyone] == sorted([*mine, theirs])
    assert await repo.count_for_client(one.client.client_id) == 3
    assert {s.id for s in await repo.list_active()} == {*mine, theirs}


async def test_missing_subscriptions_are_not_found_and_pauses_keep_the_newest(ctx: Context) -> None:
    ctx.clock = lambda: T0  # whole milliseconds, as the store keeps them
    client = await make_client(ctx, scopes=HOOKS)
    sub = (await make_webhook(ctx, client)).subscription
    repo = WebhookSubscriptionsRepository(ctx.db)
    assert await repo.get(sub.id) == sub
    for n in range(MAX_PAUSES + 2):
        start = T0 + timedelta(hours=n)
        await repo.update(sub.id, {"active": True}, pause=(start, start + timedelta(minutes=5)))
    paused = await repo.update(sub.id, {"active": False})
    assert not paused.active and sub.id not in {s.id for s in await repo.list_active()}
    doc = await repo.col.find_one({"_id": sub.id})
    assert doc is not None and [p["from"] for p in doc["pauses"]] == [
        T0 + timedelta(hours=n) for n in range(2, MAX_PAUSES + 2)
    ]
    await repo.delete(sub.id)
    for call in (repo.get(sub.id), repo.update(sub.id, {"active": True}), repo.delete(sub.id)):
        with pytest.raises(NotFoundError) as exc:
            await call
        assert exc.value.code == "webhook_not_found"
