"""Delivering case events to webhook subscriptions: fan-out, leases, retries, dead letters.

Guarantees (see docs/webhooks.md):
- at least once: an event committed to ``events`` gets a delivery record for each matching
  subscription (unique per subscription and event, so re-scanning is harmless), and a
  delivery stays pending until a 2xx answer or the end of its retry window;
- no concurrent duplicates: a worker sends a delivery only while holding its lease, taken
  with a conditional update; a crashed worker's lease simply expires;
- order per case: a subscription's deliveries of one case go out one at a time in event
  order; the next waits until the previous one is delivered or dead;
- isolation: each subscription is drained by its own task, HTTP attempts are bounded by a
  semaphore and a total timeout, so a hanging receiver delays nobody else.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from service.cases import reads as case_reads
from service.cases.models import CaseEvent
from service.common.context import Context
from service.common.errors import NotFoundError
from service.identity import directory
from service.webhooks import signing
from service.webhooks.models import Attempt, AttemptOutcome, Delivery, Subscription
from service.webhooks.payloads import (
    backoff_seconds,
    encode_body,
    event_payload,
    sendable_heads,
    truncate,
    without_staff_ids,
    written_at,
)
from service.webhooks.repository import (
    EPOCH,
    WebhookDeliveriesRepository,
    WebhookStateRepository,
    WebhookSubscriptionsRepository,
)
from service.webhooks.subscriptions import (
    READ_SCOPE,
    allowed_host_patterns,
    host_allowed,
    secret_of,
)

log = logging.getLogger("huimin.webhooks")
T = TypeVar("T")

FANOUT_BATCH = 500
FANOUT_MAX_EVENTS_PER_PASS = 5000
PENDING_SCAN_LIMIT = 200
MAX_RESPONSE_BYTES = 2048
USER_AGENT = "Huimin-Webhooks/1"


# ---------------------------------------------------------------- pure decisions


# ---------------------------------------------------------------- fan-out


async def _client_scopes(
    ctx: Context, sub: Subscription, cache: dict[str, frozenset[str] | None]
) -> frozenset[str] | None:
    """The client's scopes now (None: disabled), so a disabled client or a lost scope stops deliveries."""
    if sub.client_id not in cache:
        if ctx.client_scopes is not None:
            cache[sub.client_id] = await ctx.client_scopes.scopes_of(ctx, sub.client_id)
        else:
            client = await directory.client_or_none(ctx=ctx, client_id=sub.client_id)
            # Without a client record, trust the scopes its token had when it last changed the subscription.
            if client is None:
                cache[sub.client_id] = sub.scopes
            else:
                cache[sub.client_id] = frozenset(client.scopes) if client.active else None
    return cache[sub.client_id]


async def fan_out_events(*, ctx: Context) -> int:
    """Create a delivery for every new event and matching subscription; returns how many."""
    subs = await WebhookSubscriptionsRepository(ctx.db).list_active()
    if not subs:
        return 0
    by_client: dict[str, list[Subscription]] = {}
    for sub in subs:
        by_client.setdefault(sub.client_id, []).append(sub)
    state = WebhookStateRepository(ctx.db)
    deliveries = WebhookDeliveriesRepository(ctx.db)
    checkpoint = await state.checkpoint()
    earliest = min(s.created_at for s in subs)
    overlap = timedelta(seconds=ctx.settings.webhook_fanout_overlap_seconds)
    # Re-reading a short overlap catches events whose transaction committed after a later
    # event was already seen; the unique index makes the re-scan harmless.
    since = earliest if checkpoint is None else max(checkpoint - overlap, earliest)
    scopes_cache: dict[str, frozenset[str] | None] = {}
    created = 0
    seen = 0
    after: tuple[datetime, str] | None = None
    while seen < FANOUT_MAX_EVENTS_PER_PASS:
        events = await case_reads.events_created_since(ctx=ctx, since=since, after=after, limit=FANOUT_BATCH)
        if not events:
            break
        creators = await case_reads.case_creators(ctx=ctx, case_ids=(e.case_id for e in events))
        pairs: list[tuple[Subscription, CaseEvent]] = []
        for event in events:
            owner = creators.get(event.case_id)
            if not owner or owner.get("role") != "client":
                continue
            for sub in by_client.get(str(owner.get("subject")), ()):
                if not sub.wants(event.type) or not sub.was_active_at(written_at(event)):
                    continue
                scopes = await _client_scopes(ctx, sub, scopes_cache)
                if scopes is not None and READ_SCOPE in scopes:
                    pairs.append((sub, event))
        existing = await deliveries.existing_pairs(e.id for e in events)
        now = ctx.now()
        docs: list[dict[str, Any]] = [
            {
                "_id": "dlv_" + uuid.uuid4().hex,
                "subscription_id": sub.id,
                "client_id": sub.client_id,
                "event_id": event.id,
                "event_type": event.type,
                "case_id": event.case_id,
                "seq": event.seq,
                "event_created_at": written_at(event),
                "status": "pending",
                "attempts": 0,
                "attempt_log": [],
                "next_attempt_at": now,
                "lease_until": EPOCH,
                "lease_owner": None,
                "lease_token": None,
                "window_start": now,
                "created_at": now,
                "updated_at": now,
            }
            for sub, event in pairs
            if (sub.id, event.id) not in existing
        ]
        created += await deliveries.insert_many_new(docs)
        seen += len(events)
        after = (written_at(events[-1]), events[-1].id)
        if len(events) < FANOUT_BATCH:
            break
    if after is not None:
        await state.advance(after[0])
    return created


