"""Resident login with a texted code, against a local SMS gateway and the real Redis."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from config import Settings
from handlers.keys import CTX
from run import create_app
from service.storage.embedded import free_port
from tests.factories import bearer
from tests.fakes.sms import FakeSms

PHONE = "13800138000"


@pytest.fixture
async def otp_client(aiohttp_client: Any, settings: Settings, sms: FakeSms) -> Any:
    return await aiohttp_client(create_app(settings.replace(sms_sender="http", sms_api_base=sms.url)))


async def _send(client: Any, phone: str = PHONE) -> Any:
    return await client.post("/api/v1/auth/otp", json={"phone": phone})


async def _verify(client: Any, code: str, phone: str = PHONE) -> Any:
    return await client.post("/api/v1/auth/otp/verify", json={"phone": phone, "code": code})


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_phone_login_creates_resident_on_first_verify(otp_client: Any, sms: FakeSms) -> None:
    resp = await _send(otp_client, "+86 138-0013-8000")
    assert resp.status == 202
    assert (await resp.json())["expires_in"] == 300
    code = sms.last_code(PHONE)
    assert len(code) == 6 and code.isdigit()
    assert sms.messages[-1]["template"] == "login_code"
    resp = await _verify(otp_client, code)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["role"] == "resident" and body["refresh_token"]
    me = await (await otp_client.get("/api/v1/me", headers=bearer(body["access_token"]))).json()
    assert me["phone_masked"] == "138****8000" and me["has_wechat"] is False
    assert await otp_client.app[CTX].db["residents"].count_documents({"phone": PHONE}) == 1


async def test_code_is_stored_only_as_a_hash_with_five_minute_life(otp_client: Any, sms: FakeSms) -> None:
    await _send(otp_client)
    ctx = otp_client.app[CTX]
    key = ctx.key("otp", "code", PHONE)
    stored = await ctx.redis.hgetall(key)
    assert sms.last_code(PHONE) not in str(stored)
    assert len(stored["hash"]) == 64
    assert 290 <= await ctx.redis.ttl(key) <= 300


async def test_code_works_once(otp_client: Any, sms: FakeSms) -> None:
    await _send(otp_client)
    code = sms.last_code(PHONE)
    assert (await _verify(otp_client, code)).status == 200
    resp = await _verify(otp_client, code)
    assert resp.status == 401
    assert (await resp.json())["code"] == "otp_invalid"
    ctx = otp_client.app[CTX]
    assert not await ctx.redis.exists(ctx.key("otp", "code", PHONE))


async def test_console_sender_logs_the_code_in_development(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="huimin.sms"):
        assert (await _send(client)).status == 202
    record = next(r for r in caplog.records if r.name == "huimin.sms")
    assert record.phone == PHONE  # type: ignore[attr-defined]
    assert (await _verify(client, record.code)).status == 200  # type: ignore[attr-defined]


async def test_wrong_code_is_401_otp_invalid(otp_client: Any, sms: FakeSms) -> None:
    await _send(otp_client)
    resp = await _verify(otp_client, _wrong(sms.last_code(PHONE)))
    assert resp.status == 401
    body = await resp.json()
    assert body["code"] == "otp_invalid" and body["attempts_left"] == 4


async def test_sixth_try_is_refused_even_with_the_right_code(otp_client: Any, sms: FakeSms) -> None:
    await _send(otp_client)
    code = sms.last_code(PHONE)
    for _ in range(5):
        assert (await _verify(otp_client, _wrong(code))).status == 401
    resp = await _verify(otp_client, code)
    assert resp.status == 429
    assert (await resp.json())["code"] == "otp_attempts_exceeded"
    assert int(resp.headers["Retry-After"]) >= 1
    assert (await _verify(otp_client, code)).status == 401  # the code is gone


async def test_second_request_within_a_minute_is_429(otp_client: Any, sms: FakeSms) -> None:
    assert (await _send(otp_client)).status == 202
    resp = await _send(otp_client)
    assert resp.status == 429
    assert (await resp.json())["code"] == "otp_too_frequent"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert len(sms.codes_for(PHONE)) == 1
    assert (await _send(otp_client, "13900139000")).status == 202  # other numbers are not affected


async def test_eleventh_code_of_the_day_is_refused(otp_client: Any, sms: FakeSms) -> None:
    ctx = otp_client.app[CTX]
    for _ in range(10):
        assert (await _send(otp_client)).status == 202
        await ctx.redis.delete(ctx.key("otp", "minute", PHONE))  # as if a minute had passed
    resp = await _send(otp_client)
    assert resp.status == 429
    assert (await resp.json())["code"] == "otp_daily_limit"
    assert 1 <= int(resp.headers["Retry-After"]) <= 86400
    assert len(sms.codes_for(PHONE)) == 10


async def test_expired_code_is_refused(aiohttp_client: Any, settings: Settings, sms: FakeSms) -> None:
    s = settings.replace(sms_sender="http", sms_api_base=sms.url, otp_ttl_seconds=1)
    client = await aiohttp_client(create_app(s))
    await _send(client)
    await asyncio.sleep(1.2)
    resp = await _verify(client, sms.last_code(PHONE))
    assert resp.status == 401
    assert (await resp.json())["code"] == "otp_invalid"


@pytest.mark.parametrize("phone", ["12800138000", "1380013800", "+1 13800138000", "abc", "138001380001"])
async def test_non_mainland_numbers_are_422(otp_client: Any, phone: str) -> None:
    resp = await _send(otp_client, phone)
    assert resp.status == 422
    assert "phone" in (await resp.json())["errors"]


async def test_sms_gateway_refusal_is_502_and_allows_an_immediate_retry(otp_client: Any, sms: FakeSms) -> None:
    sms.fail = True
    resp = await _send(otp_client)
    assert resp.status == 502
    assert (await resp.json())["code"] == "sms_send_failed"
    sms.fail = False
    assert (await _send(otp_client)).status == 202


async def test_without_redis_no_code_is_issued_or_checked(aiohttp_client: Any, settings: Settings) -> None:
    s = settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0", store_timeout_seconds=0.5)
    client = await aiohttp_client(create_app(s))
    resp = await _send(client)
    assert resp.status == 503
    assert (await resp.json())["code"] == "otp_unavailable"
    resp = await _verify(client, "123456")
    assert resp.status == 503
    assert (await resp.json())["code"] == "otp_unavailable"
