"""By due time, the cases with no due time come first, by id, then the rest by due time: read in windows
(of the time the ids carry, then of the due time) from the list's marks or the cursor, they page exactly as
one sorted query whatever the marks say, and read about a page of keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import ASCENDING

from service.cases.repository import listing
from service.common.context import Context
from service.common.ids import new_id
from service.storage.indexes import ensure_indexes
from service.storage.migrations import date_list_marks

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
COLLECTION = "no_due_windows"
SCOPE = [{"station_id": "s1"}]
SORT = [("next_due_at", 1), ("_id", 1)]


async def _collection(ctx: Context, docs: list[dict[str, Any]]) -> Any:
    col = ctx.db[COLLECTION]
    await col.create_index([("station_id", ASCENDING), ("next_due_at", ASCENDING), ("_id", ASCENDING)])
    await col.create_index(
        [("station_id", ASCENDING), ("status", ASCENDING), ("next_due_at", ASCENDING), ("_id", ASCENDING)]
    )
    await col.insert_many(docs)
    return col


def _history(at: datetime, status: str = "closed", station: str = "s1", **extra: Any) -> dict[str, Any]:
    return {"_id": new_id(at), "station_id": station, "status": status, "next_due_at": None, **extra}


def _spread() -> list[dict[str, Any]]:
    """Cases with no due time made over nine years: several in one second, gaps of seconds to years, ids
    that carry no time (sorting before and after the made ones), another station's, and some with a due time."""
    offsets = [
        -timedelta(days=3300), -timedelta(days=400), -timedelta(days=400), -timedelta(days=399, hours=23),
        -timedelta(days=90), -timedelta(days=21), -timedelta(days=20, seconds=1), -timedelta(days=20),
        -timedelta(hours=9), -timedelta(hours=2), -timedelta(minutes=3), -timedelta(seconds=1), timedelta(0),
        timedelta(minutes=5), timedelta(days=3),
    ]  # fmt: skip
    docs = [_history(NOW + offset, status="cancelled" if i % 3 else "closed") for i, offset in enumerate(offsets)]
    docs += [_history(NOW - timedelta(days=20)) for _ in range(4)]  # four in one second
    docs += [_history(NOW - timedelta(days=5), station="s2") for _ in range(3)]
    docs += [
        {"_id": "0-legacy", "station_id": "s1", "status": "closed", "next_due_at": None},
        {"_id": "zz-legacy", "station_id": "s1", "status": "closed", "next_due_at": None},
    ]
    docs += [
        {"_id": new_id(NOW - timedelta(days=d)), "station_id": "s1", "status": "dispatched",
         "next_due_at": NOW + timedelta(hours=h)}
        for d, h in ((1, -30), (2, 5), (3, 5), (4, 5), (30, 400), (40, -2000), (41, -2000), (5, 0.01), (6, 30000))
    ]  # fmt: skip
    return docs


async def _pages(ctx: Context, col: Any, conditions: list[dict[str, Any]], limit: int, marks: Any) -> list[list[str]]:
    """Pages as the service reads them: ``limit + 1`` after the cursor (sort value, id) and the width it carries."""

    async def find(filt: dict[str, Any], sort: list[tuple[str, int]], n: int) -> list[dict[str, Any]]:
        return [d async for d in col.find(filt).sort(sort).limit(n)]

    pages: list[list[str]] = []
    after, width = None, None
    while True:
        docs, last = await listing.soonest_due_first(
            find, conditions=conditions, want=limit + 1, now=NOW, after=after, width=width, marks=marks
        )
        page = docs[:limit]
        pages.append([d["_id"] for d in page])
        if len(docs) <= limit:
            return pages
        after, width = (page[-1]["next_due_at"], page[-1]["_id"]), last
        assert len(pages) <= 200, "paging does not end"


async def _sorted(col: Any, conditions: list[dict[str, Any]]) -> list[str]:
    return [d["_id"] async for d in col.find(listing.all_of(conditions), {"_id": 1}).sort(SORT)]