# ---------------------------------------------------------------- sending


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
    if ctx.case_views is not None and d.case_id:
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
    """Send a subscription's due deliveries, one at a time in event order; returns attempts made."""
    subs = WebhookSubscriptionsRepository(ctx.db)
    repo = WebhookDeliveriesRepository(ctx.db)
    attempts = 0
    while stopping is None or not stopping.is_set():
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
                if await _lease_and_send(ctx, sub, d, worker_id=worker_id):
                    attempts += 1
                    progressed = True
        if not progressed:
            return attempts
    return attempts


def _being_cancelled() -> bool:
    """True when this task was asked to stop, even if a driver turned the cancellation into another error."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("webhook work finished with an error after shutdown", exc_info=task.exception())


async def _finish_before_cancel(coro: Awaitable[T], *, grace: float) -> T:
    """Await ``coro``; if cancelled meanwhile, let it finish (up to ``grace`` s) before stopping.

    A MongoDB operation interrupted by cancellation can leave the driver waiting on a closed
    connection for ever, so database work is allowed to complete and shutdown stays bounded.
    """
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait({task}, timeout=grace)
        task.add_done_callback(_retrieve)
        raise


async def _one_pass(ctx: Context) -> list[str]:
    await fan_out_events(ctx=ctx)
    return await WebhookDeliveriesRepository(ctx.db).subscriptions_with_due_work(ctx.now())


def new_worker_id() -> str:
    """A name for this delivery worker (host, process, random part), stored on its leases."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def deliver_once(*, ctx: Context, worker_id: str) -> int:
    """One full pass: fan out new events, then send everything due; returns attempts made."""
    limiter = asyncio.Semaphore(ctx.settings.webhook_concurrency)
    due = await _one_pass(ctx)
    counts = await asyncio.gather(
        *(drain_subscription(ctx=ctx, subscription_id=s, worker_id=worker_id, limiter=limiter) for s in due)
    )
    return sum(counts)


LOOP_NAME = "webhook-delivery"


async def run_delivery_loop(ctx: Context) -> None:
    """The background loop: fan out and start a drain task per subscription with due work.

    Drain tasks outlive one poll, so a subscription stuck on a slow receiver never holds up
    the others; at most one task per subscription runs in this process. On cancellation the
    loop stops taking work and gives attempts in flight until their timeout to finish.
    """
    worker_id = new_worker_id()
    settings = ctx.settings
    limiter = asyncio.Semaphore(settings.webhook_concurrency)
    stopping = asyncio.Event()
    running: dict[str, asyncio.Task[int]] = {}
    grace = settings.store_timeout_seconds * 2
    try:
        while True:
            try:
                due = await _finish_before_cancel(_one_pass(ctx), grace=grace)
                for sub_id in due:
                    task = running.get(sub_id)
                    if task is None or task.done():
                        running[sub_id] = asyncio.create_task(
                            drain_subscription(
                                ctx=ctx, subscription_id=sub_id, worker_id=worker_id, limiter=limiter, stopping=stopping
                            ),
                            name=f"webhook-drain-{sub_id}",
                        )
                ctx.loops.succeeded(LOOP_NAME)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - counted and logged by the loop health
                if _being_cancelled():
                    raise asyncio.CancelledError from None
                await asyncio.sleep(ctx.loops.failed(LOOP_NAME, exc))
            for sub_id, task in list(running.items()):
                if task.done():
                    del running[sub_id]
                    _retrieve(task)
            await asyncio.sleep(settings.webhook_poll_seconds)
    finally:
        stopping.set()
        tasks = list(running.values())
        if tasks:
            # Attempts in flight end by their own timeout; an unfinished one keeps its lease,
            # which expires, and another worker sends it again.
            _, late = await asyncio.wait(tasks, timeout=settings.webhook_timeout_seconds + grace)
            for task in late:
                task.cancel()
            for task in tasks:
                task.add_done_callback(_retrieve)


# ---------------------------------------------------------------- API operations
