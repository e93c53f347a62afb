"""WeChat mini-program login: exchanging a ``wx.login`` code for the user's openid.

Follows the documented ``GET /sns/jscode2session`` contract. WeChat answers JSON, often
labelled ``text/plain``, so the body text is parsed whatever the content type says.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx

from service.common.context import Context
from service.common.errors import (
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
    UnavailableError,
    UpstreamError,
)

RATE_LIMIT_RETRY_SECONDS = 60
BUSY_RETRY_SECONDS = 5


@dataclasses.dataclass(frozen=True, slots=True)
class WechatSession:
    openid: str
    session_key: str
    unionid: str | None = None


def error_for_errcode(errcode: int, errmsg: str) -> Exception:
    """The domain error for a jscode2session ``errcode``."""
    if errcode == 40029:
        return AuthenticationError("wechat_code_invalid", "The WeChat login code is invalid or expired; log in again.")
    if errcode == 45011:
        return RateLimitedError(
            "wechat_rate_limited", "Too many WeChat logins; try again in a minute.", RATE_LIMIT_RETRY_SECONDS
        )
    if errcode == -1:
        return UnavailableError("wechat_busy", "WeChat is busy; try again shortly.", BUSY_RETRY_SECONDS)
    if errcode == 40226:
        return PermissionDeniedError("wechat_user_blocked", "This WeChat user is blocked by WeChat risk control.")
    return UpstreamError("wechat_error", f"WeChat refused the login (errcode {errcode}).", wechat_errcode=errcode)


async def code_to_session(*, ctx: Context, code: str) -> WechatSession:
    """Exchange a mini-program login code for openid, session key and (maybe) unionid."""
    s = ctx.settings
    if not (s.wechat_appid and s.wechat_secret):
        raise UnavailableError("wechat_not_configured", "WeChat login is not configured on this server.", 60)
    params = {"appid": s.wechat_appid, "secret": s.wechat_secret, "js_code": code, "grant_type": "authorization_code"}
    try:
        resp = await ctx.http.get(s.wechat_api_base.rstrip("/") + "/sns/jscode2session", params=params)
    except httpx.HTTPError:
        raise UnavailableError("wechat_unreachable", "WeChat cannot be reached; try again shortly.") from None
    if resp.status_code >= 500:
        raise UnavailableError("wechat_unreachable", "WeChat cannot be reached; try again shortly.")
    try:
        body: Any = json.loads(resp.text)
    except ValueError:
        body = None
    if resp.status_code != 200 or not isinstance(body, dict):
        raise UpstreamError("wechat_error", "WeChat answered something other than the documented JSON.")
    errcode = body.get("errcode") or 0
    if errcode != 0:
        raise error_for_errcode(int(errcode), str(body.get("errmsg", "")))
    openid, session_key = body.get("openid"), body.get("session_key")
    if not isinstance(openid, str) or not openid or not isinstance(session_key, str):
        raise UpstreamError("wechat_error", "WeChat answered without an openid.")
    unionid = body.get("unionid")
    return WechatSession(openid=openid, session_key=session_key, unionid=unionid if isinstance(unionid, str) else None)