@pytest.mark.parametrize("kept_s", [0, listing.MARKS_KEPT_S])
async def test_no_due_pages_match_one_sorted_query_whatever_the_mark_says(ctx: Context, kept_s: float) -> None:
    col = await _collection(ctx, _spread())
    marks = listing.ListMarks(ctx.db, kept_s=kept_s)
    for conditions in (SCOPE, [*SCOPE, {"status": {"$in": ["cancelled", "dispatched"]}}]):
        expected = await _sorted(col, conditions)
        key = listing.marks_key(conditions)
        made = [i for i in expected if len(i) == 24]
        first_due = min(
            [d["next_due_at"] async for d in col.find({**listing.all_of(conditions), "next_due_at": {"$ne": None}})]
        )
        # No marks, the marks left by the first pass, and marks that are wrong: a later case, an id of
        # no case, an id that carries no time, one made ahead of the clock; due times before, after and
        # far after the first.
        wrong = [
            (made[5], NOW + timedelta(hours=5)),
            (new_id(NOW - timedelta(days=1000)), NOW - timedelta(days=3000)),
            ("zz-legacy", NOW + timedelta(days=900)),
            (new_id(NOW + timedelta(days=30)), first_due + timedelta(seconds=1)),
        ]
        for mark in [None, "left", *wrong]:
            if mark is None:
                await ctx.db[listing.LIST_MARKS].delete_many({})
                listing.forget_marks()
            elif mark != "left":
                await marks.put(key, first=mark[0], width_s=1, due_first=mark[1], due_width_s=60)
            for limit in (1, 2, 3, 7, 100):
                pages = await _pages(ctx, col, conditions, limit, marks)
                assert pages == [expected[i : i + limit] for i in range(0, len(expected), limit)], (mark, limit)
            stored = await marks.get(key)
            # The marks follow where the list begins.
            assert stored["first"] == expected[0], mark
            assert stored["due_first"].replace(tzinfo=UTC) == first_due.replace(tzinfo=UTC), mark
    # And with no marks at all (a caller that keeps none).
    expected = await _sorted(col, SCOPE)
    assert await _pages(ctx, col, SCOPE, 4, None) == [expected[i : i + 4] for i in range(0, len(expected), 4)]


async def test_a_first_page_by_due_time_reads_about_a_page_of_the_history(ctx: Context) -> None:
    # A dense history: 600 cases closed one a second a year ago, 600 more one a second an hour ago.
    docs = [_history(NOW - timedelta(days=365) + timedelta(seconds=i)) for i in range(600)]
    docs += [_history(NOW - timedelta(hours=1) + timedelta(seconds=i)) for i in range(600)]
    col = await _collection(ctx, docs)
    marks = listing.ListMarks(ctx.db)
    read: list[int] = []

    async def find(filt: dict[str, Any], sort: list[tuple[str, int]], n: int) -> list[dict[str, Any]]:
        explained = await ctx.db.command(
            "explain", {"find": COLLECTION, "filter": filt, "sort": dict(sort), "limit": n}, verbosity="executionStats"
        )
        read.append(explained["executionStats"]["totalKeysExamined"])
        return [d async for d in col.find(filt).sort(sort).limit(n)]

    expected = await _sorted(col, SCOPE)
    first, _ = await listing.soonest_due_first(find, conditions=SCOPE, want=21, now=NOW, marks=marks)
    assert [d["_id"] for d in first] == expected[:21]
    assert sum(read) == len(docs)  # no mark yet: the one query reads every case with no due time
    read.clear()
    again, width = await listing.soonest_due_first(find, conditions=SCOPE, want=21, now=NOW, marks=marks)
    assert [d["_id"] for d in again] == expected[:21]
    assert sum(read) <= 3 * 21, read
    # The next page from its cursor reads about a page; a page across the year's gap reads the window
    # that ends the gap, which holds the hour's cases (windows widen over the gap: none reads earlier ones).
    for after, most in ((again[-1]["_id"], 4 * 21), (expected[590], 9 + 600)):
        read.clear()
        docs_after, _ = await listing.soonest_due_first(
            find, conditions=SCOPE, want=21, now=NOW, after=(None, after), width=width, marks=marks
        )
        start = expected.index(after) + 1
        assert [d["_id"] for d in docs_after] == expected[start : start + 21]
        assert sum(read) <= most, read


async def test_kept_marks_are_read_once_and_left_only_when_they_move(ctx: Context) -> None:
    # The dense history of the test above: with no mark a first page reads every case with no due time.
    docs = [_history(NOW - timedelta(days=365) + timedelta(seconds=i)) for i in range(600)]
    docs += [_history(NOW - timedelta(hours=1) + timedelta(seconds=i)) for i in range(600)]
    col = await _collection(ctx, docs)
    marks = listing.ListMarks(ctx.db)
    read: list[int] = []

    async def find(filt: dict[str, Any], sort: list[tuple[str, int]], n: int) -> list[dict[str, Any]]:
        explained = await ctx.db.command(
            "explain", {"find": COLLECTION, "filter": filt, "sort": dict(sort), "limit": n}, verbosity="executionStats"
        )
        read.append(explained["executionStats"]["totalKeysExamined"])
        return [d async for d in col.find(filt).sort(sort).limit(n)]

    expected = await _sorted(col, SCOPE)
    first, _ = await listing.soonest_due_first(find, conditions=SCOPE, want=21, now=NOW, marks=marks)
    assert [d["_id"] for d in first] == expected[:21]
    stored = await ctx.db[listing.LIST_MARKS].find_one({"_id": listing.marks_key(SCOPE)})
    assert stored is not None and stored["first"] == expected[0]
    # Gone from the store, still kept: the next first page starts from the kept marks, reads about a
    # page, and leaves none (they did not move).
    await ctx.db[listing.LIST_MARKS].delete_many({})
    for _ in range(2):
        read.clear()
        again, _ = await listing.soonest_due_first(find, conditions=SCOPE, want=21, now=NOW, marks=marks)
        assert [d["_id"] for d in again] == expected[:21]
        assert sum(read) <= 3 * 21, read
    assert await ctx.db[listing.LIST_MARKS].count_documents({}) == 0
    # Marks that are not kept are read from the store every time: none there, every case is read again.
    read.clear()
    fresh, _ = await listing.soonest_due_first(
        find, conditions=SCOPE, want=21, now=NOW, marks=listing.ListMarks(ctx.db, kept_s=0)
    )
    assert [d["_id"] for d in fresh] == expected[:21]
    assert sum(read) == len(docs)


