"""A small local HTTP server for standing in for a third party in tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeServer:
    """An aiohttp app on a free loopback port; subclasses add routes in ``__init__``.

    ``add_route(method, path, handler)`` adds more before ``start()``; every request is
    kept in ``requests`` as (method, path, query, body text).
    """

    def __init__(self) -> None:
        self.app = web.Application(middlewares=[self._record])
        self.requests: list[tuple[str, str, dict[str, str], str]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.text() if request.can_read_body else ""
        self.requests.append((request.method, request.path, dict(request.query), body))
        return await handler(request)

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        self.app.router.add_route(method, path, handler)

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Any:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
