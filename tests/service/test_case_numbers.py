"""Case numbers: HM + county + local date + a per-county daily sequence, unique under concurrency."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from service.cases.numbers import CASE_NUMBER, next_case_number
from service.common.context import Context


async def test_numbers_count_per_county_and_day(ctx: Context) -> None:
    day = date(2026, 11, 28)
    assert await next_case_number(ctx=ctx, county_code="340102", local_date=day) == "HM3401022026112800001"
    assert await next_case_number(ctx=ctx, county_code="340102", local_date=day) == "HM3401022026112800002"
    assert await next_case_number(ctx=ctx, county_code="341002", local_date=day) == "HM3410022026112800001"
    assert await next_case_number(ctx=ctx, county_code="340102", local_date=date(2026, 11, 29)) == (
        "HM3401022026112900001"
    )
    assert CASE_NUMBER.match("HM3401022026112800001")


async def test_fifty_concurrent_numbers_are_unique_and_gap_free(ctx: Context) -> None:
    day = date(2026, 11, 28)
    numbers = await asyncio.gather(
        *(next_case_number(ctx=ctx, county_code="340102", local_date=day) for _ in range(50))
    )
    assert len(set(numbers)) == 50
    assert sorted(int(n[-5:]) for n in numbers) == list(range(1, 51))


async def test_county_code_must_be_six_digits(ctx: Context) -> None:
    with pytest.raises(ValueError):
        await next_case_number(ctx=ctx, county_code="3401", local_date=date(2026, 11, 28))
