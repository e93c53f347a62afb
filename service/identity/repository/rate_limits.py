"""Sliding-window request counters in Redis: one sorted set of request times per key."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class WindowResult:
    """The outcome of one counted request."""

    allowed: bool
    count: int  # requests in the window, this one included when allowed
    retry_after_ms: int  # when refused: until the oldest counted request leaves the window
    member: str | None = None  # when allowed: this request's entry, for ``take_back``


class SlidingWindowLog:
    """A sliding log: each request is a member scored by its time in milliseconds.

    Trimming, adding, counting and reading the oldest entries run in one MULTI/EXEC
    transaction, so concurrent requests from several processes each see a consistent count.
    A refused request is taken out again, so a caller that keeps knocking does not push
    its own window forward.
    """

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def hit(self, key: str, *, now_ms: int, window_ms: int, limit: int) -> WindowResult:
        """Count one request under ``key``; refused when ``limit`` requests are already in the window."""
        member = f"{now_ms}-{secrets.token_hex(4)}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now_ms - window_ms)
            pipe.zadd(key, {member: now_ms})
            pipe.zcard(key)
            pipe.pexpire(key, window_ms + 1000)
            _, _, count, _ = await pipe.execute()
        count = int(count)
        if count <= limit:
            return WindowResult(True, count, 0, member)
        await self.redis.zrem(key, member)
        # With n others in the window, a slot frees when the (n - limit)-th oldest leaves it.
        others = count - 1
        entries = await self.redis.zrange(key, others - limit, others - limit, withscores=True)
        oldest = int(entries[0][1]) if entries else now_ms
        return WindowResult(False, others, max(1, oldest + window_ms - now_ms))

    async def take_back(self, key: str, member: str) -> None:
        """Take one counted request out of the window again (it turned out not to count)."""
        await self.redis.zrem(key, member)
