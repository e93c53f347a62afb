"""Readiness of the backing stores."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from service.common.context import Context

PING_TIMEOUT = 1.5


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # a late failure of an abandoned ping is expected; mark it seen


async def _ping(coro: Awaitable[Any]) -> bool:
    """True when the ping answers within PING_TIMEOUT.

    The answer never waits longer: a driver call that is slow to honour its cancellation
    (a connection to a server that just went away) is left to end by itself, not awaited.
    """
    task = asyncio.ensure_future(coro)
    try:
        done, _ = await asyncio.wait({task}, timeout=PING_TIMEOUT)
    except asyncio.CancelledError:  # the request's deadline, or shutdown: the ping goes with it
        task.cancel()
        task.add_done_callback(_retrieve)
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_retrieve)
        return False
    return not task.cancelled() and task.exception() is None


async def check_stores(*, ctx: Context) -> dict[str, bool]:
    """Ping MongoDB and Redis concurrently; {name: reachable}."""
    mongo, redis = await asyncio.gather(_ping(ctx.db.command("ping")), _ping(ctx.redis.ping()))
    return {"mongodb": mongo, "redis": redis}
