"""A county supervisor's cases are read as an equality on the case's county, which must hold exactly
the cases under the county's division code (routed to its stations or waiting in its county queue)."""

from __future__ import annotations

from typing import Any

from service.cases import queries
from service.cases.repository import listing
from service.common.context import Context
from service.common.models import Principal
from tests.factories import make_case, make_staff, make_station, make_wechat_resident, principal_of

XI_TOWNSHIP = "341021100"  # 歙县徽城镇


async def _listed(ctx: Context, principal: Principal, query: dict[str, Any]) -> list[str]:
    ids, cursor = [], None
    while True:
        page = await queries.list_cases(
            ctx=ctx, principal=principal, query={**query, "limit": 2, **({"cursor": cursor} if cursor else {})}
        )
        ids += [item["id"] for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return ids


async def test_a_county_supervisor_lists_exactly_the_cases_under_the_county_code(ctx: Context) -> None:
    await make_station(ctx)  # 屯溪区昱东街道 (341002)
    await make_station(ctx, code=XI_TOWNSHIP, name="徽城镇社工站", point=(118.43, 29.87))
    resident = await make_wechat_resident(ctx)
    # Filed at townships with a station and at one without (routed within its county).
    for division in ("341002001", XI_TOWNSHIP, "341002002"):
        await make_case(ctx, resident, division_code=division)
    cases = ctx.db["cases"]
    for county in ("341002", "341021"):
        scope = queries.scope_of(principal_of(await make_staff(ctx, role="supervisor", division_prefix=county)))
        assert listing.scope_filter(scope) == {"county_code": county}
        under = {d["_id"] async for d in cases.find({"division": listing.division_range(county)}, {"_id": 1})}
        assert under, county
        supervisor = principal_of(await make_staff(ctx, role="supervisor", division_prefix=county))
        for query in ({}, {"sort": "due"}, {"sort": "due", "status": ["unrouted", "dispatched"]}):
            listed = await _listed(ctx, supervisor, query)
            assert len(listed) == len(set(listed))
            wanted = under
            if "status" in query:
                wanted = {
                    d["_id"]
                    async for d in cases.find(
                        {"_id": {"$in": list(under)}, "status": {"$in": ["unrouted", "dispatched"]}}
                    )
                }
            assert set(listed) == wanted, (county, query)
    # A city's supervisor (a shorter prefix) still reads the division range: both counties' cases.
    city = principal_of(await make_staff(ctx, role="supervisor", division_prefix="3410"))
    assert "division" in listing.scope_filter(queries.scope_of(city))
    assert set(await _listed(ctx, city, {})) == {d["_id"] async for d in cases.find({}, {"_id": 1})}
