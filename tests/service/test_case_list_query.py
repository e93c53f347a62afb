"""The list query: scope filters that an index can answer, on the real server's planner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.cases.models import region_codes
from service.cases.queries import list_query_of
from service.cases.repository.listing import (
    SORTS,
    ListMarks,
    all_of,
    division_range,
    filter_conditions,
    list_query,
    newest_first,
    read_list,
)
from service.common.context import Context
from service.common.ids import new_id
from service.common.models import Principal
from tests.factories import make_case, make_staff, make_station, make_wechat_resident, principal_of

# For the pure checks of the filter's shape; the planner test below uses real accounts.
SUPERVISOR = Principal(subject=new_id(), role="supervisor", division_prefix="341021")
STATION = new_id()
WORKER = Principal(subject=new_id(), role="worker", station_id=STATION)


def _in_range(code: str, rng: dict[str, str]) -> bool:
    return rng["$gte"] <= code < rng["$lt"]


@pytest.mark.parametrize(
    ("code", "inside"),
    [
        ("341021", True),
        ("341021100", True),
        ("341021100001", True),
        ("341022001", False),
        ("341020999", False),
        ("34102", False),
        ("340102001", False),
    ],
)
def test_division_range_holds_exactly_the_codes_under_the_prefix(code: str, inside: bool) -> None:
    assert _in_range(code, division_range("341021")) is inside


def test_all_of_merges_distinct_fields_and_keeps_and_for_repeated_ones() -> None:
    assert all_of([{"station_id": "a"}, {}, {"status": "dispatched"}]) == {"station_id": "a", "status": "dispatched"}
    both = [{"$or": [{"a": 1}]}, {"$or": [{"b": 1}]}]
    assert all_of(both) == {"$and": both}
    assert all_of([{}]) == {}


def test_list_query_has_no_regex_and_no_and_for_a_plain_scope() -> None:
    filt, sort = list_query(list_query_of(SUPERVISOR, {"limit": 20}))
    assert filt == {"county_code": "341021"}  # a county: an equality an index serves with the time range
    assert sort == [("created_at", -1), ("_id", -1)]
    city = Principal(subject=new_id(), role="supervisor", division_prefix="3410")
    filt, _ = list_query(list_query_of(city, {"limit": 20}))
    assert filt == {"city_code": "341000"}  # a city: the equality on the code every case stores
    filt, sort = list_query(list_query_of(WORKER, {"sort": "due"}))
    assert filt == {"station_id": STATION}
    assert sort == [("next_due_at", 1), ("_id", 1)]


def _stages(plan: dict[str, Any]) -> list[str]:
    out, node = [], plan
    while isinstance(node, dict):
        out.append(node.get("stage", ""))
        node = node.get("inputStage")
    return out


@pytest.mark.parametrize(
    ("role", "query"),
    [
        ("supervisor", {}),
        ("supervisor", {"sort": "due"}),
        ("worker", {}),
        ("worker", {"sort": "due"}),
        ("worker", {"status": "dispatched", "sort": "due"}),
    ],
)
async def test_list_queries_are_answered_from_an_index(ctx: Context, role: str, query: dict[str, Any]) -> None:
    # Two stations of 屯溪区 with cases filed at each, as residents file them.
    here = await make_station(ctx)
    await make_station(ctx, code="341002002", name="老街街道社工站", point=(118.33, 29.71))
    resident = await make_wechat_resident(ctx)
    for i in range(6):
        await make_case(ctx, resident, division_code="341002001" if i % 2 else "341002002")
    if role == "worker":
        member = await make_staff(ctx, station_id=here.id)
    else:
        member = await make_staff(ctx, role="supervisor", division_prefix="341002")
    filt, sort = list_query(list_query_of(principal_of(member), query))
    limit = 20
    explained = await ctx.db.command(
        "explain", {"find": "cases", "filter": filt, "sort": dict(sort), "limit": limit + 1}, verbosity="queryPlanner"
    )
    stages = _stages(explained["queryPlanner"]["winningPlan"])
    assert "IXSCAN" in stages and "COLLSCAN" not in stages, stages


@pytest.mark.parametrize("role", ["worker", "resident", "admin"])
async def test_newest_first_windows_are_answered_from_an_index(ctx: Context, role: str) -> None:
    here = await make_station(ctx)
    resident = await make_wechat_resident(ctx)
    for _ in range(3):
        await make_case(ctx, resident)
    if role == "worker":
        principal = principal_of(await make_staff(ctx, station_id=here.id))
    elif role == "resident":
        principal = principal_of(resident)
    else:
        principal = Principal(subject=new_id(), role="admin")
    issued: list[dict[str, Any]] = []

    async def find(filt: dict[str, Any], sort: list[tuple[str, int]], n: int) -> list[dict[str, Any]]:
        issued.append(filt)
        return [d async for d in ctx.db["cases"].find(filt).sort(sort).limit(n)]

    await newest_first(find, conditions=filter_conditions(list_query_of(principal, {})), want=2, now=ctx.now())
    explained = await ctx.db.command(
        "explain",
        {"find": "cases", "filter": issued[0], "sort": dict(SORTS["newest"]), "limit": 2},
        verbosity="queryPlanner",
    )
    stages = _stages(explained["queryPlanner"]["winningPlan"])
    assert "IXSCAN" in stages and "COLLSCAN" not in stages, stages


async def test_a_city_and_the_province_read_about_a_page_of_keys_on_the_embedded_server(ctx: Context) -> None:
    # 600 cases filed one a minute, round the counties of three cities and one county of another province.
    counties = ["341002", "341021", "340102", "340202", "310101"]
    now = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    docs = []
    for i in range(600):
        at, county = now - timedelta(minutes=i), counties[i % len(counties)]
        division = f"{county}{100 + i % 3}"
        docs.append(
            {
                "_id": new_id(at),
                "number": f"BENCH{i:06d}",
                "station_id": f"station-{division}",
                "division": division,
                "county_code": county,
                **region_codes(division),
                "status": ("dispatched", "accepted", "closed")[i % 3],
                "created_at": at,
                "next_due_at": None if i % 3 == 2 else at + timedelta(hours=24),
            }
        )
    for batch in range(0, len(docs), 100):
        await ctx.db["cases"].insert_many(docs[batch : batch + 100])
    read: list[int] = []

    async def find(filt: dict[str, Any], sort: list[tuple[str, int]], n: int) -> list[dict[str, Any]]:
        explained = await ctx.db.command(
            "explain", {"find": "cases", "filter": filt, "sort": dict(sort), "limit": n}, verbosity="executionStats"
        )
        read.append(explained["executionStats"]["totalKeysExamined"] + explained["executionStats"]["totalDocsExamined"])
        return [d async for d in ctx.db["cases"].find(filt).sort(sort).limit(n)]

    for prefix in ("3410", "34", "341002"):
        principal = Principal(subject=new_id(), role="supervisor", division_prefix=prefix)
        for query in ({}, {"sort": "due", "status": ["dispatched", "accepted"]}, {"sort": "due"}):
            listing_query = list_query_of(principal, query)
            expected = [d["_id"] for d in docs if d["division"].startswith(prefix)]
            for _ in range(2):  # the second time from the list's mark of where its no-due part begins
                read.clear()
                page, _ = await read_list(find, listing_query, want=21, now=now, marks=ListMarks(ctx.db))
                filt, sort = list_query(listing_query)
                assert [d["_id"] for d in page] == [
                    d["_id"] async for d in ctx.db["cases"].find(filt).sort(sort).limit(21)
                ], (prefix, query)
                assert all(d["_id"] in expected for d in page)
            # Keys and documents read, for a page of 21: a few pages' worth, not the scope's 120 to 480.
            assert sum(read) <= 8 * 21, (prefix, query, read)
    # The division range beside the time range, as a city was read before: every case of the window.
    read.clear()
    await newest_first(find, conditions=[{"division": division_range("3410")}], want=21, now=now)
    assert sum(read) > 8 * 21
