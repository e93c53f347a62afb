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
sets another size, ``--quick`` uses 20,000), the plan's figure on its own, as the register
grows from a fifth of that size to all of it:

- ``weekly rate``: :func:`service.visits.records.visit_stats` for one ISO week grouped by county
  (the weekly tier's rate with the monthly and quarterly tiers beside it, and the first
  100 misses named) against the same aggregation pipeline sent directly through pymongo;
- ``series``: :func:`service.visits.records.weekly_series` for the last 12 weeks against its
  pipeline through pymongo.

The register is loaded as the CSV import builds it: each row goes through
:func:`service.visits.elder_imports.import_doc` (the import's checks, encrypted ID number, lookup hash,
tier from the Anhui table: 80% weekly, 15% monthly, 5% quarterly) and is written with
``insert_many`` in chunks of 2,000, the next chunk being built in a thread while the server
writes the current one; each person's schedule of the report week is
:func:`service.visits.schedules.schedule_doc` of that document, about 90% marked visited
the way ``mark_visited`` marks them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from config import load_settings
from service.common.context import Context
from service.common.ids import new_id
from service.common.models import SYSTEM
from service.common.pii import id_card_check_char
from service.storage.embedded import EmbeddedMongo, _executable, free_port
from service.storage.indexes import ensure_indexes
from service.visits.elder_imports import import_doc
from service.visits.periods import parse_period
from service.visits.repository.rates import rate_pipeline, weekly_pipeline
from service.visits.schedules import schedule_doc, schedule_period
from service.visits.stats import (
    rate_query,
    stats_scope,
    visit_stats,
    weekly_query,
    weekly_series,
)

SIZES = (10_000, 100_000)
QUICK_SIZES = (2_000, 10_000)
PROVINCE = int(os.environ.get("BENCH_VISITS_PROVINCE", "500000"))
QUICK_PROVINCE = 20_000
PERIOD = parse_period("2026-W48")
COUNTIES = ("340102", "340103", "340104", "340111", "341021", "341022", "341002", "341003")


def elder_docs(ctx: Context, n: int) -> list[dict[str, Any]]:
    """``n`` register documents as the CSV import builds them, every person on the weekly tier (失能)."""
    stations = [(new_id(), f"{COUNTIES[i % len(COUNTIES)]}{i // len(COUNTIES) + 1:03d}") for i in range(80)]
    docs = []
    for i in range(n):
        station_id, township = stations[i % len(stations)]
        row = {**register_row(i, township), "flags": "disabled"}
        docs.append({**import_doc(ctx=ctx, principal=SYSTEM, row=row, station_id=station_id), "_id": new_id()})
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
        await insert_chunks(db["elders"], elder_docs(ctx, n))
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
        query = rate_query(stats_scope(SYSTEM, "34"), PERIOD, "county")
        await (await sched.aggregate(rate_pipeline(query))).to_list()  # warm the cache
        rate_s, stats = await timed(
            lambda: visit_stats(ctx=ctx, principal=SYSTEM, division="34", period=PERIOD.id, group_by="county"), repeat
        )

        async def floor_rate() -> Any:
            cursor = await sched.aggregate(rate_pipeline(query))
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


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "桂英秀兰玉珍德明建国淑芬凤琴春华"
# Flags by tier under the Anhui table (高龄 is added from the birth date for anyone 80 or over).
WEEKLY_FLAGS = ("alone", "disabled", "dementia", "")
MONTHLY_FLAGS = ("extreme_poverty", "empty_nest", "left_behind")


