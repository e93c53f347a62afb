"""The CPU cost of one driver operation with and without a per-operation socket timeout.

On Python 3.11 ``asyncio.wait_for`` with a timeout starts a task: pymongo sends every message
under it when ``socketTimeoutMS`` is set, and redis-py every command when ``socket_timeout`` is.
This times one ``find_one`` through four clients, interleaved call by call so that the machine's
load hits all alike:

- **old**: the client options before the request deadline (``socketTimeoutMS`` = 10 s);
- **new**: ``service.storage.connections`` as it is now (no per-operation socket timeout);
- **new + deadline**: the same, inside one ``asyncio.timeout`` per call, what a request's
  deadline adds (handlers/deadline.py);
- **bare**: a client with the library's default options;

and one Redis ``GET`` through the app's client (``socket_timeout`` = the store timeout, kept so
that a hung Redis fails fast and its callers fall back: see service/storage/connections.py), one
without ``socket_timeout``, and a bare redis-py client (whose default is 5 s): what the kept
timeout costs.

Printed: median CPU time (``time.process_time``; the MongoDB server is a child process, so this
is the client's and driver's work) and median wall time per call, in µs. ``--quick``: 600 calls
of each instead of 3,000.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from bench.cases import redis_url_or_none
from config import load_settings
from service.storage.connections import mongo_client, redis_client
from service.storage.embedded import EmbeddedMongo

Call = Callable[[], Awaitable[Any]]


async def _interleaved(calls: dict[str, Call], n: int) -> dict[str, tuple[list[float], list[float]]]:
    for _ in range(50):
        for fn in calls.values():
            await fn()
    out: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in calls}
    for _ in range(n):
        for name, fn in calls.items():
            c, w = time.process_time(), time.perf_counter()
            await fn()
            out[name][1].append(time.perf_counter() - w)
            out[name][0].append(time.process_time() - c)
    return out


def _with_deadline(fn: Call) -> Call:
    async def call() -> Any:
        async with asyncio.timeout(12.0):
            return await fn()

    return call


def _print(what: str, results: dict[str, tuple[list[float], list[float]]]) -> None:
    print(f"{what:<34} {'CPU µs':>8} {'wall µs':>8}")
    for name, (cpu, wall) in results.items():
        print(f"  {name:<32} {statistics.median(cpu) * 1e6:8.0f} {statistics.median(wall) * 1e6:8.0f}")


async def _main(n: int) -> None:
    settings = load_settings({}, env="test", store_timeout_seconds=3.0)
    server = EmbeddedMongo(":memory:", durable=False)
    uri = await server.start_async()
    ms = int(settings.store_timeout_seconds * 1000)
    clients: dict[str, AsyncMongoClient[dict[str, Any]]] = {
        "old (socketTimeoutMS 10 s)": AsyncMongoClient(
            uri,
            tz_aware=True,
            serverSelectionTimeoutMS=ms,
            connectTimeoutMS=ms,
            socketTimeoutMS=max(ms * 4, 10_000),
            heartbeatFrequencyMS=5_000,
        ),
        "new": mongo_client(uri, settings),
        "bare pymongo": AsyncMongoClient(uri),
    }
    db_name = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        await clients["new"][db_name]["c"].insert_one({"_id": 1, "v": "x" * 200})
        colls = {name: c[db_name]["c"] for name, c in clients.items()}
        calls: dict[str, Call] = {
            "old (socketTimeoutMS 10 s)": lambda: colls["old (socketTimeoutMS 10 s)"].find_one({"_id": 1}),
            "new": lambda: colls["new"].find_one({"_id": 1}),
            "new + deadline": _with_deadline(lambda: colls["new"].find_one({"_id": 1})),
            "bare pymongo": lambda: colls["bare pymongo"].find_one({"_id": 1}),
        }
        _print("MongoDB find_one", await _interleaved(calls, n))
        await clients["new"].drop_database(db_name)
    finally:
        for c in clients.values():
            await c.close()
        await asyncio.to_thread(server.stop)

    url = redis_url_or_none()
    if url is None:
        print("no Redis at HUIMIN_REDIS_URL / 127.0.0.1:6379: Redis part skipped")
        return
    rclients = {
        "app (socket_timeout)": redis_client(url, settings),
        "no socket_timeout": aioredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=None, socket_connect_timeout=3.0, health_check_interval=15
        ),
        "bare redis-py": aioredis.Redis.from_url(url, decode_responses=True),
    }
    key = f"bench:{uuid.uuid4().hex[:8]}"
    try:
        await rclients["app (socket_timeout)"].set(key, "x" * 64)
        rcalls: dict[str, Call] = {
            "app (socket_timeout)": lambda: rclients["app (socket_timeout)"].get(key),
            "no socket_timeout": lambda: rclients["no socket_timeout"].get(key),
            "bare redis-py": lambda: rclients["bare redis-py"].get(key),
        }
        _print("Redis GET", await _interleaved(rcalls, n))
        await rclients["app (socket_timeout)"].delete(key)
    finally:
        for r in rclients.values():
            await r.aclose()


def run(quick: bool = False) -> int:
    asyncio.run(_main(600 if quick else 3000))
    return 0
