"""Visit scheduling and the visit-rate query for 10,000 and 100,000 registered people, against the driver floor.

For each size, on a SecantusDB started here, it measures:

- ``schedule``: :func:`service.visits.schedules.schedule_period` creating one due visit per
  active person (the production path: read the register in batches, skip existing
  schedules, insert the rest), then the same call again (nothing left to create);
- ``floor``: the same reads and inserts issued directly through pymongo (find the active
  people, insert_many the same documents into a fresh collection with the same indexes);
- ``rate``: :func:`service.visits.records.visit_stats` for a county grouping with about 10% misses
  (aggregation plus the names of up to 1,000 misses) against the same aggregation pipeline
  sent directly through pymongo.

It prints each ratio (ours / floor) and how the cost grows with the number of people.

Then, for a province-sized register (500,000 people by default; ``BENCH_VISITS_PROVINCE=N``
sets another size, ``--quick`` uses 20,000), the plan's figure on its own:

- ``weekly rate``: :func:`service.visits.records.visit_stats` for one ISO week grouped by county
  (the weekly tier's rate with the monthly and quarterly tiers beside it, and the first
  100 misses named) against the same aggregation pipeline sent directly through pymongo;
- ``series``: :func:`service.visits.records.weekly_series` for the last 12 weeks against its
  pipeline through pymongo.

Only the schedules the query reads are loaded for it (one per person: 80% weekly for the
week, 15% monthly, 5% quarterly; about 10% not visited), plus the register records of the
people not visited (the misses list names them); loading half a million full register
records and scheduling them would take far longer than the query being measured.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from typing import Any

from pymongo import AsyncMongoClient

from config import load_settings
from service.common.context import Context
from service.common.ids import new_id
from service.common.models import SYSTEM
from service.storage.embedded import EmbeddedMongo
from service.storage.indexes import ensure_indexes
from service.visits.periods import parse_period
from service.visits.schedules import schedule_doc, schedule_period
from service.visits.stats import (
    GROUPS,
    _stats_scope,
    rate_pipeline,
    tier_scopes,
    visit_stats,
    weekly_pipeline,
    weekly_series,
)

SIZES = (10_000, 100_000)
QUICK_SIZES = (2_000, 10_000)
PROVINCE = int(os.environ.get("BENCH_VISITS_PROVINCE", "500000"))
QUICK_PROVINCE = 20_000
PERIOD = parse_period("2026-W48")
COUNTIES = ("340102", "340103", "340104", "340111", "341021", "341022", "341002", "341003")


def elder_docs(n: int) -> list[dict[str, Any]]:
    stations = [(new_id(), f"{COUNTIES[i % len(COUNTIES)]}{i:03d}") for i in range(80)]
    docs = []
    for i in range(n):
        station_id, township = stations[i % len(stations)]
        docs.append(
            {
                "_id": new_id(),
                "name": f"老人{i}",
                "id_card_masked": "3401**********0000",
                "id_card_hash": uuid.uuid4().hex,
                "birth_date": "1940-01-01",
                "gender": "female",
                "township": township,
                "station_id": station_id,
                "county_code": township[:6],
                "city_code": township[:4] + "00",
                "flags": ["disabled"],
                "suggested_tier": "high",
                "tier": "high",
                "previous_tier": None,
                "tier_from": None,
                "active": True,
                "version": 1,
            }
        )
    return docs


async def insert_chunks(col: Any, docs: list[dict[str, Any]], size: int = 2000) -> None:
    for k in range(0, len(docs), size):
        await col.insert_many(docs[k : k + size], ordered=False)


async def floor_schedule(db: Any, at: Any) -> int:
    """Read every active person and insert the same schedule documents, straight through pymongo."""
    target = db["floor_schedules"]
    await target.create_index([("elder_id", 1), ("period", 1)], unique=True, name="elder_period_unique")
    projection = {"name": 1, "tier": 1, "previous_tier": 1, "tier_from": 1, "station_id": 1, "township": 1}
    projection |= {"county_code": 1, "city_code": 1}
    written = 0
    chunk: list[dict[str, Any]] = []

    async def flush() -> int:
        docs = [schedule_doc(e, at, at) for e in chunk]
        for d in docs:
            # Preset for the rate query later: about 10% misses (one county in eight).
            missed = d["township"].startswith("340102")
            d.update(visited=not missed, method=None if missed else "phone")
        await target.insert_many(docs, ordered=False)
        return len(docs)

    async for e in db["elders"].find({"active": True}, projection).sort("_id", 1).batch_size(2000):
        chunk.append(e)
        if len(chunk) >= 2000:
            written += await flush()
            chunk = []
    if chunk:
        written += await flush()
    return written


async def timed(fn: Any, repeat: int = 1, label: str = "") -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - t)
    if label:
        print(f"    {label}: {statistics.median(times):.2f} s", file=sys.stderr, flush=True)
    return statistics.median(times), result


async def one_size(uri: str, n: int, repeat: int) -> dict[str, float]:
    name = f"bench_visits_{n}"
    settings = load_settings(
        {}, env="test", mongodb_uri=uri, mongodb_db=name, redis_url="redis://127.0.0.1:1/0", log_level="WARNING"
    )
    # Long socket timeout: bulk loads of 100,000 documents take longer than the API's store timeout.
    client: Any = AsyncMongoClient(uri, tz_aware=True, socketTimeoutMS=600_000)
    try:
        db = client[name]
        await ensure_indexes(db)
        ctx = Context(settings=settings, db=db, redis=None)
        t = time.perf_counter()
        await insert_chunks(db["elders"], elder_docs(n))
        load_s = time.perf_counter() - t
        at = PERIOD.start
        ours_s, created = await timed(lambda: schedule_period(ctx=ctx, at=at), label=f"{n} schedule")
        again_s, again = await timed(lambda: schedule_period(ctx=ctx, at=at), label=f"{n} rerun")
        floor_s, written = await timed(lambda: floor_schedule(db, at), label=f"{n} floor")
        assert created == written == n and again == 0, (created, written, again)
        # The rate query reads the floor's documents, which carry visited flags (bulk updates are slow here).
        await db["visit_schedules"].drop()
        await db["floor_schedules"].rename("visit_schedules")
        await ensure_indexes(db)
        print(f"    {n} rate set-up done", file=sys.stderr, flush=True)
        sched = db["visit_schedules"]
        match = _stats_scope(SYSTEM, "34")
        scopes = tier_scopes(PERIOD)
        await (await sched.aggregate(rate_pipeline(match, scopes, GROUPS["county"]))).to_list()  # warm the cache
        rate_s, stats = await timed(
            lambda: visit_stats(ctx=ctx, principal=SYSTEM, division="34", period=PERIOD.id, group_by="county"), repeat
        )

        async def floor_rate() -> Any:
            cursor = await sched.aggregate(rate_pipeline(match, scopes, GROUPS["county"]))
            return await cursor.to_list()

        rate_floor_s, raw = await timed(floor_rate, repeat)
        assert stats["due"] == n and sum(r["due"] for r in raw[0]["by_tier"]) == n and stats["rate"] < 1
        print(
            f"{n:>8,} | {load_s:>6.1f} | {ours_s:>9.2f} {floor_s:>9.2f} {ours_s / floor_s:>6.2f}x {again_s:>8.2f} | "
            f"{rate_s * 1000:>9.0f} {rate_floor_s * 1000:>9.0f} {rate_s / rate_floor_s:>6.2f}x | {stats['rate']:.3f}",
            flush=True,
        )
        await client.drop_database(name)
        return {"n": n, "ours": ours_s, "floor": floor_s, "rate": rate_s, "rate_floor": rate_floor_s}
    finally:
        await client.close()


async def main(sizes: tuple[int, ...], repeat: int) -> None:
    server = EmbeddedMongo(":memory:", durable=False)
    uri = await asyncio.to_thread(server.start)
    try:
        print(
            f"{'people':>8} | {'load s':>6} | {'schedule s':>9} {'floor s':>9} {'ratio':>7} {'rerun s':>8} | "
            f"{'rate ms':>9} {'floor ms':>9} {'ratio':>7} | rate"
        )
        # The largest size runs each rate query once to keep the whole run within a few minutes.
        rows = [await one_size(uri, n, repeat if n < 100_000 else 1) for n in sizes]
    finally:
        await asyncio.to_thread(server.stop)
    a, b = rows[0], rows[-1]
    k = b["n"] / a["n"]
    print(
        f"\ngrowth from {a['n']:,} to {b['n']:,} people ({k:.0f}x more): "
        f"schedule x{b['ours'] / a['ours']:.1f} (floor x{b['floor'] / a['floor']:.1f}), "
        f"rate x{b['rate'] / a['rate']:.1f} (floor x{b['rate_floor'] / a['rate_floor']:.1f})"
    )
    print("ratio = ours / the same operations issued directly through pymongo, in the same run.")


def province_schedules(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One schedule per person for the report week (80% weekly, 15% monthly, 5% quarterly), and the missed people."""
    stations = [(new_id(), f"{COUNTIES[i % len(COUNTIES)]}{i:03d}") for i in range(1_500)]
    schedules, missed = [], []
    for i in range(n):
        station_id, township = stations[i % len(stations)]
        tier = "high" if i % 20 < 16 else "key" if i % 20 < 19 else "general"
        elder = {
            "_id": new_id(),
            "name": f"老人{i}",
            "tier": tier,
            "station_id": station_id,
            "township": township,
            "county_code": township[:6],
            "city_code": township[:4] + "00",
        }
        doc = schedule_doc(elder, PERIOD.start, PERIOD.start)
        visited = i % 10 != 3
        doc.update(visited=visited, method=("phone", "video", "home")[i % 3] if visited else None)
        schedules.append(doc)
        if not visited:
            missed.append({**elder, "id_card_hash": uuid.uuid4().hex, "flags": ["alone"], "active": True, "version": 1})
    return schedules, missed


