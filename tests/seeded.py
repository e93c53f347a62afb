"""A database seeded once per test session, for tests that only read the catalogue and stations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from config import Settings
from handlers.keys import CTX
from run import create_app, open_context
from service import bootstrap
from service.stations.service import station_ids_by_code
from tests.factories import bearer_of
from tests.servers import isolated_settings

SEEDED_TOWNSHIP = "341021100"  # 歙县徽城镇, a township of the seeded station list


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
    """A test client over the seeded database (write nothing through it but new accounts)."""
    yield await aiohttp_client(create_app(seeded_settings))


async def seeded_bearer(client: Any, role: str, *, scopes: tuple[str, ...] | None = None) -> dict[str, str]:
    """An Authorization header of a new real account of ``role`` in the seeded database.

    Workers and station heads belong to the seeded station of 歙县徽城镇; supervisors cover
    Anhui. New accounts are the only writes the seeded tests make: nothing they read changes.
    """
    ctx = client.app[CTX]
    station_id = None
    if role in ("worker", "station_head"):
        station_id = (await station_ids_by_code(ctx=ctx, codes=[SEEDED_TOWNSHIP]))[SEEDED_TOWNSHIP]
    return await bearer_of(ctx, role, station_id=station_id, division_prefix="34", scopes=scopes)
