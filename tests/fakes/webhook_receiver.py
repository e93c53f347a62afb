"""A webhook receiver as integrators run one: records each POST, can fail, hang or answer codes.

Each path is its own receiver (``/a``, ``/b``), so one server plays several clients.
It also watches for the same event id being delivered twice at the same moment.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import defaultdict
from typing import Any

from aiohttp import web


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    arrived: float  # time.monotonic()
    status: int
    in_flight_at_arrival: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers.get("Huimin-Event-Id", "")


class WebhookReceiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._fail: dict[str, list[int]] = defaultdict(list)
        self._status: dict[str, int] = {}
        self._hang: set[str] = set()
        self._release = asyncio.Event()
        self.delay = 0.0
        self._in_flight: dict[str, int] = defaultdict(int)
        self.overlaps: list[str] = []
        self.in_flight_by_path: dict[str, int] = defaultdict(int)
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self._arrived = asyncio.Condition()

    async def start(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.strip('/')}"

    def fail_next(self, path: str, times: int, status: int = 500) -> None:
        """Answer the next ``times`` requests on ``path`` with ``status``."""
        self._fail[path.strip("/")].extend([status] * times)

    def always(self, path: str, status: int) -> None:
        """Answer every request on ``path`` with ``status``."""
        self._status[path.strip("/")] = status

    def hang(self, path: str) -> None:
        """Never answer requests on ``path`` (until the receiver closes)."""
        self._hang.add(path.strip("/"))

    def received(self, path: str | None = None) -> list[Received]:
        return [r for r in self.requests if path is None or r.path == path.strip("/")]

    def delivered(self, path: str) -> list[Received]:
        return [r for r in self.received(path) if 200 <= r.status < 300]

    async def wait_for(
        self, count: int, path: str | None = None, *, ok_only: bool = True, timeout: float = 5.0
    ) -> None:
        async def enough() -> None:
            async with self._arrived:
                await self._arrived.wait_for(
                    lambda: len(self.delivered(path) if ok_only and path else self.received(path)) >= count
                )

        await asyncio.wait_for(enough(), timeout)

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.read()
        event_id = request.headers.get("Huimin-Event-Id", "")
        self._in_flight[event_id] += 1
        self.in_flight_by_path[name] += 1
        snapshot = dict(self.in_flight_by_path)
        if self._in_flight[event_id] > 1:
            self.overlaps.append(event_id)
        try:
            if name in self._hang:
                await self._release.wait()
            if self.delay:
                await asyncio.sleep(self.delay)
            status = self._fail[name].pop(0) if self._fail[name] else self._status.get(name, 200)
            self.requests.append(Received(name, dict(request.headers), body, time.monotonic(), status, snapshot))
            async with self._arrived:
                self._arrived.notify_all()
            return web.Response(status=status, text="ok" if status < 300 else "receiver error")
        finally:
            self._in_flight[event_id] -= 1
            self.in_flight_by_path[name] -= 1
