"""Webhook operations an integrator calls: ping a subscription, list its deliveries, redeliver one."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from service.common.context import Context
from service.common.errors import ValidationFailedError
from service.common.models import Page, Principal
from service.common.timestamps import rfc3339
from service.webhooks.models import DELIVERY_STATUSES, PING_EVENT_TYPE, Delivery
from service.webhooks.repository import (
    WebhookDeliveriesRepository,
)
from service.webhooks.sending import attempt_leased
from service.webhooks.subscriptions import (
    visible_subscription,
)

log = logging.getLogger("huimin.webhooks")


async def ping_subscription(*, ctx: Context, principal: Principal, subscription_id: str) -> Delivery:
    """Send a ``webhook.ping`` now and return its delivery record (pings are not retried)."""
    sub = await visible_subscription(ctx, principal, subscription_id, write=True)
    now = ctx.now()
    event_id = "ping_" + uuid.uuid4().hex
    token = uuid.uuid4().hex
    ping = {
        "id": event_id,
        "type": PING_EVENT_TYPE,
        "time": rfc3339(now),
        "case_id": None,
        "case_number": None,
        "data": {"subscription_id": sub.id},
    }
    d = await WebhookDeliveriesRepository(ctx.db).insert(
        {
            "_id": "dlv_" + uuid.uuid4().hex,
            "subscription_id": sub.id,
            "client_id": sub.client_id,
            "event_id": event_id,
            "event_type": PING_EVENT_TYPE,
            "case_id": None,
            "seq": 0,
            "event_created_at": now,
            "status": "pending",
            "attempts": 0,
            "attempt_log": [],
            "next_attempt_at": now,
            # Held from the start, so the background loop leaves it alone while we send it.
            "lease_until": now + timedelta(seconds=ctx.settings.webhook_lease_seconds),
            "lease_owner": "ping",
            "lease_token": token,
            "window_start": now,
            "created_at": now,
            "updated_at": now,
            "ping": ping,
        }
    )
    return await attempt_leased(ctx, sub, d, token=token, worker_id="ping", retry=False)


async def list_deliveries(
    *,
    ctx: Context,
    principal: Principal,
    subscription_id: str,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Page[Delivery]:
    """A subscription's delivery log, newest first."""
    await visible_subscription(ctx, principal, subscription_id, write=False)
    if status is not None and status not in DELIVERY_STATUSES:
        raise ValidationFailedError(
            "invalid_status", "Unknown delivery status.", errors={"status": [f"One of {', '.join(DELIVERY_STATUSES)}."]}
        )
    items, next_cursor = await WebhookDeliveriesRepository(ctx.db).list_page(
        subscription_id=subscription_id, status=status, cursor=cursor, limit=limit, now=ctx.now()
    )
    return Page(items, next_cursor)


async def redeliver(*, ctx: Context, principal: Principal, subscription_id: str, delivery_id: str) -> Delivery:
    """Queue a delivery again now, even a delivered or dead one (with a fresh retry window)."""
    await visible_subscription(ctx, principal, subscription_id, write=True)
    return await WebhookDeliveriesRepository(ctx.db).requeue(
        delivery_id, subscription_id=subscription_id, now=ctx.now()
    )
