"""The per-process copy of service types that filing reads: stale for at most a second elsewhere, never here."""

from __future__ import annotations

import dataclasses

from service.catalog import cache as catalog_cache
from service.catalog.service import current_service, retire_service, seed_catalog, update_service
from service.common.context import Context, ProcessState
from service.common.models import SYSTEM


def _second_passes(ctx: Context) -> None:
    copy = ctx.process.service_types
    assert copy is not None
    copy.checked_at -= catalog_cache.CATALOG_CHECK_SECONDS


async def test_a_catalogue_change_counts_at_once_here_and_within_a_second_in_another_process(ctx: Context) -> None:
    await seed_catalog(ctx)
    other = dataclasses.replace(ctx, process=ProcessState())  # another web process on the same database
    before = await current_service(ctx=other, code="elderly_home_visit")
    assert await current_service(ctx=ctx, code="elderly_home_visit") == before

    changed = await update_service(
        ctx=ctx, principal=SYSTEM, code="elderly_home_visit", changes={"description_zh": "新的说明"}
    )
    assert await current_service(ctx=ctx, code="elderly_home_visit") == changed  # the writing process: at once
    assert await current_service(ctx=other, code="elderly_home_visit") == before  # elsewhere: its copy, for now
    _second_passes(other)
    assert await current_service(ctx=other, code="elderly_home_visit") == changed  # the version moved: read again

    await retire_service(ctx=ctx, principal=SYSTEM, code="elderly_home_visit")
    assert (await current_service(ctx=ctx, code="elderly_home_visit")).retired
    _second_passes(other)
    assert (await current_service(ctx=other, code="elderly_home_visit")).retired


async def test_the_copy_is_not_read_again_while_the_catalogue_stays(ctx: Context) -> None:
    await seed_catalog(ctx)
    first = await current_service(ctx=ctx, code="elderly_home_visit")
    _second_passes(ctx)
    assert await current_service(ctx=ctx, code="elderly_home_visit") is first  # same version: the same copy
