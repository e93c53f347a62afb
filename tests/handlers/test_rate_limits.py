"""Per-client rate limits: a sliding one-minute window in Redis, 429 with Retry-After, fail-safe."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.keys import CTX
from run import create_app
from service.common.errors import RateLimitedError
from service.identity import rate_limits, tokens
from service.identity.accounts import IssuedClient
from service.storage.embedded import free_port
from tests.factories import bearer_for, make_client, make_wechat_resident

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def _client_with_limit(ctx: Any, limit: int, scopes: tuple[str, ...] = ("cases:read",)) -> IssuedClient:
    return await make_client(ctx, scopes=scopes, rate_limit_per_minute=limit)


async def _token(client: Any, issued: Any) -> dict[str, str]:
    body = f"grant_type=client_credentials&client_id={issued.client.client_id}&client_secret={issued.client_secret}"
    resp = await client.post("/oauth/token", data=body, headers=FORM)
    assert resp.status == 200, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['access_token']}"}


async def test_a_client_over_its_limit_gets_429_with_retry_after(client: Any) -> None:
    issued = await _client_with_limit(client.app[CTX], 3)
    headers = await _token(client, issued)
    for _ in range(3):
        assert (await client.get("/api/v1/cases", headers=headers)).status == 200
    resp = await client.get("/api/v1/cases", headers=headers)
    assert resp.status == 429
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["code"] == "rate_limited" and body["limit_per_minute"] == 3
    assert 1 <= int(resp.headers["Retry-After"]) <= 60


async def test_another_client_is_not_affected(client: Any) -> None:
    ctx = client.app[CTX]
    busy = await _token(client, await _client_with_limit(ctx, 2))
    calm = await _token(client, await _client_with_limit(ctx, 2))
    for _ in range(2):
        assert (await client.get("/api/v1/cases", headers=busy)).status == 200
    assert (await client.get("/api/v1/cases", headers=busy)).status == 429
    assert (await client.get("/api/v1/cases", headers=calm)).status == 200


async def test_staff_and_residents_are_not_limited_by_client_limits(client: Any, settings: Any) -> None:
    headers = bearer_for(settings, await make_wechat_resident(client.app[CTX]))
    for _ in range(5):
        assert (await client.get("/api/v1/cases", headers=headers)).status == 200


async def test_the_window_slides_and_refused_requests_do_not_count(client: Any) -> None:
    ctx = client.app[CTX]
    cid = (await _client_with_limit(ctx, 3)).client.client_id
    start = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)

    async def at(seconds: float) -> Any:
        ctx.clock = lambda: start + timedelta(seconds=seconds)
        return await rate_limits.enforce_client_rate_limit(ctx=ctx, client_id=cid)

    for t in (0, 10, 20):
        assert (await at(t)).allowed
    for t in (30, 40, 59):
        with pytest.raises(RateLimitedError) as refused:
            await at(t)
    assert refused.value.retry_after == 1  # the request at 0 s leaves the window at 60 s
    assert (await at(60.5)).count == 3  # one slot freed; refused tries were not counted
    with pytest.raises(RateLimitedError) as refused:
        await at(61)
    assert refused.value.retry_after == 9  # next: the request at 10 s leaves at 70 s


async def test_open311_api_key_requests_count_against_the_limit(client: Any) -> None:
    issued = await _client_with_limit(client.app[CTX], 2, scopes=("open311",))
    params = {"api_key": f"{issued.client.client_id}:{issued.client_secret}"}
    for _ in range(2):
        assert (await client.get("/open311/v2/requests.json", params=params)).status == 200
    resp = await client.get("/open311/v2/requests.json", params=params)
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    errors = await resp.json()
    assert errors[0]["code"] == 429 and errors[0]["description"].startswith("rate_limited:")


async def test_requests_pass_when_redis_is_down(aiohttp_client: Any, settings: Any, caplog: Any) -> None:
    down = settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0", store_timeout_seconds=0.5)
    app_client = await aiohttp_client(create_app(down))
    issued = await _client_with_limit(app_client.app[CTX], 1)
    headers = bearer_for(down, issued)  # the token the client-credentials grant would issue
    with caplog.at_level("WARNING", logger="huimin.rate_limits"):
        for _ in range(3):
            resp = await app_client.get("/api/v1/cases", headers=headers)
            assert resp.status == 200, await resp.text()
    assert "rate limit not applied" in caplog.text


async def test_the_openapi_document_lists_429_with_retry_after(client: Any) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    for path, method in (("/api/v1/cases", "get"), ("/open311/v2/requests.{format}", "post")):
        response = doc["paths"][path][method]["responses"]["429"]
        if "$ref" in response:
            response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
        assert "Retry-After" in response["headers"]


async def test_a_revoked_tokens_requests_do_not_use_up_its_clients_limit(client: Any) -> None:
    # The limit is counted while the token's revocation is checked; a revoked token's request is
    # taken out of the window again, so a stolen token that was revoked cannot lock its client out.
    ctx = client.app[CTX]
    issued = await _client_with_limit(ctx, 2)
    stolen = await _token(client, issued)
    await tokens.revoke_subject(ctx=ctx, subject=issued.client.client_id)
    for _ in range(4):
        for resp in (
            await client.get("/api/v1/cases", headers=stolen),
            await client.post("/api/v1/cases", json={}, headers=stolen),
        ):
            assert resp.status == 401 and (await resp.json())["code"] == "token_revoked"
    await asyncio.sleep(1.1)  # a token issued in the second of a revocation counts as revoked
    fresh = await _token(client, issued)
    for _ in range(2):
        assert (await client.get("/api/v1/cases", headers=fresh)).status == 200
    resp = await client.get("/api/v1/cases", headers=fresh)
    assert resp.status == 429 and (await resp.json())["code"] == "rate_limited"
