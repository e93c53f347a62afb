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

This module is the loop; ``fanout.py`` makes the delivery records and ``sending.py`` sends them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable
from typing import Any, TypeVar

from service.common.context import Context
from service.webhooks.fanout import fan_out_events
from service.webhooks.repository import WebhookDeliveriesRepository
from service.webhooks.sending import drain_subscription

log = logging.getLogger("huimin.webhooks")
T = TypeVar("T")


def _being_cancelled() -> bool:
    """True when this task was asked to stop, even if a driver turned the cancellation into another error."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _retrieve(task: asyncio.Task[Any]) -> None:
    if task.cancelled() or (exc := task.exception()) is None:
        return
    if isinstance(exc, TimeoutError):
        log.warning("webhook drain %s cut at its deadline (a store did not answer); it restarts", task.get_name())
        return
    log.warning("webhook work finished with an error", exc_info=exc)


async def _finish_before_cancel(coro: Awaitable[T], *, grace: float) -> T:
    """Await ``coro``; if cancelled meanwhile, let it finish (up to ``grace`` s) before stopping.

    A MongoDB operation interrupted by cancellation can leave the driver waiting on a closed
    connection for ever, so database work is allowed to complete and shutdown stays bounded.
    Work still unfinished after the grace (a hung store) is cancelled, so that passes cut at
    their deadline do not pile up.
    """
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait({task}, timeout=grace)
        task.cancel()
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
                deadline = asyncio.timeout(ctx.loops.pass_deadline)
                async with deadline:
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
                if isinstance(exc, TimeoutError) and deadline.expired():
                    await asyncio.sleep(ctx.loops.cut(LOOP_NAME, ctx.loops.pass_deadline or 0.0))
                else:
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
