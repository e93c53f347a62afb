"""A county's, a city's and the province's supervisor read their cases as an equality on the code the
case stores for that level (``county_code``, ``city_code``, ``province_code``), which must hold exactly
the cases under the supervisor's division prefix (routed to its stations or waiting in a county queue)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from service.cases import queries
from service.cases.models import DIVISION_PROVINCE, region_codes
from service.cases.repository import listing
from service.common.context import Context
from service.common.models import Principal
from service.storage.migrations import CASE_REGIONS, MIGRATIONS, case_region_codes, give_cases_regions
from tests.factories import act_on, make_case, make_staff, make_station, make_wechat_resident, principal_of

XI_TOWNSHIP = "341021100"  # 歙县徽城镇
HEFEI_TOWNSHIP = "340102001"  # 合肥市瑶海区


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
    # A city's supervisor (a shorter prefix) reads the city's code: both counties' cases.
    city = principal_of(await make_staff(ctx, role="supervisor", division_prefix="3410"))
    assert listing.scope_filter(queries.scope_of(city)) == {"city_code": "341000"}
    assert set(await _listed(ctx, city, {})) == {d["_id"] async for d in cases.find({}, {"_id": 1})}


async def _under(ctx: Context, prefix: str) -> set[str]:
    return {d["_id"] async for d in ctx.db["cases"].find({"division": listing.division_range(prefix)}, {"_id": 1})}


async def test_city_and_province_supervisors_list_exactly_the_cases_under_their_prefix(ctx: Context) -> None:
    await make_station(ctx)  # 屯溪区 (341002), city 3410
    await make_station(ctx, code=XI_TOWNSHIP, name="徽城镇社工站", point=(118.43, 29.87))
    hefei = await make_station(ctx, code=HEFEI_TOWNSHIP, name="瑶海区社工站", point=(117.31, 31.86))
    resident = await make_wechat_resident(ctx)
    filed = [await make_case(ctx, resident, division_code=d) for d in ("341002001", XI_TOWNSHIP, HEFEI_TOWNSHIP)]
    # A case dispatched by hand to another city's station moves to that city's lists.
    province = principal_of(await make_staff(ctx, role="supervisor", division_prefix="34"))
    await act_on(ctx, province, filed[0]["id"], "dispatch", station_id=hefei.id)
    assert (await _under(ctx, "3401")) == {filed[0]["id"], filed[2]["id"]}
    expected_filters = {
        "3410": {"city_code": "341000"},
        "3401": {"city_code": "340100"},
        "3400": {"city_code": "340000"},
        "34": {"province_code": "340000"},
        "341": {"division": listing.division_range("341")},
        "34100": {"division": listing.division_range("34100")},
        "3410021": {"division": listing.division_range("3410021")},
    }
    for prefix, expected in expected_filters.items():
        supervisor = principal_of(await make_staff(ctx, role="supervisor", division_prefix=prefix))
        assert listing.scope_filter(queries.scope_of(supervisor)) == expected, prefix
        for query in ({}, {"sort": "due"}, {"sort": "due", "status": ["dispatched", "unrouted"]}):
            listed = await _listed(ctx, supervisor, query)
            assert len(listed) == len(set(listed)) and set(listed) == await _under(ctx, prefix), (prefix, query)


def test_region_codes_are_the_divisions_first_digits() -> None:
    assert region_codes("341021100") == {"city_code": "341000", "province_code": "340000"}
    assert region_codes("341021") == {"city_code": "341000", "province_code": "340000"}
    assert region_codes(DIVISION_PROVINCE) == {"city_code": "340000", "province_code": "340000"}
    assert region_codes("310101002") == {"city_code": "310100", "province_code": "310000"}
    assert region_codes(None) == {"city_code": None, "province_code": None}
    for division in ("341021100", DIVISION_PROVINCE, "310101002", None, "3"):
        assert case_region_codes(division) == region_codes(division)  # the migration writes what the area does


async def test_cases_stored_before_the_codes_are_given_them_once(ctx: Context) -> None:
    await make_station(ctx)
    await make_station(ctx, code=HEFEI_TOWNSHIP, name="瑶海区社工站", point=(117.31, 31.86))
    resident = await make_wechat_resident(ctx)
    for division in ("341002001", HEFEI_TOWNSHIP, HEFEI_TOWNSHIP):
        await make_case(ctx, resident, division_code=division)
    cases = ctx.db["cases"]
    stored = {d["_id"]: (d["city_code"], d["province_code"]) async for d in cases.find({})}
    assert set(stored.values()) == {("341000", "340000"), ("340100", "340000")}
    # As an older release stored them: no codes, and the migration not yet run.
    await cases.update_many({}, {"$unset": {"city_code": "", "province_code": ""}})
    await ctx.db[MIGRATIONS].delete_one({"_id": CASE_REGIONS})
    assert await give_cases_regions(ctx.db) == 3
    assert {d["_id"]: (d["city_code"], d["province_code"]) async for d in cases.find({})} == stored
    assert await give_cases_regions(ctx.db) == 0
    # A process of the older release, still serving during a rolling upgrade, files a case without
    # the codes: the next start within the day gives them; a start after the day no longer looks.
    late = await make_case(ctx, resident, division_code=HEFEI_TOWNSHIP)
    await cases.update_one({"_id": late["id"]}, {"$unset": {"city_code": "", "province_code": ""}})
    later = datetime.now(UTC) + timedelta(days=2)
    assert await give_cases_regions(ctx.db, now=later) == 0
    assert await give_cases_regions(ctx.db) == 1
    assert (await cases.find_one({"_id": late["id"]}))["city_code"] == "340100"
