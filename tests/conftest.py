"""Test fixtures: real servers (SecantusDB child process, Redis), one database per test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis as sync_redis

from config import Settings
from run import create_app
from service.storage.embedded import EmbeddedMongo, free_port
from tests.fakes.sms import FakeSms
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.servers import isolated_settings


def _redis_answers(url: str) -> bool:
    try:
        with sync_redis.Redis.from_url(url, socket_connect_timeout=0.5) as r:
            return bool(r.ping())
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    """HUIMIN_MONGODB_URI if given, else a SecantusDB started for this test session."""
    given = os.environ.get("HUIMIN_MONGODB_URI")
    if given:
        yield given
        return
    server = EmbeddedMongo(":memory:", durable=False)
    uri = server.start()
    yield uri
    server.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """HUIMIN_REDIS_URL (default 127.0.0.1:6379), else a redis-server started on a free port."""
    url = os.environ.get("HUIMIN_REDIS_URL", "redis://127.0.0.1:6379/0")
    if _redis_answers(url):
        yield url
        return
    exe = shutil.which("redis-server")
    if not exe:
        pytest.exit(f"No Redis answers at {url} and redis-server is not on PATH; start Redis or set HUIMIN_REDIS_URL.")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _redis_answers(url):
        if time.monotonic() > deadline:
            proc.kill()
            pytest.exit("redis-server did not start")
        time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait()


@pytest.fixture
def settings(mongo_uri: str, redis_url: str, tmp_path: Any) -> Iterator[Settings]:
    """Settings for one test: its own database and Redis key prefix, no background loops."""
    with isolated_settings(mongo_uri, redis_url, tmp_path) as s:
        yield s


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> AsyncIterator[Any]:
    """A test client over the real app start-up path."""
    yield await aiohttp_client(create_app(settings))


@pytest.fixture
async def wechat_api() -> AsyncIterator[FakeWeChatAPI]:
    """The local stand-in for WeChat's server API (access tokens, subscription messages)."""
    fake = await FakeWeChatAPI().start()
    yield fake
    await fake.close()


@pytest.fixture
async def sms() -> AsyncIterator[FakeSms]:
    """The local stand-in SMS gateway (the contract of HttpSmsSender)."""
    fake = FakeSms()
    await fake.start()
    yield fake
    await fake.close()


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


from tests.seeded import seeded_client, seeded_settings  # noqa: E402, F401  (session-seeded read-only database)
