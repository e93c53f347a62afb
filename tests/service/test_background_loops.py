"""Background loops: one that fails is restarted; stopping never waits on a stuck loop."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from service import bootstrap
from service.common.loops import LoopHealth


async def test_a_loop_that_fails_is_restarted_until_it_returns(monkeypatch: Any) -> None:
    runs: list[int] = []

    async def flaky(_ctx: Any) -> None:
        runs.append(1)
        if len(runs) < 3:
            raise ConnectionError("store went away")

    real_sleep = asyncio.sleep
    monkeypatch.setattr(bootstrap.asyncio, "sleep", lambda _s: real_sleep(0))
    ctx = SimpleNamespace(loops=LoopHealth())
    await asyncio.wait_for(bootstrap._supervised("flaky", flaky, ctx), 5)  # type: ignore[arg-type]
    assert len(runs) == 3
    assert ctx.loops.state("flaky").failures == {"ConnectionError": 2}


async def test_stopping_gives_up_on_a_loop_that_ignores_cancellation() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue  # a loop stuck in a driver call that swallows the cancellation

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    start = time.monotonic()
    await bootstrap.stop_background([task], timeout=0.3)
    assert time.monotonic() - start < 2
    assert not task.done()
    release.set()
    task.cancel()
    await asyncio.wait([task], timeout=2)
