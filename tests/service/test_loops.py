"""The health of background loops: counted failures, one log line per distinct failure, degraded and recovered."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from service.common import loops
from service.common.loops import DEGRADED_AFTER, MAX_BACKOFF_SECONDS, LoopHealth


def _fail(exc: Exception) -> Exception:
    try:
        raise exc
    except Exception as caught:  # noqa: BLE001 - a raised exception carries its traceback
        return caught


def test_a_loop_failing_every_pass_logs_one_traceback_then_says_degraded_once(caplog: Any) -> None:
    health = LoopHealth()
    caplog.set_level(logging.WARNING, logger="huimin.loops")
    for _ in range(10):
        health.failed("notify-events", _fail(TypeError("can only concatenate str")))
    with_traceback = [r for r in caplog.records if r.exc_info]
    assert len(with_traceback) == 1
    assert [r.getMessage() for r in caplog.records if "degraded" in r.getMessage()] == [
        f"background loop notify-events degraded: {DEGRADED_AFTER} failed passes in a row"
    ]
    assert health.report() == {"notify-events": "degraded"}
    assert health.degraded
    assert health.state("notify-events").failures == {"TypeError": 10}


def test_a_new_kind_of_failure_is_logged_again(caplog: Any) -> None:
    health = LoopHealth()
    caplog.set_level(logging.ERROR, logger="huimin.loops")
    health.failed("visits", _fail(TypeError("a")))
    health.failed("visits", _fail(KeyError("b")))
    health.failed("visits", _fail(TypeError("c")))
    assert len([r for r in caplog.records if r.exc_info]) == 2


def test_a_successful_pass_ends_degraded_and_is_logged_once(caplog: Any) -> None:
    health = LoopHealth()
    caplog.set_level(logging.WARNING, logger="huimin.loops")
    for _ in range(DEGRADED_AFTER):
        health.failed("case-sweep", _fail(RuntimeError("x")))
    health.succeeded("case-sweep")
    health.succeeded("case-sweep")
    assert health.report() == {"case-sweep": "ok"}
    assert not health.degraded
    assert [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()] == [
        f"background loop case-sweep recovered after {DEGRADED_AFTER} failed passes"
    ]


def test_back_off_doubles_up_to_a_cap() -> None:
    health = LoopHealth()
    waits = [health.failed("x", _fail(ValueError()), base_backoff=1.0) for _ in range(9)]
    assert waits[:4] == [1.0, 2.0, 4.0, 8.0]
    assert waits[-1] == MAX_BACKOFF_SECONDS


async def test_guard_records_a_pass_and_swallows_a_failure_after_its_back_off(monkeypatch: Any) -> None:
    health = LoopHealth()
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(loops.asyncio, "sleep", fake_sleep)
    async with health.guard("webhook-delivery", base_backoff=0.5):
        pass
    async with health.guard("webhook-delivery", base_backoff=0.5):
        raise OSError("refused")
    state = health.state("webhook-delivery")
    assert (state.passes, state.consecutive_failures, slept) == (1, 1, [0.5])


async def test_guard_lets_cancellation_through() -> None:
    health = LoopHealth()
    with pytest.raises(asyncio.CancelledError):
        async with health.guard("x"):
            raise asyncio.CancelledError
    assert health.state("x").consecutive_failures == 0


async def test_a_pass_past_its_deadline_is_cut_logged_in_one_line_and_the_next_pass_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health = LoopHealth(pass_deadline=0.2)
    caplog.set_level(logging.WARNING, logger="huimin.loops")
    ran = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with health.guard("visits", base_backoff=0.01):
        await asyncio.sleep(30)  # a driver call to a server that never answers
    assert loop.time() - start < 1.0
    async with health.guard("visits", base_backoff=0.01):
        ran.append("next pass")
    state = health.state("visits")
    assert ran == ["next pass"]
    assert (state.passes, state.failures["deadline"], state.consecutive_failures) == (1, 1, 0)
    assert [(r.getMessage(), r.exc_info) for r in caplog.records if "deadline" in r.getMessage()] == [
        ("background loop visits: pass cut at its 0.2 s deadline (a store did not answer)", None)
    ]


async def test_an_outside_cancellation_is_not_taken_for_a_deadline() -> None:
    health = LoopHealth(pass_deadline=5.0)

    async def one_pass() -> None:
        async with health.guard("x"):
            await asyncio.sleep(30)

    task = asyncio.create_task(one_pass())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert health.state("x").failures == {}
