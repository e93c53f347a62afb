"""Newest-first pages read in time windows hold exactly what one plain sorted query holds, page by page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.cases import queries
from service.cases.repository import listing
from service.common.context import Context
from service.common.models import Principal
from tests.factories import act_on, make_case, make_staff, make_station, make_wechat_resident, principal_of

OTHER_TOWNSHIP = "341002002"
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
# Filing times: ties (several cases at one instant), gaps of seconds, hours, weeks and a year,
# and one case filed "after" the listing clock (a clock running ahead on another process).
OFFSETS = [
    timedelta(minutes=5),
    timedelta(0),
    timedelta(0),
    -timedelta(seconds=1),
    -timedelta(minutes=3),
    -timedelta(minutes=3),
    -timedelta(minutes=3),
    -timedelta(hours=2),
    -timedelta(hours=9),
    -timedelta(days=1),
    -timedelta(days=1),
    -timedelta(days=3, hours=4),
    -timedelta(days=20),
    -timedelta(days=20),
    -timedelta(days=21),
    -timedelta(days=90),
    -timedelta(days=400),
    -timedelta(days=400),
    -timedelta(days=401),
]


@pytest.fixture
async def filed(ctx: Context) -> dict[str, Any]:
    here = await make_station(ctx)
    there = await make_station(ctx, code=OTHER_TOWNSHIP, name="老街街道社工站", point=(118.33, 29.71))
    residents = [await make_wechat_resident(ctx), await make_wechat_resident(ctx)]
    for i, offset in enumerate(OFFSETS):
        ctx.clock = lambda at=NOW + offset: at
        case = await make_case(ctx, residents[i % 2], division_code=OTHER_TOWNSHIP if i % 3 == 0 else "341002001")
        if i % 4 == 1:  # a cancelled case has no due time: sorted by due time, those come first
            await act_on(ctx, residents[i % 2], case["id"], "cancel")
    ctx.clock = lambda: NOW
    return {
        "worker": principal_of(await make_staff(ctx, station_id=here.id)),
        "other_worker": principal_of(await make_staff(ctx, station_id=there.id)),
        "supervisor": principal_of(await make_staff(ctx, role="supervisor", division_prefix="341002")),
        "city": principal_of(await make_staff(ctx, role="supervisor", division_prefix="3410")),
        "province": principal_of(await make_staff(ctx, role="supervisor", division_prefix="34")),
        "resident": principal_of(residents[0]),
        "admin": Principal(subject="admin-paging", role="admin"),
    }


async def _plain(ctx: Context, principal: Principal, query: dict[str, Any]) -> list[str]:
    """The straightforward answer: every matching case in one query, sorted newest first."""
    filt, sort = listing.list_query(queries.list_query_of(principal, query))
    return [d["_id"] async for d in ctx.db["cases"].find(filt, {"_id": 1}).sort(sort)]


async def _pages(ctx: Context, principal: Principal, query: dict[str, Any]) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = await queries.list_cases(
            ctx=ctx, principal=principal, query={**query, **({"cursor": cursor} if cursor else {})}
        )
        pages.append([item["id"] for item in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert len(pages) <= 100, "paging does not end"


async def test_newest_first_pages_match_one_sorted_query(ctx: Context, filed: dict[str, Any]) -> None:
    for who in ("worker", "other_worker", "supervisor", "city", "province", "resident", "admin"):
        expected = await _plain(ctx, filed[who], {})
        assert expected, "the fixture files cases in every scope"
        for limit in (1, 2, 3, 5, 7, 100):
            pages = await _pages(ctx, filed[who], {"limit": limit})
            assert pages == [expected[i : i + limit] for i in range(0, len(expected), limit)], (who, limit)


FILTERS = [
    {"created_from": NOW - timedelta(days=21), "created_to": NOW},
    {"created_from": NOW - timedelta(days=3, hours=4)},
    {"created_to": NOW - timedelta(minutes=3)},
    {"created_to": NOW - timedelta(days=20), "created_from": NOW - timedelta(days=400)},
    {"status": ["dispatched", "unrouted"], "created_to": NOW + timedelta(days=1)},
    {"station": "no-such-station"},
]


async def test_newest_first_pages_with_filters_match_one_sorted_query(ctx: Context, filed: dict[str, Any]) -> None:
    for query in FILTERS:
        for who in ("supervisor", "city", "admin"):
            expected = await _plain(ctx, filed[who], query)
            for limit in (1, 2, 4):
                pages = await _pages(ctx, filed[who], {**query, "limit": limit})
                want = [expected[i : i + limit] for i in range(0, len(expected), limit)] or [[]]
                assert pages == want, (query, who, limit)


async def test_a_cursor_of_the_earlier_shape_still_pages(ctx: Context, filed: dict[str, Any]) -> None:
    from service.common.paging import encode_cursor

    principal = filed["admin"]
    expected = await _plain(ctx, principal, {})
    doc = await ctx.db["cases"].find_one({"_id": expected[4]})
    assert doc is not None
    page = await queries.list_cases(
        ctx=ctx, principal=principal, query={"limit": 3, "cursor": encode_cursor(doc["created_at"], doc["_id"])}
    )
    assert [item["id"] for item in page.items] == expected[5:8]


async def test_every_window_but_the_last_carries_a_bound_on_the_creation_time(
    ctx: Context, filed: dict[str, Any]
) -> None:
    issued: list[dict[str, Any]] = []

    async def find(filt: dict[str, Any], sort: list[tuple[str, int]], n: int) -> list[dict[str, Any]]:
        issued.append(filt)
        return [d async for d in ctx.db["cases"].find(filt).sort(sort).limit(n)]

    conditions = listing.filter_conditions(queries.list_query_of(filed["supervisor"], {}))
    docs, width = await listing.newest_first(find, conditions=conditions, want=3, now=NOW)
    assert len(docs) == 3 and width >= listing.WINDOW_START
    assert all("$gte" in f["created_at"] for f in issued), issued
    # The first filter a planner meets is the time bound (see _with_created).
    assert all(next(iter(f)) == "created_at" for f in issued)
    issued.clear()
    docs, _ = await listing.newest_first(find, conditions=conditions, want=1000, now=NOW)
    assert len(docs) == len(await _plain(ctx, filed["supervisor"], {}))
    assert all("$gte" in f["created_at"] for f in issued[:-1]) and "$gte" not in issued[-1].get("created_at", {})
    assert len(issued) <= 12, "windows widen geometrically"


async def test_pages_by_due_time_match_one_sorted_query(ctx: Context, filed: dict[str, Any]) -> None:
    for who in ("worker", "supervisor", "city", "province", "admin"):
        expected = await _plain(ctx, filed[who], {"sort": "due"})
        # Twice: the first pass leaves each list's mark of where its cases with no due time begin,
        # the second starts from it.
        for _ in range(2):
            for limit in (1, 2, 5):
                pages = await _pages(ctx, filed[who], {"sort": "due", "limit": limit})
                assert pages == [expected[i : i + limit] for i in range(0, len(expected), limit)], (who, limit)
    assert await ctx.db[listing.LIST_MARKS].count_documents({}) == 5


DUE_FILTERS = [
    {"status": ["dispatched", "accepted", "in_progress", "unrouted"]},
    {"status": ["cancelled", "dispatched"]},
    {"created_from": NOW - timedelta(days=21), "status": ["dispatched", "unrouted"]},
]


async def test_pages_by_due_time_with_state_filters_match_one_sorted_query(ctx: Context, filed: dict[str, Any]) -> None:
    for query in DUE_FILTERS:
        for who in ("worker", "supervisor", "city", "province", "admin"):
            expected = await _plain(ctx, filed[who], {**query, "sort": "due"})
            for limit in (2, 5):
                pages = await _pages(ctx, filed[who], {**query, "sort": "due", "limit": limit})
                want = [expected[i : i + limit] for i in range(0, len(expected), limit)] or [[]]
                assert pages == want, (query, who, limit)


async def test_a_queue_by_due_time_never_reads_cases_without_a_due_time(ctx: Context, filed: dict[str, Any]) -> None:
    issued: list[dict[str, Any]] = []

    async def find(filt: dict[str, Any], sort: list[tuple[str, int]], n: int) -> list[dict[str, Any]]:
        issued.append(filt)
        return [d async for d in ctx.db["cases"].find(filt).sort(sort).limit(n)]

    open_states = ["dispatched", "accepted", "in_progress", "unrouted"]
    for who in ("worker", "supervisor", "city", "province", "admin"):
        conditions = listing.filter_conditions(queries.list_query_of(filed[who], {"status": open_states}))
        docs, _ = await listing.soonest_due_first(find, conditions=conditions, want=1000, now=NOW)
        assert [d["_id"] for d in docs] == await _plain(ctx, filed[who], {"status": open_states, "sort": "due"})
    assert issued
    for filt in issued:
        # One state per query (an equality prefix of an index), and a bound on the due time
        # except for the query of cases with none (which the state's prefix keeps to that state).
        assert isinstance(filt["status"], str), filt
        due = filt["next_due_at"]
        assert due is None or set(due) & {"$lt", "$gt", "$gte"}, filt
    windows = [f["next_due_at"] for f in issued if f["next_due_at"] is not None]
    assert all("$lt" in w for w in windows if "$gte" not in w and "$gt" not in w)


async def test_a_list_shorter_than_a_page_reaches_its_oldest_case_in_a_few_windows(ctx: Context) -> None:
    # Fifteen cases of one station: fourteen in the last minutes, one five years ago. After each window
    # with nothing in it the next is eight times as wide, so the first page reaches back to 2000 in ten
    # queries (by the density of the first window alone the windows only doubled: twenty-two).
    col = ctx.db["sparse_list"]
    filed = [NOW - timedelta(seconds=10 * i) for i in range(14)] + [NOW - timedelta(days=5 * 365)]
    await col.insert_many([{"_id": f"c{i:02d}", "station_id": "s1", "created_at": at} for i, at in enumerate(filed)])
    await col.insert_one({"_id": "other", "station_id": "s2", "created_at": NOW - timedelta(days=2)})
    issued: list[dict[str, Any]] = []

    async def find(filt: dict[str, Any], sort: list[tuple[str, int]], n: int) -> list[dict[str, Any]]:
        issued.append(filt)
        return [d async for d in col.find(filt).sort(sort).limit(n)]

    docs, _ = await listing.newest_first(find, conditions=[{"station_id": "s1"}], want=21, now=NOW)
    assert [d["_id"] for d in docs] == [f"c{i:02d}" for i in range(15)]
    assert len(issued) <= 10, len(issued)
    assert "$gte" not in issued[-1].get("created_at", {})  # the last reaches back without a lower bound
