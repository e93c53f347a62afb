"""The visit register, read newest first in windows of time on the id, page for page holds the people
registered over years, newest first."""

from __future__ import annotations

from typing import Any

from service.common.context import Context
from service.visits.models import ElderFilter, RegisterScope
from service.visits.repository.elders import EldersRepository
from tests.factories import make_elder, make_station
from tests.helpers_paging import LIMITS, in_pages, made_over_time, read_pages


async def test_the_register_pages_newest_first_across_windows(ctx: Context) -> None:
    station = await make_station(ctx)

    async def make(i: int) -> str:
        return (await make_elder(ctx)).id

    ids = list(reversed(await made_over_time(ctx, make)))
    repo = EldersRepository(ctx.db)
    # A station's, a county's and everyone's active register are read in windows; a city's (a
    # township prefix shorter than a county's) in one query.
    queries = (
        ElderFilter(RegisterScope(station_id=station.id), active=True),
        ElderFilter(RegisterScope(township_prefix=station.code[:6]), active=True),
        ElderFilter(RegisterScope(), active=True),
        ElderFilter(RegisterScope(township_prefix=station.code[:4])),
    )
    for query in queries:
        for limit in LIMITS:

            async def read(cursor: str | None, query: Any = query, limit: int = limit) -> Any:
                page = await repo.list_page(query, limit=limit, cursor=cursor, now=ctx.now())
                return [e.id for e in page.items], page.next_cursor

            assert await read_pages(read) == in_pages(ids, limit), (query, limit)
