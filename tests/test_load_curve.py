"""The throughput curve's own arithmetic (loadtest/curve.py): arrivals, what counts as sustained."""

from __future__ import annotations

import asyncio
import random
import time

from loadtest.curve import MIX, Step, best, run_step, schedule
from loadtest.users import Sample


def test_arrivals_are_poisson_at_the_rate_within_the_step_and_repeat_for_a_seed() -> None:
    plan = schedule(50.0, 20.0, random.Random(7))
    assert plan == schedule(50.0, 20.0, random.Random(7))
    times = [t for t, _ in plan]
    assert times == sorted(times) and times[0] > 0 and times[-1] < 20.0
    assert 900 <= len(plan) <= 1100  # 1,000 expected; sd about 32
    assert {op for _, op in plan} == {op for op, _ in MIX}


def _step(latencies_ms: list[float], statuses: list[int] | None = None) -> Step:
    step = Step(rate=10.0, seconds=10.0)
    statuses = statuses or [200] * len(latencies_ms)
    for i, (ms, status) in enumerate(zip(latencies_ms, statuses, strict=True)):
        step.samples.append(Sample(i * 0.1, "case.get", status, ms / 1000))
    step.elapsed = 10.0
    return step


def test_a_step_is_sustained_only_with_p99_within_300_ms_no_errors_and_the_rate_kept_up() -> None:
    assert _step([20.0] * 100).result()["sustained"]
    assert not _step([20.0] * 98 + [400.0] * 2).result()["sustained"]  # p99 over 300 ms
    one_error = _step([20.0] * 100, [200] * 99 + [503]).result()
    assert not one_error["sustained"] and one_error["errors_by_status"] == {"503": 1}
    late = _step([20.0] * 100)
    late.elapsed = 12.0  # the last answer came 2 s after the step: 8.3/s for 10/s arriving
    assert not late.result()["sustained"]


def test_the_highest_sustained_rate_is_the_last_before_the_first_miss() -> None:
    rows = [{"offered_per_s": r, "sustained": ok} for r, ok in ((1, True), (2, True), (4, False), (6, True))]
    assert best(rows) == 2
    assert best([{"offered_per_s": 1, "sustained": False}]) is None


async def test_arrivals_start_on_schedule_while_earlier_requests_are_still_running() -> None:
    started: list[float] = []
    t0 = time.monotonic()

    async def slow(op: str) -> tuple[str, int, str | None]:
        started.append(time.monotonic() - t0)
        await asyncio.sleep(0.5)  # each request outlasts many inter-arrival gaps
        return op, 200, None

    step = Step(rate=40.0, seconds=1.0)
    await run_step(step, random.Random(3), slow)
    assert len(step.samples) == len(started) >= 20
    assert max(started) < 1.2  # a closed loop of one would need len x 0.5 s
    assert min(s.latency for s in step.samples) >= 0.5  # counted from the scheduled start
    assert step.result()["achieved_per_s"] > 0
