"""A local stand-in for WeChat's server API used by subscription messages.

Follows the documented contracts:
- ``GET /cgi-bin/token?grant_type=client_credential&appid=&secret=`` ->
  ``{"access_token", "expires_in": 7200}`` or ``{"errcode": 40013|40125|40002, "errmsg"}``;
- ``POST /cgi-bin/message/subscribe/send?access_token=`` with ``{touser, template_id, page,
  data, miniprogram_state, lang}`` -> ``{"errcode": 0, "errmsg": "ok", "msgid"}``, or 40001
  (invalid credential), 42001 (access_token expired), 47003 (argument invalid: a data value
  over its type's limit), and whatever a test scripts (43101 user refused, -1 busy, 45009
  rate limit).
It counts token fetches and records accepted sends.
"""

from __future__ import annotations

import itertools
import re
import secrets
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

LIMITS = {"thing": 20, "character_string": 32, "phrase": 5, "name": 10, "number": 32, "amount": 32}


class FakeWeChatAPI:
    def __init__(self, *, appid: str = "wx-test-appid", secret: str = "wx-test-secret") -> None:
        self.appid = appid
        self.secret = secret
        self.token_fetches = 0
        self.valid_tokens: set[str] = set()
        self.expired_tokens: set[str] = set()
        self.sends: list[dict[str, Any]] = []
        self.send_attempts = 0
        self.scripted: list[tuple[int, str]] = []  # errors returned by the next sends, in order
        self._msgids = itertools.count(1000)
        self.server: TestServer | None = None

    # ------------------------------------------------------------ test controls

    def fail_next_sends(self, *errors: tuple[int, str]) -> None:
        self.scripted.extend(errors)

    def expire_tokens(self) -> None:
        """Every token issued so far is now expired (42001)."""
        self.expired_tokens |= self.valid_tokens
        self.valid_tokens.clear()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def start(self) -> FakeWeChatAPI:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self._token)
        app.router.add_post("/cgi-bin/message/subscribe/send", self._send)
        self.server = TestServer(app)
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    # ------------------------------------------------------------ endpoints

    async def _token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("grant_type") != "client_credential":
            return web.json_response({"errcode": 40002, "errmsg": "invalid grant_type"})
        if q.get("appid") != self.appid:
            return web.json_response({"errcode": 40013, "errmsg": "invalid appid"})
        if q.get("secret") != self.secret:
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        self.token_fetches += 1
        token = f"ACCESS_{self.token_fetches}_{secrets.token_hex(8)}"
        self.valid_tokens.add(token)
        return web.json_response({"access_token": token, "expires_in": 7200})

    async def _send(self, request: web.Request) -> web.Response:
        self.send_attempts += 1
        token = request.query.get("access_token", "")
        if token in self.expired_tokens:
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        if token not in self.valid_tokens:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
        body = await request.json()
        for name in ("touser", "template_id", "data"):
            if not body.get(name):
                return web.json_response({"errcode": 47003, "errmsg": f"argument invalid! {name} empty"})
        if body.get("miniprogram_state", "formal") not in ("formal", "trial", "developer"):
            return web.json_response({"errcode": 47003, "errmsg": "argument invalid! miniprogram_state"})
        for key, item in body["data"].items():
            kind = re.sub(r"\d+$", "", key)
            value = str((item or {}).get("value", ""))
            if kind in LIMITS and len(value) > LIMITS[kind]:
                return web.json_response(
                    {"errcode": 47003, "errmsg": f"argument invalid! data.{key}.value exceeds limit"}
                )
        if self.scripted:
            code, msg = self.scripted.pop(0)
            return web.json_response({"errcode": code, "errmsg": msg})
        msgid = next(self._msgids)
        self.sends.append(body | {"msgid": msgid})
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})
