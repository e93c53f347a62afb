"""The Idempotency-Key header on a creating POST, through the real app and middlewares."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from config import Settings
from handlers.endpoint import endpoint
from handlers.idempotency import idempotent_json
from handlers.io import read_raw_json
from handlers.keys import CTX
from run import create_app
from service.common.models import Principal, utcnow
from service.identity.tokens import issue_access_token

routes = web.RouteTableDef()


@routes.post("/api/v1/test-things")
@endpoint("Create a test thing", roles=("resident",), status=201, idempotent_create=True)
async def create_thing(request: web.Request) -> web.Response:
    data = await read_raw_json(request)
    db = request.app[CTX].db

    async def create() -> tuple[int, dict[str, Any]]:
        result = await db["things"].insert_one({"name": data.get("name")})
        return 201, {"id": str(result.inserted_id), "name": data.get("name")}

    return await idempotent_json(request, body=data, operation=create)


def bearer(settings: Settings, subject: str) -> dict[str, str]:
    token, _ = issue_access_token(
        settings=settings, principal=Principal(subject=subject, role="resident"), now=utcnow()
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(aiohttp_client: Any, settings: Settings) -> Any:
    app = create_app(settings)
    app.add_routes(routes)
    return await aiohttp_client(app)


async def test_replay_returns_the_same_body_with_replayed_header(api: Any, settings: Settings) -> None:
    headers = {**bearer(settings, "u1"), "Idempotency-Key": "order-1"}
    first = await api.post("/api/v1/test-things", json={"name": "a"}, headers=headers)
    second = await api.post("/api/v1/test-things", json={"name": "a"}, headers=headers)
    assert first.status == second.status == 201
    assert await first.json() == await second.json()
    assert "Idempotency-Replayed" not in first.headers
    assert second.headers["Idempotency-Replayed"] == "true"
    assert await api.app[CTX].db["things"].count_documents({}) == 1


async def test_another_body_with_the_same_key_is_422(api: Any, settings: Settings) -> None:
    headers = {**bearer(settings, "u1"), "Idempotency-Key": "order-1"}
    await api.post("/api/v1/test-things", json={"name": "a"}, headers=headers)
    resp = await api.post("/api/v1/test-things", json={"name": "b"}, headers=headers)
    assert resp.status == 422
    assert (await resp.json())["code"] == "idempotency_key_reused"


async def test_key_order_in_the_body_does_not_matter(api: Any, settings: Settings) -> None:
    headers = {**bearer(settings, "u1"), "Idempotency-Key": "order-1", "Content-Type": "application/json"}
    await api.post("/api/v1/test-things", data='{"name": "a", "x": 1}', headers=headers)
    resp = await api.post("/api/v1/test-things", data='{"x":1,"name":"a"}', headers=headers)
    assert resp.headers.get("Idempotency-Replayed") == "true"


async def test_concurrent_duplicates_over_http_create_one(api: Any, settings: Settings) -> None:
    headers = {**bearer(settings, "u1"), "Idempotency-Key": "burst"}
    responses = await asyncio.gather(
        *(api.post("/api/v1/test-things", json={"name": "a"}, headers=headers) for _ in range(20))
    )
    bodies = [await r.json() for r in responses]
    assert {r.status for r in responses} == {201}
    assert len({b["id"] for b in bodies}) == 1
    assert await api.app[CTX].db["things"].count_documents({}) == 1


async def test_malformed_key_is_400(api: Any, settings: Settings) -> None:
    headers = {**bearer(settings, "u1"), "Idempotency-Key": "x" * 300}
    resp = await api.post("/api/v1/test-things", json={"name": "a"}, headers=headers)
    assert resp.status == 400
    assert (await resp.json())["code"] == "invalid_idempotency_key"
