"""WeChat server API for subscription messages: the shared access token and ``subscribe/send``.

The access token (``GET /cgi-bin/token``, valid 7,200 s) is cached in Redis and refreshed
at 90 % of its life. Only one process refreshes at a time (a Redis lock); the others wait
and re-read, so every process shares one token and WeChat's daily token quota is spared.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import uuid
from datetime import timedelta
from typing import Any

import httpx

from service.common.context import Context
from service.common.errors import UpstreamError

log = logging.getLogger("huimin.notify")

REFRESH_AT = 0.9
LOCK_SECONDS = 15
WAIT_SECONDS = 10.0
TOKEN_ERRORS = frozenset({40001, 42001, 40014})
NO_QUOTA = 43101
BAD_DATA = 47003
TRANSIENT = frozenset({-1, 45009})
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


@dataclasses.dataclass(frozen=True, slots=True)
class SendResult:
    errcode: int
    errmsg: str
    msgid: str | None = None

    @property
    def ok(self) -> bool:
        return self.errcode == 0


def _token_key(ctx: Context) -> str:
    return ctx.key("wechat", "access_token")


async def _cached(ctx: Context) -> dict[str, Any] | None:
    raw = await ctx.redis.get(_token_key(ctx))
    return json.loads(raw) if raw else None


def _fresh(cached: dict[str, Any] | None, ctx: Context) -> bool:
    return bool(cached) and ctx.now().timestamp() < float(cached["refresh_at"])  # type: ignore[index]


async def _fetch_token(ctx: Context) -> dict[str, Any]:
    s = ctx.settings
    try:
        resp = await ctx.http.get(
            s.wechat_api_base.rstrip("/") + "/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": s.wechat_appid, "secret": s.wechat_secret},
        )
        body = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise UpstreamError("wechat_unreachable", f"WeChat token endpoint failed: {type(exc).__name__}") from None
    if not isinstance(body, dict) or not body.get("access_token"):
        code = body.get("errcode") if isinstance(body, dict) else None
        raise UpstreamError("wechat_token_failed", f"WeChat refused an access token (errcode {code}).", errcode=code)
    lifetime = int(body.get("expires_in") or 7200)
    now = ctx.now().timestamp()
    record = {"token": body["access_token"], "refresh_at": now + lifetime * REFRESH_AT, "expires_at": now + lifetime}
    # Redis drops it a little before WeChat does, so a dead token is never handed out.
    await ctx.redis.set(_token_key(ctx), json.dumps(record), ex=max(1, lifetime - 60))
    return record


async def access_token(*, ctx: Context, stale: str | None = None) -> str:
    """The shared access token; ``stale`` names one WeChat just rejected, forcing a refresh."""
    lock_key = ctx.key("wechat", "access_token", "lock")
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        cached = await _cached(ctx)
        if cached and _fresh(cached, ctx) and cached["token"] != stale:
            return str(cached["token"])
        owner = uuid.uuid4().hex
        if await ctx.redis.set(lock_key, owner, nx=True, ex=LOCK_SECONDS):
            try:
                cached = await _cached(ctx)  # someone may have refreshed while we took the lock
                if cached and _fresh(cached, ctx) and cached["token"] != stale:
                    return str(cached["token"])
                log.info("fetching a WeChat access token")
                return str((await _fetch_token(ctx))["token"])
            finally:
                await ctx.redis.eval(_RELEASE, 1, lock_key, owner)
        if asyncio.get_running_loop().time() > deadline:
            raise UpstreamError("wechat_token_busy", "Timed out waiting for another process to refresh the token.")
        await asyncio.sleep(0.05)


async def _post_send(ctx: Context, token: str, message: dict[str, Any]) -> SendResult:
    url = ctx.settings.wechat_api_base.rstrip("/") + "/cgi-bin/message/subscribe/send"
    try:
        resp = await ctx.http.post(url, params={"access_token": token}, json=message)
        body = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        # Treated like WeChat's "system busy": retried with backoff.
        return SendResult(-1, f"transport error: {type(exc).__name__}")
    if not isinstance(body, dict):
        return SendResult(-1, "unexpected answer")
    return SendResult(int(body.get("errcode", 0)), str(body.get("errmsg", "")), body.get("msgid"))


async def send_subscribe_message(
    *, ctx: Context, openid: str, template_id: str, page: str, data: dict[str, dict[str, str]]
) -> SendResult:
    """Send one subscription message; an invalid or expired token is refreshed once and retried once."""
    message = {
        "touser": openid,
        "template_id": template_id,
        "page": page,
        "data": data,
        "miniprogram_state": ctx.settings.wechat_miniprogram_state,
        "lang": "zh_CN",
    }
    token = await access_token(ctx=ctx)
    result = await _post_send(ctx, token, message)
    if result.errcode in TOKEN_ERRORS:
        log.info("WeChat rejected the access token (%s); refreshing once", result.errcode)
        token = await access_token(ctx=ctx, stale=token)
        result = await _post_send(ctx, token, message)
    return result


def backoff(ctx: Context, attempt: int) -> timedelta:
    """How long to wait before try ``attempt + 1`` after a busy or rate-limited answer."""
    return timedelta(seconds=ctx.settings.notify_retry_base_seconds * (2 ** max(0, attempt - 1)))
