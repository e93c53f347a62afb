"""A database seeded once per test session, for tests that only read the catalogue and stations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from config import Settings
from run import create_app, open_context
from service import bootstrap
from tests.stores import isolated_settings


async def _seed(settings: Settings) -> None:
    ctx, close = await open_context(settings)
    try:
        await bootstrap.seed(ctx=ctx)
    finally:
        await close()


@pytest.fixture(scope="session")
def seeded_settings(mongo_uri: str, redis_url: str, tmp_path_factory: Any) -> Iterator[Settings]:
    """Settings of a database holding the seeded catalogue, counties and township stations (read-only)."""
    with isolated_settings(mongo_uri, redis_url, tmp_path_factory.mktemp("seeded"), prefix="seeded") as s:
        asyncio.run(_seed(s))
        yield s


@pytest.fixture
async def seeded_client(aiohttp_client: Any, seeded_settings: Settings) -> AsyncIterator[Any]:
    """A test client over the seeded database (do not write through it)."""
    yield await aiohttp_client(create_app(seeded_settings))
