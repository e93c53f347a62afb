"""A backing store going away answers 503 promptly, and the app recovers by itself when it returns.

Each test runs its own server (SecantusDB or redis-server) on a fixed port so that it can
stop and restart it under the running app.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from aiohttp import web

from config import Settings
from handlers.endpoint import endpoint
from handlers.keys import CTX
from run import create_app
from service.common.inputs import from_given
from service.stations.inputs import StationRegistration
from service.storage.embedded import EmbeddedMongo, free_port

PROMPT_SECONDS = 3.0
RECOVERY_DEADLINE = 20.0


@endpoint("Read from MongoDB", public=True)
async def mongo_probe(request: web.Request) -> web.Response:
    doc = await request.app[CTX].db["outage_probe"].find_one({}, {"_id": 0})
    return web.json_response({"doc": doc})


@endpoint("Read from Redis", public=True)
async def redis_probe(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    return web.json_response({"value": await ctx.redis.get(ctx.key("outage_probe"))})


async def eventually(check: Callable[[], Awaitable[bool]], deadline: float, what: str) -> None:
    """Poll ``check`` until it holds or ``deadline`` seconds pass."""
    end = time.monotonic() + deadline
    while True:
        if await check():
            return
        if time.monotonic() > end:
            pytest.fail(f"{what} did not happen within {deadline:.0f} s")
        await asyncio.sleep(0.2)


async def timed_get(client: Any, path: str) -> tuple[Any, dict[str, Any], float]:
    start = time.monotonic()
    resp = await client.get(path)
    body = await resp.json()
    return resp, body, time.monotonic() - start


async def _client_for(aiohttp_client: Any, settings: Settings) -> Any:
    app = create_app(settings)
    app.router.add_get("/api/v1/_mongo_probe", mongo_probe)
    app.router.add_get("/api/v1/_redis_probe", redis_probe)
    return await aiohttp_client(app)


# ------------------------------------------------------------------ MongoDB


@pytest.fixture
def own_mongo(tmp_path: Path) -> Iterator[EmbeddedMongo]:
    server = EmbeddedMongo(str(tmp_path / "mongo"), durable=True, port=free_port())
    server.start()
    yield server
    server.stop()


async def test_mongodb_outage_is_503_and_recovers(aiohttp_client: Any, settings: Settings, own_mongo: Any) -> None:
    client = await _client_for(aiohttp_client, settings.replace(mongodb_uri=own_mongo.uri))
    await client.server.app[CTX].db["outage_probe"].insert_one({"k": "v"})
    resp, body, _ = await timed_get(client, "/api/v1/_mongo_probe")
    assert resp.status == 200 and body == {"doc": {"k": "v"}}

    await asyncio.to_thread(own_mongo.stop)

    resp, body, took = await timed_get(client, "/readyz")
    assert resp.status == 503
    assert body["checks"] == {"mongodb": "down", "redis": "ok"}
    assert int(resp.headers["Retry-After"]) > 0
    assert took < PROMPT_SECONDS

    # The first call finds a broken pooled connection and retries once, the next finds no
    # server: each waits at most about one store timeout (service/storage/connections.py).
    limit = settings.store_timeout_seconds * 1.5 + 0.5
    for _ in range(2):
        resp, body, took = await timed_get(client, "/api/v1/_mongo_probe")
        assert resp.status == 503
        assert resp.content_type == "application/problem+json"
        assert body["code"] == "database_unavailable"
        assert int(resp.headers["Retry-After"]) > 0
        assert took < limit

    await asyncio.to_thread(own_mongo.start)  # same port, same data path

    async def ready() -> bool:
        return (await client.get("/readyz")).status == 200

    await eventually(ready, RECOVERY_DEADLINE, "readiness after MongoDB restart")
    resp, body, _ = await timed_get(client, "/api/v1/_mongo_probe")
    assert resp.status == 200 and body == {"doc": {"k": "v"}}


# ------------------------------------------------------------------ Redis


class RedisServer:
    """A redis-server child process on a fixed port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server is not on PATH")
        self.process = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with sync_redis.Redis.from_url(self.url, socket_connect_timeout=0.2) as r:
                    r.ping()
                return
            except sync_redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None:
            proc.terminate()
            proc.wait(10)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_client(aiohttp_client: Any, settings: Settings, own_redis: RedisServer) -> AsyncIterator[Any]:
    yield await _client_for(aiohttp_client, settings.replace(redis_url=own_redis.url))


