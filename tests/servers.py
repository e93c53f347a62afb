"""Real servers for tests.

``isolated_settings`` gives settings for a throw-away database and Redis key prefix and removes
both afterwards; ``LiveServer`` serves the app on a real loopback port from a background thread,
for synchronous clients (Schemathesis, Playwright, ``requests``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import redis as sync_redis
from aiohttp import web
from pymongo import MongoClient

from config import Settings, load_settings
from handlers.keys import CTX
from run import create_app
from service.common.context import Context


@contextlib.contextmanager
def isolated_settings(
    mongo_uri: str, redis_url: str, data_dir: Any, *, prefix: str = "t", **overrides: Any
) -> Iterator[Settings]:
    """Settings with their own database name and Redis key prefix; both are removed afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    values: dict[str, Any] = {"env": "test", "background_tasks": False, "log_level": "WARNING", **overrides}
    settings = load_settings(
        {},
        mongodb_uri=mongo_uri,
        mongodb_db=name,
        redis_url=redis_url,
        redis_prefix=f"{name}:",
        data_dir=str(data_dir),
        **values,
    )
    try:
        yield settings
    finally:
        with MongoClient(mongo_uri, serverSelectionTimeoutMS=3000) as mongo:
            mongo.drop_database(name)
        with sync_redis.Redis.from_url(redis_url) as r:
            keys = list(r.scan_iter(match=f"{name}:*", count=1000))
            if keys:
                r.delete(*keys)


T = TypeVar("T")


class LiveServer:
    """An event loop in a daemon thread; :meth:`serve` puts the app on 127.0.0.1:<free port>."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="live-server", daemon=True)
        self.thread.start()
        self.runner: web.AppRunner | None = None
        self.settings: Settings | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ctx(self) -> Context:
        assert self.runner is not None
        return self.runner.app[CTX]

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run a coroutine on the server's loop (e.g. a service call) and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def serve(self, settings: Settings) -> LiveServer:
        """Start the app; fakes it talks to can be started on :attr:`loop` with :meth:`run` before."""
        self.settings = settings
        self.run(self._start(settings))
        return self

    async def _start(self, settings: Settings) -> None:
        self.runner = web.AppRunner(create_app(settings), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self.runner is not None:
            self.run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
