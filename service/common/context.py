"""The shared objects one process holds, passed to service functions as ``ctx``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from config import Settings
from service.loops import LoopHealth
from service.models import utcnow


@dataclass
class Context:
    """Settings, storage handles and in-process helpers of one running app.

    Everything shared between processes lives in ``db`` or ``redis``; what is here is
    either a client or a cache that can be rebuilt from them.
    """

    settings: Settings
    db: AsyncDatabase[dict[str, Any]]
    redis: Any
    http: Any = None  # httpx.AsyncClient for third parties (WeChat, SMS, webhooks)
    clock: Callable[[], datetime] = utcnow
    loops: LoopHealth = field(default_factory=LoopHealth)
    extras: dict[str, Any] = field(default_factory=dict)

    def key(self, *parts: str) -> str:
        """A Redis key under this deployment's prefix."""
        return self.settings.redis_prefix + ":".join(parts)

    def now(self) -> datetime:
        return self.clock()
