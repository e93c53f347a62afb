"""Reference figures: one per division and year (a later import replaces it in place, even two
imports at once), found by key, listed under a division prefix in division order, paged by id.

Figures are put in by the administrators' CSV import (the workforce service); the repository
is then read directly.
"""

from __future__ import annotations

import asyncio
from typing import Any

from service.common.context import Context
from service.common.ids import is_id
from service.common.models import SYSTEM, utcnow
from service.workforce.models import FigureFilter
from service.workforce.repository.store import WorkforceRepository
from tests.factories import import_reference_figures

SOURCE = "2024年安徽统计年鉴"


def row(division: str, year: int, older: int | None = None, beds: int | None = None) -> dict[str, Any]:
    """A figures CSV row."""
    return {"division": division, "year": year, "older_population": older, "care_home_beds": beds, "source": SOURCE}


ROWS = [
    row("341002", 2024, older=52_000, beds=900),  # 屯溪区
    row("341000", 2024, older=310_000),  # 黄山市
    row("341002", 2023, older=50_500, beds=880),
    row("340102", 2024, older=120_000, beds=2_100),  # 合肥市瑶海区
]


async def test_figures_read_back_by_division_and_year(ctx: Context) -> None:
    now = utcnow().replace(microsecond=0)
    ctx.clock = lambda: now
    assert (await import_reference_figures(ctx, ROWS)).written
    repo = WorkforceRepository(ctx.db)
    found = await repo.figures_for([("341002", 2024), ("341002", 2022), ("341000", 2024)])
    assert set(found) == {("341002", 2024), ("341000", 2024)}
    tunxi = found[("341002", 2024)]
    assert is_id(tunxi.id)
    assert (tunxi.division, tunxi.year, tunxi.older_population, tunxi.care_home_beds, tunxi.source) == (
        "341002",
        2024,
        52_000,
        900,
        SOURCE,
    )
    assert (tunxi.imported_at, tunxi.imported_by) == (now, SYSTEM.subject)
    assert found[("341000", 2024)].care_home_beds is None
    assert await repo.figures_for([]) == {}


async def test_a_later_import_replaces_the_figure_of_its_division_and_year_in_place(ctx: Context) -> None:
    await import_reference_figures(ctx, ROWS)
    repo = WorkforceRepository(ctx.db)
    before = (await repo.figures_for([("341002", 2024)]))[("341002", 2024)]
    report = await import_reference_figures(ctx, [row("341002", 2024, older=53_000), row("341003", 2024, beds=40)])
    assert (report.to_create, report.to_update, report.written) == (1, 1, True)
    after = (await repo.figures_for([("341002", 2024)]))[("341002", 2024)]
    assert after.id == before.id and (after.older_population, after.care_home_beds) == (53_000, None)
    assert await repo.figures.count_documents({}) == len(ROWS) + 1


async def test_two_imports_at_once_leave_one_figure_per_division_and_year(ctx: Context) -> None:
    fresh = [row("341021", 2024, older=70_000), row("341022", 2024, older=60_000)]
    await asyncio.gather(*(import_reference_figures(ctx, fresh) for _ in range(3)))
    repo = WorkforceRepository(ctx.db)
    assert await repo.figures.count_documents({}) == 2
    assert set(await repo.figures_for([("341021", 2024), ("341022", 2024)])) == {("341021", 2024), ("341022", 2024)}


async def test_figures_under_a_prefix_come_in_division_order_and_pages_continue(ctx: Context) -> None:
    await import_reference_figures(ctx, ROWS)
    repo = WorkforceRepository(ctx.db)
    assert [f.division for f in await repo.figures_under("3410", 2024)] == ["341000", "341002"]
    assert [f.division for f in await repo.figures_under("34", 2024)] == ["340102", "341000", "341002"]
    assert [(f.division, f.year) for f in await repo.figures_under("341002", 2023)] == [("341002", 2023)]
    assert await repo.figures_under("3410", 2022) == []
    assert await repo.figures_under(".*", 2024) == []  # not a division code: nothing, never a pattern
    first = await repo.list_figures(FigureFilter(), limit=3, cursor=None)
    rest = await repo.list_figures(FigureFilter(), limit=3, cursor=first.next_cursor)
    ids = [f.id for f in first.items + rest.items]
    assert len(first.items) == 3 and len(rest.items) == 1 and rest.next_cursor is None
    assert ids == sorted(ids) and len(set(ids)) == len(ROWS)
    of_2024 = await repo.list_figures(FigureFilter(year=2024), limit=2, cursor=None)
    more = await repo.list_figures(FigureFilter(year=2024), limit=2, cursor=of_2024.next_cursor)
    assert len(of_2024.items) == 2 and [f.year for f in of_2024.items + more.items] == [2024] * 3
