"""Opening and closing the MongoDB and Redis clients, embedded defaults included."""

from __future__ import annotations

import asyncio
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from pymongo import AsyncMongoClient
from pymongo import errors as mongo_errors

from config import Settings
from service.storage.embedded import EmbeddedMongo, running_server

log = logging.getLogger("huimin.storage")


@dataclass
class Stores:
    """Open clients; ``close()`` releases all of them."""

    mongo: AsyncMongoClient[dict[str, Any]]
    redis: Any  # redis.asyncio.Redis, or the in-process stand-in
    embedded: EmbeddedMongo | None
    mongo_mode: str
    redis_mode: str

    async def close(self) -> None:
        """Close both clients and stop the embedded server, if any."""
        await self.mongo.close()
        try:
            await self.redis.aclose()
        except Exception:
            log.debug("redis close failed", exc_info=True)
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)


def mongo_client(uri: str, settings: Settings) -> AsyncMongoClient[dict[str, Any]]:
    """An async client whose calls give up after the store timeout instead of hanging."""
    ms = int(settings.store_timeout_seconds * 1000)
    # pymongo's defaults suit batch jobs, not a web API: a request would wait 30 s for a
    # server to select and 20 s for a connect while MongoDB is down, holding its caller and
    # our connection slots. With these, an outage becomes a 503 within the store timeout
    # (a read retried once after a dropped connection selects again: about one timeout more).
    # No socketTimeoutMS: on Python 3.11 it costs a task per operation (pymongo sends under
    # asyncio.wait_for when it is set). A server that hangs without closing its connections
    # is cut by the request's deadline (handlers/deadline.py) or the background pass's
    # (service/common/loops.py) instead; the monitor's own checks still time out after
    # connectTimeoutMS. heartbeatFrequencyMS (default 10 s) is shorter so a failed or
    # returning server is noticed sooner; pymongo also re-checks at once when an operation fails.
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=ms,
        connectTimeoutMS=ms,
        heartbeatFrequencyMS=5_000,
        appname="huimin",
    )


def redis_client(url: str, settings: Settings) -> aioredis.Redis:
    """A redis.asyncio client whose commands give up after the store timeout instead of hanging."""
    t = settings.store_timeout_seconds
    # socket_timeout stays, though on Python 3.11 redis-py then sends each command under
    # asyncio.wait_for (a task, about 20 µs of CPU): a Redis that hangs must fail fast, not at
    # the request's deadline, because the callers that fail safe (the token revocation check
    # falls back to MongoDB, rate limits and one-time codes answer without it) can only do so
    # once the command has failed. With the request's deadline alone, every authenticated
    # request would wait out the deadline and get a 503 while Redis hangs.
    return aioredis.Redis.from_url(
        url, decode_responses=True, socket_timeout=t, socket_connect_timeout=t, health_check_interval=15
    )


# How long a process that is starting waits for MongoDB to answer before it gives up: a server
# that is itself still starting (a unit started beside it, a busy machine) is waited for, and
# the wait is logged; a request never waits this long (the store timeout applies to requests).
STARTUP_PATIENCE_SECONDS = 30.0


async def wait_until_reachable(
    mongo: AsyncMongoClient[dict[str, Any]], *, patience: float = STARTUP_PATIENCE_SECONDS
) -> None:
    """Return once MongoDB answers a ping; raise the driver's last error after ``patience`` seconds."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + patience
    waited = False
    while True:
        try:
            await mongo.admin.command("ping")
        except (mongo_errors.ServerSelectionTimeoutError, mongo_errors.ConnectionFailure) as exc:
            if loop.time() >= give_up:
                raise
            if not waited:
                log.warning("MongoDB does not answer yet; waiting up to %.0f s", patience, extra={"error": str(exc)})
                waited = True
            await asyncio.sleep(0.5)
        else:
            if waited:
                log.info("MongoDB answers")
            return


def in_process_redis() -> Any:
    """The single-process stand-in used when no Redis URL is configured."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import fakeredis

    return fakeredis.FakeAsyncRedis(decode_responses=True)


async def open_stores(settings: Settings) -> Stores:
    """Connect to MongoDB and Redis, starting the embedded defaults where none is configured."""
    embedded = None
    if settings.mongodb_uri:
        uri, mongo_mode = settings.mongodb_uri, "external"
    elif running := running_server(Path(settings.data_dir).resolve()):
        # Another process (`run.py serve`) runs the embedded server over this data: use it.
        uri, pid = running
        mongo_mode = f"embedded SecantusDB of a running process (server pid {pid}) at {uri}"
    else:
        path = Path(settings.data_dir).resolve() / "mongo"
        embedded = EmbeddedMongo(str(path), durable=True)
        uri = await embedded.start_async()
        mongo_mode = f"embedded SecantusDB on port {embedded.port}, data in {path}"
    mongo = mongo_client(uri, settings)
    if settings.redis_url:
        redis, redis_mode = redis_client(settings.redis_url, settings), "external"
    else:
        redis, redis_mode = in_process_redis(), "in-process stand-in"
        log.warning(
            "no HUIMIN_REDIS_URL: using an in-process Redis stand-in; "
            "rate limits, OTP codes and live events are NOT shared between processes. "
            "Run a single web process in this mode."
        )
    log.info("storage ready", extra={"mongodb": mongo_mode, "redis": redis_mode})
    return Stores(mongo=mongo, redis=redis, embedded=embedded, mongo_mode=mongo_mode, redis_mode=redis_mode)
