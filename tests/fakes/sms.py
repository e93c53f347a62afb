"""A local SMS gateway following the contract of ``HttpSmsSender``.

``POST /send`` with JSON ``{phone, template, params}`` answers ``{"ok": true}``; messages
are kept so tests can read the codes. ``fail = True`` makes it refuse with ``{"ok": false}``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer


class FakeSms(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.fail = False
        self.add_route("POST", "/send", self.send)

    async def send(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.fail or not isinstance(body, dict) or not {"phone", "template", "params"} <= body.keys():
            return web.json_response({"ok": False, "error": "rejected"})
        self.messages.append(body)
        return web.json_response({"ok": True})

    def codes_for(self, phone: str) -> list[str]:
        """Every code texted to ``phone``, oldest first."""
        return [m["params"]["code"] for m in self.messages if m["phone"] == phone]

    def last_code(self, phone: str) -> str:
        codes = self.codes_for(phone)
        assert codes, f"no code was sent to {phone}"
        return codes[-1]
