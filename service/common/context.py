"""The shared objects one process holds, passed to service functions as ``ctx``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pymongo.asynchronous.database import AsyncDatabase

from config import Settings
from service.common.loops import LoopHealth
from service.common.models import utcnow

if TYPE_CHECKING:  # typing only: the areas own these types, the context only holds them
    from service.catalog.cache import ServiceTypeCache
    from service.identity.rate_limits import CachedLimit
    from service.notify.stream import StreamHub
    from service.stations.divisions import DivisionTree
    from service.stations.index import IndexHolder
    from service.storage.connections import Stores
    from service.webhooks.ports import CaseViews, ClientScopes


@dataclass
class ProcessState:
    """Caches and handles this process keeps, each rebuilt from MongoDB or Redis when lost.

    One object shared by every copy of a :class:`Context` (``dataclasses.replace``), so a copy
    with another clock still sees the same station index and live-feed hub.
    """

    station_index: IndexHolder | None = None
    service_types: ServiceTypeCache | None = None
    division_tree: DivisionTree | None = None
    stream_hub: StreamHub | None = None
    client_limits: dict[str, CachedLimit] = field(default_factory=dict)
    notify_owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Access tokens whose signature, issuer and audience were verified here, by token text:
    # the claims of a given text never change, only whether it has expired (checked on each use).
    verified_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)


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
    process: ProcessState = field(default_factory=ProcessState)
    stores: Stores | None = None  # the open connections, closed by the composition root
    case_views: CaseViews | None = None  # webhook payloads carry the case as the API shows it
    client_scopes: ClientScopes | None = None  # overrides the stored scopes of clients (tests)

    def __post_init__(self) -> None:
        if self.loops.pass_deadline is None:
            self.loops.pass_deadline = self.settings.background_pass_deadline_seconds

    def key(self, *parts: str) -> str:
        """A Redis key under this deployment's prefix."""
        return self.settings.redis_prefix + ":".join(parts)

    def now(self) -> datetime:
        return self.clock()
