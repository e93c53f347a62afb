"""The populated live deployment the fuzzers run against (one per test module)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from config import Settings
from tests.fakes.wechat import FakeWechat
from tests.fuzz.world import World, build_world
from tests.servers import LiveServer, isolated_settings


@pytest.fixture(scope="module")
def fuzz_settings(mongo_uri: str, redis_url: str, tmp_path_factory: Any) -> Iterator[Settings]:
    with isolated_settings(
        mongo_uri, redis_url, tmp_path_factory.mktemp("fuzz"), prefix="fuzz", log_level="ERROR"
    ) as s:
        yield s


@pytest.fixture(scope="module")
def world(fuzz_settings: Settings) -> Iterator[World]:
    server = LiveServer()
    wechat = FakeWechat()
    try:
        server.run(wechat.start())
        server.serve(
            fuzz_settings.replace(wechat_api_base=wechat.url, wechat_appid=wechat.appid, wechat_secret=wechat.secret)
        )
        yield build_world(server)
    finally:
        server.run(wechat.close())
        server.stop()
