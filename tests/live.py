"""The app served on a real loopback port from a background thread, for synchronous clients.

Schemathesis (and anything else built on ``requests``) calls the API from the test's own
thread, so the server needs an event loop of its own: this runs one in a daemon thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiohttp import web

from config import Settings
from handlers.keys import CTX
from run import create_app
from service.common.context import Context

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