def register_row(i: int, township: str) -> dict[str, str]:
    """Row ``i`` of a register CSV: 80% weekly (80+, 独居 or 不能自理), 15% monthly, 5% quarterly; unique ID numbers."""
    kind = i % 20
    old = kind < 16
    flags = WEEKLY_FLAGS[i % 4] if old else MONTHLY_FLAGS[i % 3] if kind < 19 else ""
    day = date(1930 if old else 1950, 1, 1) + timedelta(days=(i // 999) % 1800)
    first17 = f"{township[:6]}{day:%Y%m%d}{i % 999 + 1:03d}"
    return {
        "name": SURNAMES[i % 20] + GIVEN[i % 16] + GIVEN[(i // 16) % 16],
        "id_card": first17 + id_card_check_char(first17),
        "township": township,
        "phone": f"139{i:08d}",
        "address": f"{township}社区{i % 300 + 1}号楼",
        "flags": flags,
        "consent_given": "是",
        "consent_method": "written",
    }


def province_chunk(
    ctx: Context, stations: list[tuple[str, str]], first: int, n: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Register documents as the CSV import builds them, and each person's schedule for the report week.

    About 10% are not visited; the others were reached by phone, video or at home, recorded on
    the schedule as ``mark_visited`` records it and on the person as ``note_visit`` does.
    """
    elders, schedules = [], []
    for i in range(first, first + n):
        station_id, township = stations[i % len(stations)]
        doc = {**import_doc(ctx=ctx, principal=SYSTEM, row=register_row(i, township), station_id=station_id)}
        doc["_id"] = new_id()  # as EldersRepository.insert_all does
        schedule = schedule_doc(doc, PERIOD.start, PERIOD.start)
        if i % 10 != 3:
            visited_at = schedule["period_start"] + timedelta(hours=10 + i % 48)
            method = ("phone", "video", "home")[i % 3]
            schedule.update(visited=True, visit_id=new_id(), visited_at=visited_at, method=method)
            doc["last_visited_at"] = visited_at
        elders.append(doc)
        schedules.append(schedule)
    return elders, schedules


async def province_load(ctx: Context, stations: list[tuple[str, str]], first: int, n: int) -> dict[str, int]:
    """Add people ``first`` .. ``first + n``: build the next chunk in a thread while the server writes this one."""
    chunk = 2_000
    tiers: dict[str, int] = {}
    pending = asyncio.create_task(asyncio.to_thread(province_chunk, ctx, stations, first, min(chunk, n)))
    for k in range(first, first + n, chunk):
        elders, schedules = await pending
        nxt = k + chunk
        if nxt < first + n:
            pending = asyncio.create_task(
                asyncio.to_thread(province_chunk, ctx, stations, nxt, min(chunk, first + n - nxt))
            )
        await ctx.db["elders"].insert_many(elders, ordered=False)
        await ctx.db["visit_schedules"].insert_many(schedules, ordered=False)
        for d in schedules:
            tiers[d["tier"]] = tiers.get(d["tier"], 0) + 1
    return tiers


async def province(uri: str, sizes: tuple[int, ...], repeat: int) -> None:
    """The plan's weekly rate and the 12-week series as the register grows to a province's size, against the driver."""
    name = "bench_visits_province"
    settings = load_settings(
        {}, env="test", mongodb_uri=uri, mongodb_db=name, redis_url="redis://127.0.0.1:1/0", log_level="WARNING"
    )
    client: Any = AsyncMongoClient(uri, tz_aware=True, socketTimeoutMS=3_600_000)
    try:
        db = client[name]
        await ensure_indexes(db)
        ctx = Context(settings=settings, db=db, redis=None, clock=lambda: PERIOD.end)
        load_ctx = Context(settings=settings, db=db, redis=None, clock=lambda: PERIOD.start)
        stations = [(new_id(), f"{COUNTIES[i % len(COUNTIES)]}{i // len(COUNTIES) + 1:03d}") for i in range(1_500)]
        sched = db["visit_schedules"]
        scope = stats_scope(SYSTEM, "34")
        query = rate_query(scope, PERIOD, "county")
        weekly = weekly_query(scope, parse_period("2026-W37"), PERIOD)

        async def ours_rate() -> Any:
            return await visit_stats(ctx=ctx, principal=SYSTEM, division="34", period=PERIOD.id, group_by="county")

        async def floor_rate() -> Any:
            return await (await sched.aggregate(rate_pipeline(query))).to_list()

        async def ours_series() -> Any:
            return await weekly_series(ctx=ctx, principal=SYSTEM, division="34", weeks=12, until=PERIOD.id)

        async def floor_series() -> Any:
            return await (await sched.aggregate(weekly_pipeline(weekly))).to_list()

        print(
            f"{'people':>8} {'weekly':>8} | {'load s':>6} | {'rate ms':>9} {'floor ms':>9} {'ratio':>6} | "
            f"{'series ms':>9} {'floor ms':>9} {'ratio':>6} | rate"
        )
        rows, loaded, tiers = [], 0, {}
        for n in sizes:
            t = time.perf_counter()
            for tier, count in (await province_load(load_ctx, stations, loaded, n - loaded)).items():
                tiers[tier] = tiers.get(tier, 0) + count
            load_s = time.perf_counter() - t
            loaded = n
            print(f"    province {n}: loaded in {load_s:.0f} s", file=sys.stderr, flush=True)
            if not rows:
                await floor_rate()  # warm the server once; later sizes run ours first, so any first-run cost is ours
            rate_s, stats = await timed(ours_rate, repeat, label=f"province {n} weekly rate")
            rate_floor_s, raw = await timed(floor_rate, repeat, label=f"province {n} weekly rate floor")
            series_s, series = await timed(ours_series, repeat, label=f"province {n} series")
            series_floor_s, _ = await timed(floor_series, repeat, label=f"province {n} series floor")
            weekly = tiers.get("high", 0)
            assert await db["elders"].count_documents({}) == n
            assert stats["due"] == weekly == series["items"][-1]["due"] == n * 16 // 20, (stats["due"], weekly)
            assert sum(r["due"] for r in raw[0]["by_tier"]) == n
            assert len(stats["misses"]) == 100 and all(m["last_visited_at"] is None for m in stats["misses"])
            print(
                f"{n:>8,} {weekly:>8,} | {load_s:>6.0f} | {rate_s * 1000:>9.0f} {rate_floor_s * 1000:>9.0f} "
                f"{rate_s / rate_floor_s:>5.2f}x | {series_s * 1000:>9.0f} {series_floor_s * 1000:>9.0f} "
                f"{series_s / series_floor_s:>5.2f}x | {stats['rate']:.3f}",
                flush=True,
            )
            rows.append({"n": n, "rate": rate_s, "floor": rate_floor_s, "series": series_s, "sfloor": series_floor_s})
        a, b = rows[0], rows[-1]
        if len(rows) > 1:
            print(
                f"\ngrowth from {a['n']:,} to {b['n']:,} people ({b['n'] / a['n']:.0f}x more): "
                f"weekly rate x{b['rate'] / a['rate']:.1f} (floor x{b['floor'] / a['floor']:.1f}), "
                f"series x{b['series'] / a['series']:.1f} (floor x{b['sfloor'] / a['sfloor']:.1f})"
            )
        print("ratio = ours / the same aggregation issued directly through pymongo, in the same run.", flush=True)
        await client.drop_database(name)
    finally:
        await client.close()


# The server's default WiredTiger cache (1 GB) fills up before half a million people and
# their schedules are in: inserts then slow down and finally fail with an internal error.
PROVINCE_CACHE = os.environ.get("BENCH_VISITS_CACHE", "6G")


async def province_only(sizes: tuple[int, ...], repeat: int) -> None:
    """Run the province part on its own server, with a larger cache and its log kept for a failure."""
    with tempfile.TemporaryDirectory(prefix="bench-visits-") as tmp:
        log_path = Path(tmp) / "secantusdb.log"
        port = free_port()
        args = [_executable(), "--host", "127.0.0.1", "--port", str(port), "--storage-path", f"{tmp}/data"]
        args += ["--log-level", "WARNING", "--cache-size", PROVINCE_CACHE]
        with log_path.open("ab") as log:
            server = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                await asyncio.sleep(0.2)
            await province(f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false", sizes, repeat)
        except BaseException:
            print(log_path.read_text(encoding="utf-8", errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            server.terminate()
            server.wait(30)


def run(quick: bool = False) -> int:
    if os.environ.get("BENCH_VISITS_ONLY") != "province":
        asyncio.run(main(QUICK_SIZES if quick else SIZES, 1 if quick else 3))
    size = QUICK_PROVINCE if quick else PROVINCE
    asyncio.run(province_only((size // 5, size), 3 if quick else 1))
    return 0
