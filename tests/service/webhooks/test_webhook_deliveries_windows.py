"""A subscription's delivery log, read newest first in windows of creation time, page for page holds
the deliveries made over years, newest first (pings to a local receiver make them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from service.common.context import Context
from service.webhooks import operations
from service.webhooks import subscriptions as webhooks
from service.webhooks.repository import WebhookDeliveriesRepository
from service.webhooks.subscriptions import SubscriptionData
from tests.factories import make_client, principal_of_client
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers_paging import LIMITS, in_pages, made_over_time, read_pages

HOOKS = ("cases:read", "webhooks:manage")


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = await WebhookReceiver().start()
    yield r
    await r.close()


async def test_a_delivery_log_pages_newest_first_across_windows(ctx: Context, receiver: WebhookReceiver) -> None:
    issued = await make_client(ctx, scopes=HOOKS)
    owner = principal_of_client(issued)
    data = SubscriptionData(url=receiver.url("a"), event_types=["*"])
    sub = (await webhooks.create_subscription(ctx=ctx, principal=owner, data=data)).subscription

    async def ping(i: int) -> str:
        return (await operations.ping_subscription(ctx=ctx, principal=owner, subscription_id=sub.id)).id

    made = await made_over_time(ctx, ping)
    repo = WebhookDeliveriesRepository(ctx.db)
    stored = [await repo.get(d, subscription_id=sub.id) for d in made]
    ids = [d.id for d in sorted(stored, key=lambda d: (d.created_at, d.id), reverse=True)]
    assert len(receiver.received("a")) == len(made)
    for status in (None, "delivered"):  # with a status: one query (no index holds the status before the time)
        for limit in LIMITS:

            async def read(cursor: str | None, status: Any = status, limit: int = limit) -> Any:
                items, next_cursor = await repo.list_page(
                    subscription_id=sub.id, status=status, cursor=cursor, limit=limit, now=ctx.now()
                )
                return [d.id for d in items], next_cursor

            assert await read_pages(read) == in_pages(ids, limit), (status, limit)
