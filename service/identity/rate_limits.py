"""Per-client request rate limits: a sliding one-minute window in Redis.

The limit is the client's ``rate_limit_per_minute``. Reading it from MongoDB on every
request would double the cost of a small call, so each process keeps it for a few seconds
(``LIMIT_CACHE_SECONDS``): an administrator's change takes effect within that time. Rate
limits are a fairness tool, not a security boundary, so when Redis cannot be reached the
request is allowed and a warning is logged: availability wins.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

from service.common.context import Context
from service.common.errors import NotFoundError, RateLimitedError
from service.identity.repository.clients import ApiClientsRepository
from service.identity.repository.rate_limits import SlidingWindowLog, WindowResult
from service.storage.errors import is_redis_down

log = logging.getLogger("huimin.rate_limits")

WINDOW_SECONDS = 60
LIMIT_CACHE_SECONDS = 5.0
DEFAULT_LIMIT_PER_MINUTE = 600  # for a token whose client record is gone


@dataclasses.dataclass(slots=True)
class CachedLimit:
    """A client's limit as read from MongoDB, kept until ``expires`` (monotonic seconds)."""

    limit: int
    expires: float


async def client_limit(*, ctx: Context, client_id: str) -> int:
    """The client's requests-per-minute limit, cached in this process for a few seconds."""
    cache = ctx.process.client_limits
    now = time.monotonic()
    hit = cache.get(client_id)
    if hit is not None and hit.expires > now:
        return hit.limit
    try:
        limit = (await ApiClientsRepository(ctx.db).get(client_id)).rate_limit_per_minute or DEFAULT_LIMIT_PER_MINUTE
    except NotFoundError:
        limit = DEFAULT_LIMIT_PER_MINUTE
    if len(cache) > 10_000:  # bounded: stale entries of many clients are simply dropped
        cache.clear()
    cache[client_id] = CachedLimit(limit, now + LIMIT_CACHE_SECONDS)
    return limit


async def enforce_client_rate_limit(*, ctx: Context, client_id: str) -> WindowResult | None:
    """Count one request of an integrator client; RateLimitedError over its limit.

    Returns the window's state, or None when Redis is down (the request is allowed).
    """
    limit = await client_limit(ctx=ctx, client_id=client_id)
    window = SlidingWindowLog(ctx.redis)
    now_ms = int(ctx.now().timestamp() * 1000)
    try:
        result = await window.hit(
            _window_key(ctx, client_id), now_ms=now_ms, window_ms=WINDOW_SECONDS * 1000, limit=limit
        )
    except Exception as exc:
        if not is_redis_down(exc):
            raise
        log.warning("rate limit not applied: Redis is unreachable (%s)", type(exc).__name__)
        return None
    if not result.allowed:
        raise RateLimitedError(
            "rate_limited",
            f"This client may make {limit} requests per minute; wait before retrying.",
            retry_after=math.ceil(result.retry_after_ms / 1000),
            limit_per_minute=limit,
        )
    return result


async def take_back_client_request(*, ctx: Context, client_id: str, counted: WindowResult | None) -> None:
    """Take a request counted by ``enforce_client_rate_limit`` out of the client's window again."""
    if counted is None or counted.member is None:
        return
    try:
        await SlidingWindowLog(ctx.redis).take_back(_window_key(ctx, client_id), counted.member)
    except Exception as exc:
        if not is_redis_down(exc):
            raise
        log.warning("a request was not taken out of its rate window: Redis is unreachable (%s)", type(exc).__name__)


def _window_key(ctx: Context, client_id: str) -> str:
    return ctx.key("ratelimit", "client", client_id)
