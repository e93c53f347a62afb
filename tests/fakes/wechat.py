"""A local stand-in for the WeChat server API (api.weixin.qq.com).

Implements ``GET /sns/jscode2session`` as documented for mini programs: query
``appid, secret, js_code, grant_type=authorization_code``; the answer is JSON served as
``text/plain`` with ``openid, session_key[, unionid]`` or ``errcode, errmsg``. Codes are
single use (a second use gives 40163). Special codes produce each documented error.
Later tests add ``/cgi-bin/token`` and ``/cgi-bin/message/subscribe/send`` with
``add_route``.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer

# js_code -> (errcode, errmsg)
ERROR_CODES: dict[str, tuple[int, str]] = {
    "code-invalid": (40029, "invalid code"),
    "code-rate-limited": (45011, "api minute-quota reach limit mustslower retry next minute"),
    "code-busy": (-1, "system error"),
    "code-blocked": (40226, "high risk user"),
    "code-other-error": (40013, "invalid appid"),
}


class FakeWechat(FakeServer):
    def __init__(self, appid: str = "wx-test-appid", secret: str = "wx-test-secret") -> None:
        super().__init__()
        self.appid = appid
        self.secret = secret
        self.sessions: dict[str, dict[str, str]] = {}  # js_code -> {openid, unionid?}
        self.used: set[str] = set()
        self.issued_session_keys: list[str] = []
        self.add_route("GET", "/sns/jscode2session", self.jscode2session)

    def add_code(self, code: str, openid: str, unionid: str | None = None) -> None:
        """Make ``code`` a valid login code for ``openid``."""
        self.sessions[code] = {"openid": openid, **({"unionid": unionid} if unionid else {})}

    @staticmethod
    def _answer(body: dict[str, Any]) -> web.Response:
        # WeChat labels its JSON as text/plain.
        return web.Response(text=json.dumps(body), content_type="text/plain")

    async def jscode2session(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("appid") != self.appid:
            return self._answer({"errcode": 40013, "errmsg": "invalid appid"})
        if q.get("secret") != self.secret:
            return self._answer({"errcode": 40125, "errmsg": "invalid appsecret"})
        if q.get("grant_type") != "authorization_code":
            return self._answer({"errcode": 40002, "errmsg": "invalid grant_type"})
        code = q.get("js_code", "")
        if code in ERROR_CODES:
            errcode, errmsg = ERROR_CODES[code]
            return self._answer({"errcode": errcode, "errmsg": errmsg})
        if code in self.used:
            return self._answer({"errcode": 40163, "errmsg": "code been used"})
        if code not in self.sessions:
            return self._answer({"errcode": 40029, "errmsg": "invalid code"})
        self.used.add(code)
        session_key = secrets.token_urlsafe(16)
        self.issued_session_keys.append(session_key)
        return self._answer({**self.sessions[code], "session_key": session_key})
