"""A backing store that hangs without closing its connections: requests are answered 503 at their
deadline, background passes are cut at theirs, and everything recovers by itself when it answers again.

MongoDB hangs behind a wire-protocol proxy (tests/fakes/hanging_mongo.py) that keeps answering
heartbeats, so the driver's monitor sees a healthy server and only the request's deadline can
notice. Redis hangs for real: its server process is stopped with SIGSTOP and resumed with SIGCONT.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from pymongo.uri_parser import parse_uri

from config import Settings
from handlers.endpoint import endpoint
from handlers.io import read_raw_json
from handlers.keys import CTX
from run import create_app
from service.storage.embedded import free_port
from tests.factories import bearer_for, make_staff
from tests.fakes.hanging_mongo import HangingMongo
from tests.handlers.test_store_outage import RedisServer, eventually

STORE_TIMEOUT = 0.5
DEADLINE = 2.0  # longer than /readyz's own ping timeout (1.5 s)
SLACK = 1.0  # scheduling on a busy 2-core machine


@endpoint("Read one document from MongoDB", public=True)
async def mongo_probe(request: web.Request) -> web.Response:
    doc = await request.app[CTX].db["hang_probe"].find_one({"k": request.query["k"]}, {"_id": 0})
    return web.json_response({"doc": doc})


@endpoint("Read one key from Redis", public=True)
async def redis_probe(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    return web.json_response({"value": await ctx.redis.get(ctx.key("hang_probe", request.query["k"]))})


@endpoint("Read a JSON body, then MongoDB", public=True, body_optional=True)
async def body_probe(request: web.Request) -> web.Response:
    body = await read_raw_json(request)
    count = await request.app[CTX].db["hang_probe"].count_documents({})
    return web.json_response({"size": len(body["text"]), "count": count})


def _hang_settings(settings: Settings, **changes: Any) -> Settings:
    return settings.replace(store_timeout_seconds=STORE_TIMEOUT, request_deadline_seconds=DEADLINE, **changes)


async def _client_for(aiohttp_client: Any, settings: Settings) -> Any:
    app = create_app(settings)
    app.router.add_get("/api/v1/_hang/mongo", mongo_probe)
    app.router.add_get("/api/v1/_hang/redis", redis_probe)
    app.router.add_post("/api/v1/_hang/body", body_probe)
    return await aiohttp_client(app)


async def timed_get(client: Any, path: str) -> tuple[Any, dict[str, Any], float]:
    start = time.monotonic()
    resp = await client.get(path)
    body = await resp.json(content_type=None)
    return resp, body, time.monotonic() - start


def _assert_cut_at_deadline(resp: Any, body: dict[str, Any], took: float) -> None:
    assert resp.status == 503, body
    assert resp.content_type == "application/problem+json"
    assert body["code"] == "store_unavailable"
    assert body["status"] == 503
    assert int(resp.headers["Retry-After"]) > 0
    assert DEADLINE - 0.1 <= took < DEADLINE + SLACK


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert not [r for r in caplog.records if "unhandled" in r.getMessage()]


@pytest.fixture
async def hanging_mongo(mongo_uri: str) -> AsyncIterator[HangingMongo]:
    """The proxy; tests name it before ``aiohttp_client`` so that the app closes before it does."""
    host, port = parse_uri(mongo_uri)["nodelist"][0]
    proxy = await HangingMongo(host, port).start()
    yield proxy
    await proxy.close()


# ------------------------------------------------------------------ MongoDB


async def test_a_request_waiting_on_a_hung_mongodb_is_503_at_its_deadline_and_the_app_recovers(
    hanging_mongo: HangingMongo, aiohttp_client: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    client = await _client_for(aiohttp_client, _hang_settings(settings, mongodb_uri=hanging_mongo.uri))
    await client.app[CTX].db["hang_probe"].insert_many([{"k": "a", "v": 1}, {"k": "b", "v": 2}])
    resp, body, _ = await timed_get(client, "/api/v1/_hang/mongo?k=a")
    assert resp.status == 200 and body == {"doc": {"k": "a", "v": 1}}

    caplog.set_level(logging.WARNING)
    hanging_mongo.hang()
    resp, body, took = await timed_get(client, "/api/v1/_hang/mongo?k=a")
    _assert_cut_at_deadline(resp, body, took)
    assert "find" in hanging_mongo.held_commands  # it did hang on the server, not elsewhere
    resp, body, took = await timed_get(client, "/readyz")  # its own ping times out sooner
    assert resp.status == 503 and body["checks"] == {"mongodb": "down", "redis": "ok"} and took < DEADLINE
    _no_traceback(caplog)
    assert [r.getMessage() for r in caplog.records if r.name == "huimin.http"] == ["request cut at its deadline"]

    # The held find is answered on resume: a connection reused after the cut would read that
    # reply (k=a) for the next find (k=b). The driver closed it, so the next request is right.
    hanging_mongo.resume()
    resp, body, _ = await timed_get(client, "/api/v1/_hang/mongo?k=b")
    assert resp.status == 200 and body == {"doc": {"k": "b", "v": 2}}
    for _ in range(3):
        resp, body, _ = await timed_get(client, "/api/v1/_hang/mongo?k=a")
        assert resp.status == 200 and body == {"doc": {"k": "a", "v": 1}}


async def test_a_slow_client_body_does_not_count_against_the_deadline(aiohttp_client: Any, settings: Settings) -> None:
    client = await _client_for(aiohttp_client, _hang_settings(settings))
    text = "x" * 400

    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"text": "'
        for i in range(0, len(text), 100):
            await asyncio.sleep(DEADLINE / 2)
            yield text[i : i + 100].encode()
        yield b'"}'

    start = time.monotonic()
    resp = await client.post(
        "/api/v1/_hang/body", data=trickle(), headers={"Content-Type": "application/json"}, chunked=True
    )
    assert time.monotonic() - start > DEADLINE
    assert resp.status == 200, await resp.text()
    assert (await resp.json()) == {"size": 400, "count": 0}


async def test_the_live_feed_is_not_cut_by_the_request_deadline(aiohttp_client: Any, settings: Settings) -> None:
    s = _hang_settings(settings, stream_heartbeat_seconds=0.2)
    client = await _client_for(aiohttp_client, s)
    worker = await make_staff(client.app[CTX], role="admin")
    async with client.get("/api/v1/stream", headers=bearer_for(s, worker)) as resp:
        assert resp.status == 200
        end = time.monotonic() + DEADLINE + 1.0
        pings = 0
        while time.monotonic() < end:
            line = await asyncio.wait_for(resp.content.readline(), 1.0)
            assert line, "the stream ended"
            pings += line.startswith(b": ping")
        assert pings >= 5


# ------------------------------------------------------------------ Redis


@pytest.fixture
def stoppable_redis() -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    server.start()
    yield server
    if server.process is not None:
        os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


async def test_a_hung_redis_is_given_up_on_after_the_store_timeout_and_requests_go_on_being_answered(
    aiohttp_client: Any, settings: Settings, stoppable_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = await _client_for(aiohttp_client, _hang_settings(settings, redis_url=stoppable_redis.url))
    ctx = client.app[CTX]
    supervisor = bearer_for(ctx.settings, await make_staff(ctx, role="supervisor"))
    await ctx.redis.set(ctx.key("hang_probe", "a"), "A")
    await ctx.redis.set(ctx.key("hang_probe", "b"), "B")
    resp, body, _ = await timed_get(client, "/api/v1/_hang/redis?k=a")
    assert resp.status == 200 and body == {"value": "A"}

    caplog.set_level(logging.WARNING)
    assert stoppable_redis.process is not None
    os.kill(stoppable_redis.process.pid, signal.SIGSTOP)
    try:
        # The token's revocation check gives up on Redis after the store timeout and asks
        # MongoDB: the request is answered, as while Redis is down, not cut at its deadline.
        start = time.monotonic()
        resp = await client.get("/api/v1/cases?limit=5", headers=supervisor)
        body = await resp.json()
        took = time.monotonic() - start
        assert resp.status == 200 and body["items"] == [], body
        assert took < STORE_TIMEOUT + SLACK < DEADLINE
        # A read of Redis itself fails after the store timeout too: 503 cache_unavailable.
        resp, body, took = await timed_get(client, "/api/v1/_hang/redis?k=a")
        assert resp.status == 503 and body["code"] == "cache_unavailable", body
        assert STORE_TIMEOUT - 0.1 <= took < STORE_TIMEOUT + SLACK
        _no_traceback(caplog)
    finally:
        os.kill(stoppable_redis.process.pid, signal.SIGCONT)

    # The GET of "a" sent before the stop is answered now: a reused connection would hand it
    # to the next GET ("b"). redis-py disconnected it when the command timed out.
    resp, body, _ = await timed_get(client, "/api/v1/_hang/redis?k=b")
    assert resp.status == 200 and body == {"value": "B"}
    resp, body, _ = await timed_get(client, "/api/v1/_hang/redis?k=a")
    assert resp.status == 200 and body == {"value": "A"}


# ------------------------------------------------------------------ background loops


async def test_background_passes_on_a_hung_mongodb_are_cut_at_their_deadline_and_the_loops_go_on(
    hanging_mongo: HangingMongo, aiohttp_client: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    s = _hang_settings(
        settings,
        mongodb_uri=hanging_mongo.uri,
        background_tasks=True,
        background_pass_deadline_seconds=1.0,
        alert_sweep_seconds=0.1,
        webhook_poll_seconds=0.1,
        notify_poll_seconds=0.1,
    )
    client = await _client_for(aiohttp_client, s)
    loops = client.app[CTX].loops

    async def passes(name: str) -> int:
        return loops.state(name).passes

    await eventually(lambda: _at_least(passes, "alert-escalation", 1), 10, "a first escalation pass")
    caplog.set_level(logging.WARNING, logger="huimin")
    hanging_mongo.hang()
    watched = ("alert-escalation", "notify-events", "webhook-delivery")

    async def all_cut() -> bool:
        return all(loops.state(name).failures["deadline"] >= 1 for name in watched)

    await eventually(all_cut, 10, "every watched loop's pass cut at its deadline")
    cut_lines = [r.getMessage() for r in caplog.records if "deadline" in r.getMessage()]
    assert any("alert-escalation: pass cut at its 1 s deadline" in line for line in cut_lines), cut_lines
    _no_traceback(caplog)

    before = {name: loops.state(name).passes for name in watched}
    hanging_mongo.resume()

    async def all_ran_again() -> bool:
        return all(loops.state(name).passes > before[name] for name in watched)

    await eventually(all_ran_again, 20, "a pass of every watched loop after the store answered again")
    assert all(loops.state(name).consecutive_failures == 0 for name in watched)


async def _at_least(count: Any, name: str, n: int) -> bool:
    return bool(await count(name) >= n)