async def test_marks_kept_from_before_a_change_still_page_exactly(ctx: Context) -> None:
    col = await _collection(ctx, _spread())
    marks = listing.ListMarks(ctx.db)
    key = listing.marks_key(SCOPE)
    expected = await _sorted(col, SCOPE)
    assert await _pages(ctx, col, SCOPE, 4, marks) == [expected[i : i + 4] for i in range(0, len(expected), 4)]
    # Meanwhile the list changes under the kept marks (cases with no due time made before its first, one
    # due before its first due time) and another process leaves marks that are wrong: this one's are
    # kept and no longer say where the list begins.
    due_early = {
        "_id": new_id(NOW),
        "station_id": "s1",
        "status": "dispatched",
        "next_due_at": NOW - timedelta(days=90),
    }
    await col.insert_many(
        [_history(NOW - timedelta(days=3400)), _history(NOW - timedelta(days=3350), status="cancelled"), due_early]
    )
    await ctx.db[listing.LIST_MARKS].update_one(
        {"_id": key}, {"$set": {"first": "zz-legacy", "width_s": 1, "due_first": NOW + timedelta(days=900)}}
    )
    expected = await _sorted(col, SCOPE)
    for limit in (1, 3, 7, 100):
        pages = await _pages(ctx, col, SCOPE, limit, marks)
        assert pages == [expected[i : i + limit] for i in range(0, len(expected), limit)], limit
    # The first page found the list's new start and left it, over the other process's marks.
    stored = await ctx.db[listing.LIST_MARKS].find_one({"_id": key})
    assert stored is not None and stored["first"] == expected[0]
    assert stored["due_first"].replace(tzinfo=UTC) == NOW - timedelta(days=90)


async def test_marks_left_carry_when_and_go_away_once_unmoved_for_the_ttl(ctx: Context) -> None:
    marks = listing.ListMarks(ctx.db, kept_s=0)
    before = datetime.now(UTC)
    await marks.put("station:s1", first="abc", width_s=60.0)
    stored = await ctx.db[listing.LIST_MARKS].find_one({"_id": "station:s1"})
    assert stored is not None and stored["first"] == "abc"
    left_at = stored["left_at"].replace(tzinfo=UTC) if stored["left_at"].tzinfo is None else stored["left_at"]
    assert before - timedelta(seconds=1) <= left_at <= datetime.now(UTC) + timedelta(seconds=1)
    # The marks read back are the marks: when they were left does not disturb where a list starts.
    assert (await marks.get("station:s1"))["first"] == "abc"
    await ensure_indexes(ctx.db)
    ttl = {i["name"]: i.get("expireAfterSeconds") async for i in await ctx.db[listing.LIST_MARKS].list_indexes()}
    assert ttl["left_at_ttl"] == listing.MARKS_UNMOVED_DAYS * 86400


async def test_marks_left_before_they_carried_a_time_are_given_the_time_of_a_start(ctx: Context) -> None:
    await ctx.db[listing.LIST_MARKS].insert_many(
        [{"_id": "old:1", "first": "a"}, {"_id": "old:2", "due_first": NOW, "due_width_s": 60.0}]
    )
    await listing.ListMarks(ctx.db).put("new:1", first="b")
    left = (await ctx.db[listing.LIST_MARKS].find_one({"_id": "new:1"}))["left_at"]
    start = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert await date_list_marks(ctx.db, now=start) == 2
    assert await date_list_marks(ctx.db, now=start) == 0  # once: then every mark carries a time
    stored = {m["_id"]: m async for m in ctx.db[listing.LIST_MARKS].find()}
    assert {k: v["left_at"].replace(tzinfo=UTC) for k, v in stored.items() if k.startswith("old")} == {
        "old:1": start,
        "old:2": start,
    }
    assert stored["new:1"]["left_at"] == left and stored["old:1"]["first"] == "a"
