"""Sending deliveries: one signed POST per attempt under a lease, in event order per case.

A worker sends a delivery only while holding its lease (a conditional update), records the
outcome and releases it; a subscription's deliveries of one case go out one at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from service.cases import reads as case_reads
from service.common.context import Context
from service.common.errors import NotFoundError
from service.webhooks import signing
from service.webhooks.models import Attempt, AttemptOutcome, Delivery, Subscription
from service.webhooks.payloads import (
    backoff_seconds,
    encode_body,
    event_payload,
    sendable_heads,
    truncate,
    without_staff_ids,
)
from service.webhooks.repository import WebhookDeliveriesRepository, WebhookSubscriptionsRepository
from service.webhooks.subscriptions import allowed_host_patterns, host_allowed, scope_for_area_event, secret_of

log = logging.getLogger("huimin.webhooks")

PENDING_SCAN_LIMIT = 200
MAX_RESPONSE_BYTES = 2048
USER_AGENT = "Huimin-Webhooks/1"


async def post_signed(*, ctx: Context, url: str, body: bytes, headers: dict[str, str]) -> AttemptOutcome:
    """POST one delivery with the configured timeouts; never raises for receiver faults."""
    settings = ctx.settings
    start = time.perf_counter()
    host = urlsplit(url).hostname or ""
    if not host_allowed(host, allowed_host_patterns(settings.webhook_allowed_hosts)):
        return AttemptOutcome(False, None, 0, "host not on the webhook allow-list")
    total = settings.webhook_timeout_seconds
    timeout = httpx.Timeout(total, connect=min(settings.webhook_connect_timeout_seconds, total))
    status: int | None = None
    error: str | None = None
    try:
        async with asyncio.timeout(total):
            async with ctx.http.stream("POST", url, content=body, headers=headers, timeout=timeout) as resp:
                status = resp.status_code
                excerpt = b""
                async for chunk in resp.aiter_bytes():
                    excerpt += chunk
                    if len(excerpt) >= MAX_RESPONSE_BYTES:
                        break
        if not 200 <= status < 300:
            text = excerpt.decode("utf-8", "replace").strip()
            error = truncate(f"HTTP {status}" + (f": {text}" if text else ""))
    except TimeoutError:
        error = f"timed out after {total:g} s"
    except httpx.HTTPError as exc:
        error = truncate(f"{type(exc).__name__}: {exc}".rstrip(": "))
    latency = int((time.perf_counter() - start) * 1000)
    return AttemptOutcome(error is None and status is not None, status, latency, error)


async def _build_payload(ctx: Context, sub: Subscription, d: Delivery) -> dict[str, Any] | None:
    if d.ping is not None:
        return d.ping
    event = (await case_reads.events_by_ids(ctx=ctx, event_ids=[d.event_id])).get(d.event_id)
    if event is None:
        return None
    payload = event_payload(event)
    if ctx.case_views is not None and d.case_id and scope_for_area_event(d.event_type) is None:
        view = await ctx.case_views.case_for_client(ctx, d.case_id, sub.client_id)
        if view is not None:
            payload["case"] = without_staff_ids(view)
    return payload


def _headers(*, secret: str, body: bytes, d: Delivery, attempt: int, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Huimin-Event-Id": d.event_id,
        "Huimin-Event-Type": d.event_type,
        "Huimin-Delivery-Id": d.id,
        "Huimin-Delivery-Attempt": str(attempt),
        signing.SIGNATURE_HEADER: signing.signature_header(secret, timestamp, body),
    }


async def attempt_leased(
    ctx: Context, sub: Subscription, d: Delivery, *, token: str, worker_id: str, retry: bool
) -> Delivery:
    """Send a delivery whose lease this worker holds, record the outcome, release the lease."""
    repo = WebhookDeliveriesRepository(ctx.db)
    attempt_no = d.attempts + 1
    gone = False
    build_error: str | None = None
    try:
        payload = await _build_payload(ctx, sub, d)
    except Exception as exc:
        log.exception("webhook payload for %s failed", d.id)
        payload, build_error = None, truncate(f"payload could not be built: {type(exc).__name__}")
    if payload is None:
        gone = build_error is None
        outcome = AttemptOutcome(False, None, 0, build_error or "the event no longer exists")
    else:
        body = encode_body(payload)
        headers = _headers(
            secret=secret_of(ctx, sub), body=body, d=d, attempt=attempt_no, timestamp=int(ctx.now().timestamp())
        )
        outcome = await post_signed(ctx=ctx, url=sub.url, body=body, headers=headers)
    now = ctx.now()
    changes: dict[str, Any]
    if outcome.delivered:
        changes = {"status": "delivered", "delivered_at": now}
    else:
        s = ctx.settings
        next_at = now + timedelta(
            seconds=backoff_seconds(attempt_no, base=s.webhook_backoff_base_seconds, cap=s.webhook_backoff_cap_seconds)
        )
        window_end = d.window_start + timedelta(hours=s.webhook_retry_hours)
        changes = {"status": "dead"} if gone or not retry or next_at > window_end else {"next_attempt_at": next_at}
    attempt = Attempt(
        at=now, status_code=outcome.status_code, latency_ms=outcome.latency_ms, error=outcome.error, worker_id=worker_id
    )
    if not await repo.record_attempt(d.id, token=token, attempt=attempt, changes=changes):
        log.warning("webhook delivery %s: lease lost before the outcome was recorded", d.id)
    return await repo.get(d.id)


async def _lease_and_send(ctx: Context, sub: Subscription, d: Delivery, *, worker_id: str) -> bool:
    now = ctx.now()
    token = uuid.uuid4().hex
    leased = await WebhookDeliveriesRepository(ctx.db).lease(
        d.id, now=now, until=now + timedelta(seconds=ctx.settings.webhook_lease_seconds), owner=worker_id, token=token
    )
    if leased is None:
        return False
    await attempt_leased(ctx, sub, leased, token=token, worker_id=worker_id, retry=True)
    return True


async def drain_subscription(
    *,
    ctx: Context,
    subscription_id: str,
    worker_id: str,
    limiter: asyncio.Semaphore,
    stopping: asyncio.Event | None = None,
) -> int:
    """Send a subscription's due deliveries, one at a time in event order; returns attempts made.

    Each read and each attempt runs under the background pass deadline, so a store that hangs
    without closing its connections ends the drain with TimeoutError (the next poll starts
    it again) instead of holding the subscription for ever.
    """
    subs = WebhookSubscriptionsRepository(ctx.db)
    repo = WebhookDeliveriesRepository(ctx.db)
    deadline = ctx.loops.pass_deadline
    attempts = 0
    while stopping is None or not stopping.is_set():
        async with asyncio.timeout(deadline):
            try:
                sub = await subs.get(subscription_id)
            except NotFoundError:
                return attempts
            if not sub.active:
                return attempts
            ready = sendable_heads(await repo.pending_for(subscription_id, PENDING_SCAN_LIMIT), ctx.now())
        progressed = False
        for d in ready:
            if stopping is not None and stopping.is_set():
                break
            async with limiter:
                async with asyncio.timeout(deadline):
                    sent = await _lease_and_send(ctx, sub, d, worker_id=worker_id)
                if sent:
                    attempts += 1
                    progressed = True
        if not progressed:
            return attempts
    return attempts
