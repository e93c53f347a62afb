"""Webhook subscriptions: found or not found by id, paged newest first per client, pauses kept short."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.common.context import Context
from service.common.errors import NotFoundError
from service.webhooks.models import Subscription
from service.webhooks.repository import MAX_PAUSES, WebhookSubscriptionsRepository
from tests.factories import make_client, make_webhook
from tests.helpers_paging import LIMITS, in_pages, made_over_time, read_pages

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
HOOKS = ("cases:read", "webhooks:manage")


def newest_first(subs: list[Subscription]) -> list[str]:
    """Subscription ids newest first: by creation time, then id (ids are random)."""
    return [s.id for s in sorted(subs, key=lambda s: (s.created_at, s.id), reverse=True)]


async def test_subscriptions_page_newest_first_per_client(ctx: Context) -> None:
    one, two = await make_client(ctx, scopes=HOOKS), await make_client(ctx, scopes=HOOKS)
    repo = WebhookSubscriptionsRepository(ctx.db)
    mine = [await repo.get((await make_webhook(ctx, one)).subscription.id) for _ in range(3)]
    theirs = await repo.get((await make_webhook(ctx, two)).subscription.id)
    first, cursor = await repo.list_page(client_id=one.client.client_id, cursor=None, limit=2, now=ctx.now())
    rest, end = await repo.list_page(client_id=one.client.client_id, cursor=cursor, limit=2, now=ctx.now())
    assert [s.id for s in first + rest] == newest_first(mine) and cursor and end is None
    everyone, _ = await repo.list_page(client_id=None, cursor=None, limit=10, now=ctx.now())
    assert [s.id for s in everyone] == newest_first([*mine, theirs])
    assert await repo.count_for_client(one.client.client_id) == 3
    assert {s.id for s in await repo.list_active()} == {*(s.id for s in mine), theirs.id}


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


async def test_subscriptions_page_newest_first_across_windows(ctx: Context) -> None:
    one, two = await make_client(ctx, scopes=HOOKS), await make_client(ctx, scopes=HOOKS)
    repo = WebhookSubscriptionsRepository(ctx.db)

    async def make(i: int) -> Subscription:
        return await repo.get((await make_webhook(ctx, one if i % 3 else two)).subscription.id)

    made = await made_over_time(ctx, make)
    for client_id in (one.client.client_id, None):
        ids = newest_first([s for s in made if client_id is None or s.client_id == client_id])
        for limit in LIMITS:

            async def read(cursor: str | None, client_id: Any = client_id, limit: int = limit) -> Any:
                items, next_cursor = await repo.list_page(
                    client_id=client_id, cursor=cursor, limit=limit, now=ctx.now()
                )
                return [s.id for s in items], next_cursor

            assert await read_pages(read) == in_pages(ids, limit), (client_id, limit)
