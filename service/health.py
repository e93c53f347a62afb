"""Readiness of the backing stores."""

from __future__ import annotations

import asyncio

from service.context import Context

PING_TIMEOUT = 1.5


async def _ping(coro: object) -> bool:
    try:
        await asyncio.wait_for(coro, PING_TIMEOUT)  # type: ignore[arg-type]
        return True
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False


async def check_stores(*, ctx: Context) -> dict[str, bool]:
    """Ping MongoDB and Redis concurrently; {name: reachable}."""
    mongo, redis = await asyncio.gather(_ping(ctx.db.command("ping")), _ping(ctx.redis.ping()))
    return {"mongodb": mongo, "redis": redis}
