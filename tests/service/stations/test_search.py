"""Station search by service, called on the service without HTTP."""

from __future__ import annotations

from service.catalog import service as catalog
from service.common.context import Context
from service.stations.service import search_stations
from tests.factories import make_station


async def test_search_by_service_fills_every_page_until_the_last(ctx: Context) -> None:
    await catalog.seed_catalog(ctx)
    capability = (await catalog.get_service(ctx=ctx, code="funeral_subsidy")).capability
    others = [c for c in ("elderly_care", "child_welfare", "disability_support") if c != capability]
    for n in range(1, 4):  # the lowest codes do not offer it: a filter after paging left page one empty
        await make_station(ctx, code=f"34100200{n}", name=f"甲{n}街道社工站", capabilities=others)
    for n in range(4, 9):
        await make_station(ctx, code=f"34100200{n}", name=f"乙{n}街道社工站", capabilities=[capability])
    pages, cursor = [], None
    while True:
        page = await search_stations(ctx=ctx, service="funeral_subsidy", limit=2, cursor=cursor)
        pages.append([s.code for s in page.items])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == [["341002004", "341002005"], ["341002006", "341002007"], ["341002008"]]
