"""A process that starts before MongoDB answers waits for it (up to its patience), then goes on."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from config import Settings
from service.storage.connections import mongo_client, wait_until_reachable
from service.storage.embedded import EmbeddedMongo, free_port


async def test_a_mongodb_that_answers_late_is_waited_for(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    server = EmbeddedMongo(str(tmp_path / "mongo"), durable=False, port=port)
    # The request-sized store timeout: each single try gives up after half a second.
    client = mongo_client(f"mongodb://127.0.0.1:{port}/", settings.replace(store_timeout_seconds=0.5))
    try:
        waiting = asyncio.ensure_future(wait_until_reachable(client, patience=30.0))
        await asyncio.sleep(1.5)
        assert not waiting.done(), "nothing answers yet: still waiting"
        await asyncio.to_thread(server.start)
        await asyncio.wait_for(waiting, timeout=20.0)
        assert (await client.admin.command("ping"))["ok"] == 1
    finally:
        await client.close()
        await asyncio.to_thread(server.stop)


async def test_a_mongodb_that_never_answers_is_given_up_on_after_the_patience(settings: Settings) -> None:
    # A port that takes connections and never answers a word (a server stuck while starting).
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    client = mongo_client(f"mongodb://127.0.0.1:{port}/", settings.replace(store_timeout_seconds=0.5))
    start = time.monotonic()
    try:
        with pytest.raises(ServerSelectionTimeoutError):
            await wait_until_reachable(client, patience=2.0)
        assert 2.0 <= time.monotonic() - start < 5.0
    finally:
        await client.close()
        for writer in held:
            writer.close()
        silent.close()
        await silent.wait_closed()
