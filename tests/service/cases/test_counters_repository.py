"""The counters behind case numbers: each value handed out once, in order, under concurrency."""

from __future__ import annotations

import asyncio

from service.cases.repository.counters import CountersRepository
from service.common.context import Context


async def test_a_new_sequence_starts_at_one_and_current_reads_without_taking(ctx: Context) -> None:
    repo = CountersRepository(ctx.db)
    assert await repo.current("case:341002:20261130") == 0
    assert [await repo.next("case:341002:20261130") for _ in range(3)] == [1, 2, 3]
    assert await repo.current("case:341002:20261130") == 3
    assert await repo.current("case:341002:20261130") == 3  # reading took nothing
    assert await repo.next("case:341021:20261130") == 1  # another sequence has its own values


async def test_thirty_concurrent_takers_of_a_new_sequence_get_one_to_thirty(ctx: Context) -> None:
    repo = CountersRepository(ctx.db)
    taken = await asyncio.gather(*(repo.next("case:341002:20261201") for _ in range(30)))
    assert sorted(taken) == list(range(1, 31))
    assert await repo.current("case:341002:20261201") == 30
