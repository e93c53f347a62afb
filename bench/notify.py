"""The notifications events loop: events handled per second, against the bare driver writes it needs.

In one run, against one SecantusDB started here (in memory, not durable) and Redis at
127.0.0.1:6379 under a key prefix of its own (the in-process stand-in if no Redis answers),
with the app's background loops off:

- **set-up**: one station with a head and four workers, and ``N`` cases (``--quick``: 150,
  else 400) filed by an integrator client through the submit service, each a
  ``case.created`` event that tells the station's five staff (inbox records) and is
  published to the live feed;
- **ours**: ``process_events`` (the loop's pass) called until every event is handled; the
  figure is events handled per second;
- **floor**: the MongoDB writes one event cannot do without, issued one after another through
  pymongo against the same server in a database of its own: insert the claim, insert the five
  inbox records, mark the claim done. ``BENCH_NOTIFY_EVENTS`` sets another ``N``.

The same file runs against an older checkout (it uses ``process_events`` only), which is how
the figures before and after batching in docs/performance.md were taken.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from config import load_settings
from handlers.keys import CTX
from run import create_app
from service.common.models import utcnow
from service.notify.service import process_events
from service.storage.embedded import EmbeddedMongo
from tests.factories import make_case, make_client, make_staff, make_station

REDIS_URL = "redis://127.0.0.1:6379/0"
OUT = Path(__file__).resolve().parents[1] / "var" / "bench-notify.json"
STAFF = 5


def _redis_url_or_none() -> str | None:
    import redis

    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5) as r:
            return REDIS_URL if r.ping() else None
    except Exception:  # noqa: BLE001
        return None


async def _floor(uri: str, n: int) -> float:
    """Seconds for the bare writes of ``n`` events, one event after another."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, retryWrites=False)
    try:
        db = client["bench_notify_floor"]
        await db["notifications"].create_index([("event_id", 1), ("recipient", 1), ("channel", 1)], unique=True)
        started = time.perf_counter()
        for i in range(n):
            eid = f"{i:024x}"
            now = utcnow()
            await db["notify_claims"].insert_one({"_id": eid, "owner": "floor", "claimed_at": now, "done": False})
            for k in range(STAFF):
                await db["notifications"].insert_one(
                    {"event_id": eid, "recipient": f"staff:{k}", "channel": "inbox", "status": "delivered"}
                )
            await db["notify_claims"].update_one({"_id": eid}, {"$set": {"done": True, "done_at": now}})
        return time.perf_counter() - started
    finally:
        await client.close()


async def main(quick: bool) -> dict[str, Any]:
    n = int(os.environ.get("BENCH_NOTIFY_EVENTS", 150 if quick else 400))
    server = EmbeddedMongo(":memory:", durable=False)
    uri = await asyncio.to_thread(server.start)
    redis_url = _redis_url_or_none()
    prefix = f"bench-notify-{uuid.uuid4().hex[:8]}:"
    tmp = tempfile.TemporaryDirectory(prefix="bench-notify-")
    settings = load_settings(
        {},
        env="test",
        mongodb_uri=uri,
        mongodb_db="bench_notify",
        redis_url=redis_url,
        redis_prefix=prefix,
        data_dir=tmp.name,
        background_tasks=False,
        log_level="WARNING",
    )
    app = create_app(settings)
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()  # the real start-up: indexes, clients
    try:
        ctx = app[CTX]
        station = await make_station(ctx)
        await make_staff(ctx, role="station_head", station_id=station.id)
        for _ in range(STAFF - 1):
            await make_staff(ctx, station_id=station.id)
        filer = await make_client(ctx)
        for _ in range(n):
            await make_case(ctx, filer)
        started = time.perf_counter()
        handled = 0
        while handled < n:
            got = await process_events(ctx=ctx)
            if got == 0:
                break
            handled += got
        ours = time.perf_counter() - started
        done = await ctx.db["notify_claims"].count_documents({"done": True})
        floor = await _floor(uri, n)
    finally:
        await runner.cleanup()
        await asyncio.to_thread(server.stop)
        tmp.cleanup()
    result = {
        "events": n,
        "handled": done,
        "ours_s": round(ours, 2),
        "ours_events_per_s": round(done / ours, 1) if ours else None,
        "floor_s": round(floor, 2),
        "floor_events_per_s": round(n / floor, 1) if floor else None,
        "ratio_to_floor": round(ours / floor, 2) if floor else None,
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }
    return result


def run(quick: bool = False) -> int:
    """Entry point for ``python -m bench notify``."""
    result = asyncio.run(main(quick))
    print(
        f"    {result['handled']}/{result['events']} events: ours {result['ours_events_per_s']} events/s "
        f"({result['ours_s']} s), floor {result['floor_events_per_s']} events/s ({result['floor_s']} s), "
        f"ours / floor time = {result['ratio_to_floor']}; load average {result['load_average']}",
        flush=True,
    )
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if result["handled"] == result["events"] else 1


if __name__ == "__main__":
    import sys

    sys.exit(run(quick="--quick" in sys.argv))
