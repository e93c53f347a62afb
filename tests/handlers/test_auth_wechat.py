"""Resident login with a WeChat mini-program code, against a local jscode2session server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from config import Settings
from handlers.keys import CTX
from run import create_app
from service.storage.embedded import free_port
from tests.factories import bearer
from tests.fakes.wechat import FakeWechat

TOKEN_FIELDS = {"access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_in", "role"}


@pytest.fixture
async def wechat() -> AsyncIterator[FakeWechat]:
    async with FakeWechat() as server:
        yield server


@pytest.fixture
async def wx_client(aiohttp_client: Any, settings: Settings, wechat: FakeWechat) -> Any:
    s = settings.replace(wechat_api_base=wechat.url, wechat_appid=wechat.appid, wechat_secret=wechat.secret)
    return await aiohttp_client(create_app(s))


async def test_first_wechat_login_creates_resident_and_returns_token_pair(wx_client: Any, wechat: FakeWechat) -> None:
    wechat.add_code("c1", "openid-A", unionid="union-A")
    resp = await wx_client.post("/api/v1/auth/wechat", json={"code": "c1"})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert set(body) == TOKEN_FIELDS
    assert body["role"] == "resident" and body["token_type"] == "Bearer"
    assert "session_key" not in await resp.text()
    me = await (await wx_client.get("/api/v1/me", headers=bearer(body["access_token"]))).json()
    assert me["role"] == "resident" and me["has_wechat"] is True and me["phone_masked"] is None
    assert "session_key" not in str(me)
    method, path, query, _ = wechat.requests[-1]
    assert (method, path) == ("GET", "/sns/jscode2session")
    assert query == {
        "appid": wechat.appid,
        "secret": wechat.secret,
        "js_code": "c1",
        "grant_type": "authorization_code",
    }
    doc = await wx_client.app[CTX].db["residents"].find_one({"openid": "openid-A"})
    assert doc["unionid"] == "union-A"
    assert doc["session_key"] == wechat.issued_session_keys[-1]


async def test_second_wechat_login_finds_the_same_resident(wx_client: Any, wechat: FakeWechat) -> None:
    wechat.add_code("c1", "openid-B")
    wechat.add_code("c2", "openid-B")
    ids = []
    for code in ("c1", "c2"):
        token = (await (await wx_client.post("/api/v1/auth/wechat", json={"code": code})).json())["access_token"]
        ids.append((await (await wx_client.get("/api/v1/me", headers=bearer(token))).json())["id"])
    assert ids[0] == ids[1]
    assert await wx_client.app[CTX].db["residents"].count_documents({}) == 1
    doc = await wx_client.app[CTX].db["residents"].find_one({"openid": "openid-B"})
    assert doc["session_key"] == wechat.issued_session_keys[-1]


@pytest.mark.parametrize(
    ("code", "status", "problem", "retry_after"),
    [
        ("code-invalid", 401, "wechat_code_invalid", False),
        ("code-rate-limited", 429, "wechat_rate_limited", True),
        ("code-busy", 503, "wechat_busy", True),
        ("code-blocked", 403, "wechat_user_blocked", False),
        ("code-other-error", 502, "wechat_error", False),
    ],
)
async def test_wechat_errcodes_become_problems(
    wx_client: Any, code: str, status: int, problem: str, retry_after: bool
) -> None:
    resp = await wx_client.post("/api/v1/auth/wechat", json={"code": code})
    assert resp.status == status
    assert (await resp.json())["code"] == problem
    assert ("Retry-After" in resp.headers) is retry_after
    assert await wx_client.app[CTX].db["residents"].count_documents({}) == 0


async def test_reused_wechat_code_is_refused(wx_client: Any, wechat: FakeWechat) -> None:
    wechat.add_code("once", "openid-C")
    assert (await wx_client.post("/api/v1/auth/wechat", json={"code": "once"})).status == 200
    resp = await wx_client.post("/api/v1/auth/wechat", json={"code": "once"})
    assert resp.status == 502
    assert (await resp.json())["code"] == "wechat_error"


async def test_unreachable_wechat_is_503(aiohttp_client: Any, settings: Settings) -> None:
    s = settings.replace(wechat_api_base=f"http://127.0.0.1:{free_port()}", wechat_appid="a", wechat_secret="b")
    client = await aiohttp_client(create_app(s))
    resp = await client.post("/api/v1/auth/wechat", json={"code": "c1"})
    assert resp.status == 503
    assert (await resp.json())["code"] == "wechat_unreachable"
    assert "Retry-After" in resp.headers


async def test_wechat_login_without_code_is_422(wx_client: Any) -> None:
    resp = await wx_client.post("/api/v1/auth/wechat", json={})
    assert resp.status == 422
    assert (await resp.json())["code"] == "validation_failed"
