"""A database seeded once per test session, for tests that only read the catalogue and stations."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis as sync_redis
from pymongo import MongoClient

from config import Settings, load_settings
from run import create_app, open_context
from service import bootstrap


async def _seed(settings: Settings) -> None:
    ctx, close = await open_context(settings)
    try:
        await bootstrap.seed(ctx=ctx)
    finally:
        await close()


@pytest.fixture(scope="session")
def seeded_settings(mongo_uri: str, redis_url: str, tmp_path_factory: Any) -> Iterator[Settings]:
    """Settings of a database holding the seeded catalogue, counties and township stations (read-only)."""
    name = "seeded_" + uuid.uuid4().hex[:10]
    s = load_settings(
        {},
        env="test",
        mongodb_uri=mongo_uri,
        mongodb_db=name,
        redis_url=redis_url,
        redis_prefix=f"{name}:",
        data_dir=str(tmp_path_factory.mktemp("seeded")),
        background_tasks=False,
        log_level="WARNING",
    )
    asyncio.run(_seed(s))
    yield s
    with MongoClient(mongo_uri, serverSelectionTimeoutMS=3000) as mongo:
        mongo.drop_database(name)
    with sync_redis.Redis.from_url(redis_url) as r:
        keys = list(r.scan_iter(match=f"{name}:*", count=1000))
        if keys:
            r.delete(*keys)


@pytest.fixture
async def seeded_client(aiohttp_client: Any, seeded_settings: Settings) -> AsyncIterator[Any]:
    """A test client over the seeded database (do not write through it)."""
    yield await aiohttp_client(create_app(seeded_settings))