async def province(uri: str, n: int, repeat: int) -> None:
    """The plan's weekly rate and the 12-week series on a province-sized set of schedules, against the driver."""
    name = f"bench_visits_province_{n}"
    settings = load_settings(
        {}, env="test", mongodb_uri=uri, mongodb_db=name, redis_url="redis://127.0.0.1:1/0", log_level="WARNING"
    )
    client: Any = AsyncMongoClient(uri, tz_aware=True, socketTimeoutMS=1_800_000)
    try:
        db = client[name]
        await ensure_indexes(db)
        ctx = Context(settings=settings, db=db, redis=None, clock=lambda: PERIOD.end)
        schedules, missed = province_schedules(n)
        t = time.perf_counter()
        await insert_chunks(db["visit_schedules"], schedules)
        await insert_chunks(db["elders"], missed)
        load_s = time.perf_counter() - t
        print(f"    province {n}: loaded in {load_s:.0f} s", file=sys.stderr, flush=True)
        sched = db["visit_schedules"]
        match = _stats_scope(SYSTEM, "34")
        scopes = tier_scopes(PERIOD)

        async def ours_rate() -> Any:
            return await visit_stats(ctx=ctx, principal=SYSTEM, division="34", period=PERIOD.id, group_by="county")

        async def floor_rate() -> Any:
            return await (await sched.aggregate(rate_pipeline(match, scopes, GROUPS["county"]))).to_list()

        first = parse_period("2026-W37")

        async def ours_series() -> Any:
            return await weekly_series(ctx=ctx, principal=SYSTEM, division="34", weeks=12, until=PERIOD.id)

        async def floor_series() -> Any:
            return await (await sched.aggregate(weekly_pipeline(match, first, PERIOD))).to_list()

        await floor_rate()  # warm the cache once
        rate_s, stats = await timed(ours_rate, repeat, label=f"province {n} weekly rate")
        rate_floor_s, _ = await timed(floor_rate, repeat, label=f"province {n} weekly rate floor")
        series_s, series = await timed(ours_series, repeat, label=f"province {n} series")
        series_floor_s, _ = await timed(floor_series, repeat, label=f"province {n} series floor")
        weekly = sum(1 for d in schedules if d["tier"] == "high")
        assert stats["due"] == weekly == series["items"][-1]["due"], (stats["due"], weekly)
        assert len(stats["misses"]) == 100 and all(m["last_visited_at"] is None for m in stats["misses"])
        print(
            f"\nprovince-sized register: {n:,} people, {weekly:,} on the weekly tier, loaded in {load_s:.0f} s\n"
            f"  weekly rate (周探访率, by county) {rate_s * 1000:>8.0f} ms, floor {rate_floor_s * 1000:>8.0f} ms, "
            f"ratio {rate_s / rate_floor_s:.2f}x   rate {stats['rate']:.3f}\n"
            f"  12-week series                   {series_s * 1000:>8.0f} ms, floor {series_floor_s * 1000:>8.0f} ms, "
            f"ratio {series_s / series_floor_s:.2f}x",
            flush=True,
        )
        await client.drop_database(name)
    finally:
        await client.close()


async def province_only(n: int, repeat: int) -> None:
    server = EmbeddedMongo(":memory:", durable=False)
    uri = await asyncio.to_thread(server.start)
    try:
        await province(uri, n, repeat)
    finally:
        await asyncio.to_thread(server.stop)


def run(quick: bool = False) -> int:
    if os.environ.get("BENCH_VISITS_ONLY") != "province":
        asyncio.run(main(QUICK_SIZES if quick else SIZES, 1 if quick else 3))
    asyncio.run(province_only(QUICK_PROVINCE if quick else PROVINCE, 3 if quick else 1))
    return 0
