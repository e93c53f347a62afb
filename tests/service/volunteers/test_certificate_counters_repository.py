"""The counters that number certificates (collection ``volunteer_certificate_counters``): one per
numbering prefix, a new one continuing after the numbers already issued, each serial handed out once
under concurrency.

A counter's key is a certificate number's prefix (``ZYZM-<township>-<year>-``), not an id;
certificates are issued through the volunteers service (the helpers of the certificates' tests).
"""

from __future__ import annotations

import asyncio

from service.common.context import Context
from service.volunteers.repository.certificates import CertificateCountersRepository, CertificatesRepository
from tests.factories import TOWNSHIP
from tests.service.volunteers.test_certificates_repository import issue, prefix_of, served

PREFIX = f"ZYZM-{TOWNSHIP}-2026-"


async def test_a_new_counter_continues_after_the_numbers_issued_before_it_and_asks_once(ctx: Context) -> None:
    repo = CertificateCountersRepository(ctx.db)
    asked: list[str] = []

    async def issued_before() -> int:
        asked.append("asked")
        return 41

    assert [await repo.next(PREFIX, start_after=issued_before) for _ in range(3)] == [42, 43, 44]
    assert asked == ["asked"]  # only the counter's creation reads what was issued before it


async def test_each_prefix_counts_on_its_own_from_one(ctx: Context) -> None:
    repo = CertificateCountersRepository(ctx.db)

    async def none_before() -> int:
        return 0

    assert await repo.next(PREFIX, start_after=none_before) == 1
    assert await repo.next(PREFIX.replace("2026", "2027"), start_after=none_before) == 1
    assert await repo.next(PREFIX, start_after=none_before) == 2


async def test_twenty_concurrent_takers_of_a_new_counter_get_each_serial_once(ctx: Context) -> None:
    repo = CertificateCountersRepository(ctx.db)

    async def issued_before() -> int:
        return 5

    taken = await asyncio.gather(*(repo.next(PREFIX, start_after=issued_before) for _ in range(20)))
    assert sorted(taken) == list(range(6, 26))


async def test_issuing_certificates_moves_the_stations_counter(ctx: Context) -> None:
    worker, volunteer, today = await served(ctx)
    made = [await issue(ctx, worker, volunteer, today) for _ in range(2)]
    prefix = prefix_of(made[0])
    certificates = CertificatesRepository(ctx.db)
    assert await certificates.last_serial(prefix) == 2

    async def not_asked() -> int:
        raise AssertionError("the counter exists: what was issued before it is not read again")

    assert await CertificateCountersRepository(ctx.db).next(prefix, start_after=not_asked) == 3