async def test_redis_outage_is_503_and_recovers(redis_client: Any, own_redis: RedisServer) -> None:
    client = redis_client
    assert (await client.get("/readyz")).status == 200

    await asyncio.to_thread(own_redis.stop)

    resp, body, took = await timed_get(client, "/readyz")
    assert resp.status == 503
    assert body["checks"] == {"mongodb": "ok", "redis": "down"}
    assert int(resp.headers["Retry-After"]) > 0
    assert took < PROMPT_SECONDS

    resp, body, took = await timed_get(client, "/api/v1/_redis_probe")
    assert resp.status == 503
    assert body["code"] == "cache_unavailable"
    assert int(resp.headers["Retry-After"]) > 0
    assert took < PROMPT_SECONDS + 0.5

    await asyncio.to_thread(own_redis.start)

    async def ready() -> bool:
        return (await client.get("/readyz")).status == 200

    await eventually(ready, RECOVERY_DEADLINE, "readiness after Redis restart")
    resp, body, _ = await timed_get(client, "/api/v1/_redis_probe")
    assert resp.status == 200 and body == {"value": None}


async def test_cases_are_filed_and_handled_while_redis_is_down(
    redis_client: Any, own_redis: RedisServer, settings: Settings
) -> None:
    # Redis holds only rate-limit windows, OTP codes, revocations (mirrored in MongoDB) and the
    # live feed: none of it may stop a resident filing or a station handling a case.
    from service.catalog import service as catalog
    from service.catalog.service import example_answers
    from service.common.models import SYSTEM
    from service.stations import service as stations
    from tests.factories import bearer_for, make_client, make_staff, make_wechat_resident

    client = redis_client
    ctx = client.app[CTX]
    await catalog.seed_catalog(ctx)
    station = await stations.create_station(
        ctx=ctx,
        principal=SYSTEM,
        data=from_given(
            StationRegistration,
            {
                "code": "341021100",
                "name": "徽城镇社工站",
                "location": {"type": "Point", "coordinates": [118.41, 29.86]},
                "precision": "exact",
            },
        ),
    )
    service = await catalog.get_service(ctx=ctx, code="elderly_home_visit")
    body = {
        "service_code": service.code,
        "answers": example_answers(service),
        "division_code": station.code,
        "address": "徽城镇 新安路 1 号",
        "contact": {"name": "王芳", "phone": "13912345678"},
    }
    resident = bearer_for(settings, await make_wechat_resident(ctx))
    integrator = bearer_for(settings, await make_client(ctx, scopes=("cases:read", "cases:write")))
    worker_account = await make_staff(ctx, station_id=station.id)
    worker = bearer_for(settings, worker_account)

    await asyncio.to_thread(own_redis.stop)

    filed = await client.post("/api/v1/cases", json=body, headers={**resident, "Idempotency-Key": "redis-down-1"})
    assert filed.status == 201, await filed.text()
    case = await filed.json()
    again = await client.post("/api/v1/cases", json=body, headers={**resident, "Idempotency-Key": "redis-down-1"})
    assert again.status == 201 and (await again.json())["id"] == case["id"]
    by_client = await client.post("/api/v1/cases", json=body, headers={**integrator, "Idempotency-Key": "c-1"})
    assert by_client.status == 201, await by_client.text()
    for action, payload in (("accept", {}), ("resolve", {"result": "已办结 done"})):
        resp = await client.post(f"/api/v1/cases/{case['id']}/{action}", json=payload, headers=worker)
        assert resp.status == 200, await resp.text()
    assert (await resp.json())["assignee_id"] == worker_account.id
    listed = await client.get("/api/v1/cases", headers=resident)
    assert listed.status == 200 and [c["id"] for c in (await listed.json())["items"]] == [case["id"]]
    otp = await client.post("/api/v1/auth/otp", json={"phone": "13912345678"})
    assert otp.status == 503 and (await otp.json())["code"] == "otp_unavailable"
