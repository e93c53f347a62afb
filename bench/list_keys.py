"""Keys read for a first page of cases, by collection size: what the embedded server's ``explain`` reports.

``python -m bench list_keys`` (``--quick``: 1,000 and 10,000 cases; else also 100,000). Timing on a
shared machine moves with its load; the keys (or documents) a query examines do not, so this counts
them: for each list, the sum over the queries of a first page of 21 (as the service reads it, with
the list's marks left by a read before) of the keys or documents examined, whichever is more. Cases
are spread over 60 days and twelve stations in three cities (歙县 of 黄山市, 合肥, 芜湖 and 蚌埠),
two thirds of them open. Beside them, the shapes read before: a city's scope as the ``division``
range beside the creation-time windows, and the cases with no due time as one query.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

from pymongo import AsyncMongoClient

from service.cases.models import region_codes
from service.cases.queries import list_query_of
from service.cases.repository.listing import ListMarks, division_range, newest_first, read_list, soonest_due_first
from service.common.ids import new_id
from service.common.models import Principal, utcnow
from service.storage.embedded import EmbeddedMongo
from service.storage.indexes import ensure_indexes

STATIONS = (
    [f"341021{100 + i}" for i in range(5)]
    + ["340102001"]
    + [f"340202{100 + i}" for i in range(3)]
    + [f"340302{100 + i}" for i in range(3)]
)
WORKER = Principal(subject="w-bench", role="worker", station_id=f"st-{STATIONS[0]}")
LISTS: list[tuple[str, Principal, dict[str, Any]]] = [
    ("city newest", Principal(subject="c", role="supervisor", division_prefix="3410"), {}),
    ("province newest", Principal(subject="p", role="supervisor", division_prefix="34"), {}),
    ("city by due", Principal(subject="c", role="supervisor", division_prefix="3410"), {"sort": "due"}),
    ("province by due", Principal(subject="p", role="supervisor", division_prefix="34"), {"sort": "due"}),
    ("station by due", WORKER, {"sort": "due"}),
    ("station queue", WORKER, {"sort": "due", "status": ["dispatched", "accepted", "in_progress"]}),
]


def _cases(start: int, count: int, rng: random.Random) -> list[dict[str, Any]]:
    now, out = utcnow(), []
    for i in range(start, start + count):
        code = STATIONS[i % len(STATIONS)]
        at = now - timedelta(seconds=rng.uniform(0, 60 * 86400))
        status = rng.choice(("dispatched", "dispatched", "accepted", "in_progress", "resolved", "closed"))
        due = None if status in ("resolved", "closed") else at + timedelta(hours=rng.uniform(1, 240))
        out.append(
            {
                "_id": new_id(at),
                "number": f"BENCH{i:07d}",
                "station_id": f"st-{code}",
                "division": code,
                "county_code": code[:6],
                **region_codes(code),
                "status": status,
                "created_at": at,
                "next_due_at": due,
            }
        )
    return out


async def main(quick: bool) -> None:
    server = EmbeddedMongo(":memory:", durable=False)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(await asyncio.to_thread(server.start))
    db, rng, have = client["bench_list_keys"], random.Random(20261130), 0
    read: list[int] = []

    async def find(filt: dict[str, Any], sort: list[tuple[str, int]], n: int) -> list[dict[str, Any]]:
        explained = await db.command(
            "explain", {"find": "cases", "filter": filt, "sort": dict(sort), "limit": n}, verbosity="executionStats"
        )
        stats = explained["executionStats"]
        read.append(max(stats["totalKeysExamined"], stats["totalDocsExamined"]))
        return [d async for d in db["cases"].find(filt).sort(sort).limit(n)]

    try:
        print(f"{'cases':>8} | " + " | ".join(name for name, _, _ in LISTS) + " | before: city newest, province by due")
        for size in (1_000, 10_000) if quick else (1_000, 10_000, 100_000):
            await db["cases"].drop_indexes()
            while have < size:
                batch = _cases(have, min(5000, size - have), rng)
                await db["cases"].insert_many(batch, ordered=False)
                have += len(batch)
            await ensure_indexes(db)
            row = []
            for _name, principal, query in LISTS:
                listing = list_query_of(principal, query)
                await read_list(find, listing, want=21, now=utcnow(), marks=ListMarks(db))  # leaves the marks
                read.clear()
                await read_list(find, listing, want=21, now=utcnow(), marks=ListMarks(db))
                row.append(sum(read))
            read.clear()
            await newest_first(find, conditions=[{"division": division_range("3410")}], want=21, now=utcnow())
            row.append(sum(read))
            read.clear()
            await soonest_due_first(find, conditions=[{"province_code": "340000"}], want=21, now=utcnow())
            row.append(sum(read))
            print(f"{have:>8,} | " + " | ".join(f"{n:,}" for n in row), flush=True)
    finally:
        await client.close()
        await asyncio.to_thread(server.stop)


def run(quick: bool = False) -> int:
    asyncio.run(main(quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
