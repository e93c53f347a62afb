"""The events loop: each new event of the outbox claimed by exactly one process (``notify_claims``), its
notification records written (:mod:`service.notify.notices`), then published to the staff live feed
and acknowledged. A failing event is retried with back-off and parked after a few tries; a store that
is down stops the pass, and what was not acknowledged is handled again (records are idempotent)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from service.common.context import Context
from service.common.errors import UnavailableError
from service.common.loops import failure_class, pause
from service.notify.models import OutboxEvent
from service.notify.notices import handle_event
from service.notify.outbox import events_after, events_by_ids
from service.notify.repository.outbox import OutboxReader, id_floor
from service.notify.rules import STREAM_TYPES
from service.notify.stream import publish_events
from service.storage.errors import translate_error

log = logging.getLogger("huimin.notify")

CHECKPOINT = "notify"
# Events can commit slightly out of ``_id`` order (several processes, slow transactions):
# each pass re-reads this far behind the high-water mark and skips what is finished.
LOOKBACK_SECONDS = 30
# The very first pass (no checkpoint yet) starts this far back, so switching notifications
# on in a running deployment does not message people about last year's cases.
FIRST_RUN_SECONDS = 3600
# Tries of one event's handling before it is parked (back-off HUIMIN_NOTIFY_RETRY_BASE_SECONDS, doubling).
EVENT_ATTEMPTS = 5
# Events of different cases handled side by side within a batch (one case's events stay in order).
EVENT_CONCURRENCY = 8


def _owner(ctx: Context) -> str:
    return ctx.process.notify_owner


async def _handle_claimed(ctx: Context, reader: OutboxReader, event: OutboxEvent) -> bool:
    """Write one claimed event's notifications; True when that worked (the event is then published and acknowledged).

    A failure of this event alone is recorded for a retry (then parked) and never blocks the
    rest; a store that is down is raised, so the loop backs off.
    """
    try:
        await handle_event(ctx=ctx, event=event)
    except Exception as exc:
        if isinstance(exc, UnavailableError) or translate_error(exc) is not None:
            raise  # the store is down: not the event's fault, the loop backs off and retries it
        await _event_failed(ctx, reader, event, exc)
        return False
    return True


def _order_key(event: OutboxEvent) -> str:
    """Events with the same key are handled one after another, in ``_id`` order."""
    return event.case_id or str(event.data.get("elder_id") or "") or event.id


async def _handle_batch(ctx: Context, reader: OutboxReader, events: list[OutboxEvent]) -> int:
    """Handle a batch of claimed events; returns how many were acknowledged.

    The notifications of different cases are written side by side, one case's events one
    after another in ``_id`` order; then the events handled are published to the live feed
    in ``_id`` order and acknowledged (their claims marked done). A store failure stops the
    batch: what was not acknowledged is handled again (notification records are
    idempotent), and the claims of events not yet started are withdrawn so the next pass
    takes them at once.
    """
    events = sorted(events, key=lambda e: e.id)
    groups: dict[str, list[OutboxEvent]] = {}
    for event in events:
        groups.setdefault(_order_key(event), []).append(event)
    handled: set[str] = set()
    started: set[str] = set()
    gate = asyncio.Semaphore(EVENT_CONCURRENCY)

    async def run(group: list[OutboxEvent]) -> None:
        async with gate:
            for event in group:
                started.add(event.id)
                if await _handle_claimed(ctx, reader, event):
                    handled.add(event.id)

    results = await asyncio.gather(*(run(g) for g in groups.values()), return_exceptions=True)
    failure = next((r for r in results if isinstance(r, BaseException)), None)
    if failure is not None:
        with contextlib.suppress(Exception):
            await reader.withdraw([e.id for e in events if e.id not in started], owner=_owner(ctx))
        raise failure
    done = [e for e in events if e.id in handled]
    await publish_events(ctx=ctx, events=[e for e in done if e.type in STREAM_TYPES])
    await reader.release_many([e.id for e in done], now=ctx.now())
    return len(done)


async def _event_failed(ctx: Context, reader: OutboxReader, event: OutboxEvent, exc: Exception) -> None:
    now = ctx.now()
    error = f"{failure_class(exc)}: {exc}"[:500]
    stale_window = timedelta(seconds=ctx.settings.notify_claim_stale_seconds)
    base = ctx.settings.notify_retry_base_seconds
    attempts = await reader.fail(event.id, error=error, stale_at=lambda n: now - stale_window + _event_backoff(base, n))
    if attempts >= EVENT_ATTEMPTS:
        await reader.park(event.id, error=error, now=now)
        ctx.loops.parked("notify-events")
        log.error(
            "notification event parked after %d attempts",
            attempts,
            extra={"event_id": event.id, "event_type": event.type, "error": error},
        )
        return
    log.warning(
        "notification event failed; retrying",
        extra={"event_id": event.id, "event_type": event.type, "attempt": attempts, "error": error},
    )


def _event_backoff(base: float, attempts: int) -> timedelta:
    return timedelta(seconds=min(300.0, base * 2 ** (attempts - 1)))


async def process_events(*, ctx: Context) -> int:
    """One pass over new events: claim, write notifications, publish to the live feed."""
    reader = OutboxReader(ctx.db)
    settings = ctx.settings
    owner = _owner(ctx)
    checkpoint = await reader.checkpoint(CHECKPOINT)
    if checkpoint:
        after = id_floor(checkpoint, LOOKBACK_SECONDS)
    else:
        after = f"{max(0, int(ctx.now().timestamp()) - FIRST_RUN_SECONDS):08x}" + "0" * 16
    highest = checkpoint
    handled = 0
    while True:
        page = await events_after(ctx=ctx, after_id=after, limit=settings.notify_batch_size)
        if not page:
            break
        done = await reader.finished([e.id for e in page])
        todo = [e for e in page if e.id not in done]
        if todo:
            now = ctx.now()
            stale = now - timedelta(seconds=settings.notify_claim_stale_seconds)
            mine = await reader.claim_many([e.id for e in todo], owner=owner, now=now, stale_before=stale)
            handled += await _handle_batch(ctx, reader, [e for e in todo if e.id in mine])
        after = page[-1].id
        highest = max(highest, after)
        if len(page) < settings.notify_batch_size:
            break
    if highest != checkpoint:
        await reader.advance(CHECKPOINT, highest)
    # Events whose handler died half-way (older than the look-back window).
    now = ctx.now()
    stale_before = now - timedelta(seconds=settings.notify_claim_stale_seconds)
    stale_ids = await reader.stale_claims(stale_before=stale_before, limit=settings.notify_batch_size)
    if stale_ids:
        events = await events_by_ids(ctx=ctx, event_ids=stale_ids)
        mine = set()
        for eid in stale_ids:
            if eid in events and await reader.claim(eid, owner=owner, now=now, stale_before=stale_before):
                mine.add(eid)
        handled += await _handle_batch(ctx, reader, [events[eid] for eid in stale_ids if eid in mine])
    return handled


async def events_loop(ctx: Context) -> None:
    """Background loop: turn new events into notifications and live-feed messages."""
    while True:
        async with ctx.loops.guard("notify-events"):
            await process_events(ctx=ctx)
        await pause(ctx.settings.notify_poll_seconds)
