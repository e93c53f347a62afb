"""Cases through the HTTP API against the same MongoDB operations issued directly (the floor).

In one run, against one SecantusDB started here (in memory, not durable) and Redis at
127.0.0.1:6379 under a key prefix of its own (the in-process stand-in if no Redis answers):

- **ours**: the real app (``run.create_app``) served on a loopback port by aiohttp and driven
  by an aiohttp client, one request at a time: submit (``POST /api/v1/cases``), get
  (``GET /api/v1/cases/{id}``), list (``GET /api/v1/cases?limit=20`` as a county supervisor
  and as a station worker) and accept (``POST /api/v1/cases/{id}/accept``);
- **floor**: the MongoDB operations those requests cannot do without, issued through
  pymongo's ``AsyncMongoClient`` against the same server (in a database of its own with the
  same indexes): for submit the case-number counter (upsert, then ``$inc`` + read back in a
  transaction, as ``service/cases/repository/counters.py``) and the case + event inserts in one
  transaction; for get ``find_one`` by ``_id``; for a newest-first list the same time-window
  finds the service issues (``newest_first`` over the driver's collection); for accept the
  conditional ``update_one`` + event insert in a transaction and the read back;
- **bare HTTP**: a trivial JSON handler on the same kind of server and client, the cost of
  HTTP alone.

Then list latency at 1,000, 10,000 and 100,000 cases (``--quick``: 1,000 and 10,000),
seeded in bulk from documents cloned from a case the API created (the secondary indexes are
dropped for the load and built again after it, which the embedded server does about ten times
faster than indexing document by document), and how it grows with size. Results also go to
``var/bench-cases.json``.

What the sizes show on the embedded server: SecantusDB 0.7 applies ``limit`` only after it
has read every matching index key and document, so one unbounded ``find().sort().limit(21)``
costs time in proportion to all the cases it matches (the "one find" column, measured up to
10,000). The service reads a newest-first page in time windows on ``created_at`` that widen
only when a page comes back short (``service.cases.repository.listing.newest_first``), so each query
carries a range bound on the index's sort key and reads about a page of keys; the floor for
that page is the same window queries issued through the driver. Both stay flat as the
collection grows. On MongoDB each window is an index-ordered scan that stops at the limit.
A list by due time (``service.cases.repository.listing.soonest_due_first``) reads the cases with no due
time (the history: resolved, closed, cancelled) in one query, then windows on ``next_due_at``
between fixed edges around now, one query per state filtered on: the worker's queue (open
states, as the console asks for it) never reads the history; the unfiltered list still does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from bson import ObjectId
from pymongo import AsyncMongoClient, ReadPreference
from pymongo.errors import DuplicateKeyError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from config import load_settings
from handlers.keys import CTX
from run import create_app
from service.cases.queries import list_query_of
from service.cases.repository.listing import (
    SORTS,
    WINDOW_START,
    ListMarks,
    filter_conditions,
    list_query,
    newest_first,
    soonest_due_first,
)
from service.catalog import service as catalog
from service.catalog.seed import SEED_SERVICES
from service.catalog.service import example_answers
from service.common.ids import new_id
from service.common.inputs import from_given
from service.common.models import Principal, utcnow
from service.common.paging import newest_by_id, newest_by_new_id
from service.identity.tokens import issue_access_token
from service.notify.models import CHANNEL_INBOX
from service.notify.repository.notifications import new_notification_id, notification_id_at
from service.notify.rules import recipient_of
from service.stations import service as stations
from service.stations.inputs import StationRegistration
from service.storage.embedded import EmbeddedMongo, free_port
from service.storage.indexes import ensure_indexes

# The worker's queue as the console asks for it (web/src/console/views/QueueView.vue, open states).
QUEUE = "dispatched,accepted,in_progress"

REDIS_URL = "redis://127.0.0.1:6379/0"
OUT = Path(__file__).resolve().parents[1] / "var" / "bench-cases.json"
ADMIN = Principal(subject="admin-bench", role="admin")
COUNTY = "341021"  # 歙县
# Stations of two other cities (芜湖 镜湖区, 蚌埠 龙子湖区) the cloned cases are spread over besides
# the six made through the API; no documents stand behind them.
OTHER_CITIES = [(f"bench-other-{i}", f"{city}{100 + i}") for i, city in enumerate(["340202"] * 3 + ["340302"] * 3)]
CAPABILITIES = sorted({s.capability for s in SEED_SERVICES})
SERVICE_CODE = "elderly_home_visit"
# Five township stations in the supervisor's county and one elsewhere (合肥 瑶海区), so the
# supervisor's scope is a filter, not the whole collection.
STATIONS = (
    ("341021100", "徽城镇社工站", 118.41, 29.86),
    ("341021101", "深渡镇社工站", 118.60, 29.80),
    ("341021102", "北岸镇社工站", 118.47, 29.87),
    ("341021103", "富堨镇社工站", 118.38, 29.92),
    ("341021104", "郑村镇社工站", 118.49, 29.90),
    ("340102001", "明光路街道社工站", 117.31, 31.87),
)


# ---------------------------------------------------------------- measuring


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": p99 * 1000,
        "ops_per_s": len(ordered) / sum(ordered),
    }


async def timed(fn: Callable[[int], Awaitable[Any]], n: int, warmup: int = 3) -> list[float]:
    """Latencies of ``n`` sequential calls ``fn(i)`` after ``warmup`` unmeasured ones."""
    for i in range(warmup):
        await fn(-1 - i)
    out = []
    for i in range(n):
        t = time.perf_counter()
        await fn(i)
        out.append(time.perf_counter() - t)
    return out


async def interleaved(
    fns: dict[str, Callable[[], Awaitable[Any]]], most: int, budget_s: float, least: int = 2
) -> dict[str, list[float]]:
    """Latencies of each ``fns`` entry called in turn, round after round, without warm-up (the same
    requests ran already); stops after ``budget_s`` seconds once ``least`` rounds are in, since at
    100,000 cases one list can take seconds on the embedded server."""
    out: dict[str, list[float]] = {name: [] for name in fns}
    start = time.perf_counter()
    for i in range(most):
        for name, fn in fns.items():
            t = time.perf_counter()
            await fn()
            out[name].append(time.perf_counter() - t)
        if i + 1 >= least and time.perf_counter() - start > budget_s:
            break
    return out


class Failure(RuntimeError):
    """A request the benchmark expected to succeed did not."""


async def call(session: aiohttp.ClientSession, method: str, url: str, expect: int, **kw: Any) -> Any:
    async with session.request(method, url, **kw) as resp:
        # orjson, not the stdlib's json: the client shares the process (and its cores) with the
        # server under test, and parsing a 45 kB page of cases with json costs about 0.24 ms, which
        # would count as the server's.
        raw = await resp.read()
        body = orjson.loads(raw) if raw else None
        if resp.status != expect:
            raise Failure(f"{method} {url}: {resp.status} {body}")
        return body


# ---------------------------------------------------------------- the floor: driver operations


class Floor:
    """The MongoDB operations the API needs, issued directly, in a database of their own."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], db_name: str) -> None:
        self.client = client
        self.db = client[db_name]
        self.cases = self.db["cases"]
        self.events = self.db["events"]
        self.counters = self.db["counters"]
        self.dispatched: list[str] = []

    async def transaction(self, fn: Callable[[Any], Awaitable[Any]]) -> Any:
        async with self.client.start_session() as session:
            return await session.with_transaction(
                fn,
                read_concern=ReadConcern("snapshot"),
                write_concern=WriteConcern("majority"),
                read_preference=ReadPreference.PRIMARY,
            )

    async def submit(self, template: dict[str, Any], event_template: dict[str, Any]) -> str:
        name = f"case_number:{COUNTY}:20261128"
        with contextlib.suppress(DuplicateKeyError):
            await self.counters.update_one({"_id": name}, {"$setOnInsert": {"value": 0}}, upsert=True)

        async def bump(session: Any) -> int:
            await self.counters.update_one({"_id": name}, {"$inc": {"value": 1}}, session=session)
            doc = await self.counters.find_one({"_id": name}, session=session)
            return int(doc["value"]) if doc else 0

        seq = await self.transaction(bump)
        now = utcnow()
        case = {**template, "_id": str(ObjectId()), "number": f"HM{COUNTY}20261128{seq:05d}F"}
        case["created_at"] = case["updated_at"] = now
        event = {
            **event_template,
            "_id": str(ObjectId()),
            "case_id": case["_id"],
            "subject": {"kind": "case", "id": case["_id"]},
            "case_number": case["number"],
        }

        async def write(session: Any) -> None:
            await self.cases.insert_one(case, session=session)
            await self.events.insert_one(event, session=session)

        await self.transaction(write)
        self.dispatched.append(case["_id"])
        return case["_id"]

    async def get(self, case_id: str) -> dict[str, Any] | None:
        return await self.cases.find_one({"_id": case_id})

    async def list(self, filt: dict[str, Any], sort: list[tuple[str, int]], collection: Any = None) -> list[Any]:
        col = self.cases if collection is None else collection
        return [d async for d in col.find(filt, {"history": 0}).sort(sort).limit(21)]

    async def list_newest(self, principal: Principal, collection: Any = None) -> list[Any]:
        """A newest-first first page as the service reads it: time windows on ``created_at`` that
        widen until 21 are found (``service.cases.repository.listing.newest_first``), each one driver ``find``."""
        col = self.cases if collection is None else collection

        async def find(filt: dict[str, Any], sort: list[tuple[str, int]], n: int) -> list[Any]:
            return [d async for d in col.find(filt, {"history": 0}).sort(sort).limit(n)]

        conditions = filter_conditions(list_query_of(principal, {}))
        docs, _ = await newest_first(find, conditions=conditions, want=21, now=utcnow())
        return docs

    async def inbox(self, recipient: str, collection: Any) -> list[Any]:
        """An inbox's first page as the service reads it: windows of time on the id (``newest_by_id``)."""
        query = {"recipient": recipient, "channel": CHANNEL_INBOX}

        async def find(id_range: dict[str, Any], n: int) -> list[Any]:
            window = {"_id": id_range, **query} if id_range else query
            return [d async for d in collection.find(window).sort("_id", -1).limit(n)]

        return await newest_by_id(find, want=21, now=utcnow(), id_at=notification_id_at)

    async def alerts(self, station_id: str, collection: Any) -> list[Any]:
        """A station's alert board, first page, as the service reads it: windows of time on the id."""
        query = {"station_id": station_id}

        async def find(id_range: dict[str, Any], n: int) -> list[Any]:
            window = {**query, "_id": id_range} if id_range else query
            return [d async for d in collection.find(window).sort("_id", -1).limit(n)]

        return await newest_by_new_id(find, want=21, now=utcnow())

    async def list_due(self, principal: Principal, query: dict[str, Any], collection: Any = None) -> list[Any]:
        """A first page by due time as the service reads it: the cases with none, then windows on
        ``next_due_at`` (``service.cases.repository.listing.soonest_due_first``), one driver ``find`` per state."""
        col = self.cases if collection is None else collection

        async def find(filt: dict[str, Any], sort: list[tuple[str, int]], n: int) -> list[Any]:
            return [d async for d in col.find(filt, {"history": 0}).sort(sort).limit(n)]

        conditions = filter_conditions(list_query_of(principal, query))
        docs, _ = await soonest_due_first(
            find, conditions=conditions, want=21, now=utcnow(), marks=ListMarks(col.database)
        )
        return docs

    async def accept(self, case_id: str, event_template: dict[str, Any]) -> dict[str, Any] | None:
        now = utcnow()
        event = {
            **event_template,
            "_id": str(ObjectId()),
            "case_id": case_id,
            "subject": {"kind": "case", "id": case_id},
            "seq": 2,
            "time": now,
        }

        async def write(session: Any) -> bool:
            result = await self.cases.update_one(
                {"_id": case_id, "version": 1, "status": "dispatched"},
                {
                    "$set": {"status": "accepted", "accepted_at": now, "assignee_id": "w-bench", "updated_at": now},
                    "$push": {"history": {"action": "accept", "at": now}},
                    "$inc": {"version": 1},
                },
                session=session,
            )
            if result.modified_count != 1:
                raise Failure(f"floor accept of {case_id} matched nothing")
            await self.events.insert_one(event, session=session)
            return True

        await self.transaction(write)
        return await self.cases.find_one({"_id": case_id})


# ---------------------------------------------------------------- servers


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def bare_app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["id"], "status": "dispatched"})

    app = web.Application()
    app.router.add_get("/bare/{id}", hello)
    return app


def redis_url_or_none() -> str | None:
    import redis

    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5) as r:
            return REDIS_URL if r.ping() else None
    except Exception:  # noqa: BLE001
        return None


async def clean_redis(url: str | None, prefix: str) -> None:
    if not url:
        return
    import redis.asyncio as aioredis

    async with aioredis.Redis.from_url(url) as r:
        keys = [k async for k in r.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await r.delete(*keys)


# ---------------------------------------------------------------- seeding for list sizes


def clone_cases(
    template: dict[str, Any], station_ids: list[tuple[str, str]], start: int, count: int, rng: random.Random
) -> list[dict[str, Any]]:
    """``count`` documents shaped like the API-created ``template``, spread over stations and 60 days."""
    base = template["created_at"] - timedelta(days=60)
    out = []
    for i in range(start, start + count):
        # A shallow copy: the nested parts are shared and only encoded, never changed, here.
        doc = dict(template)
        station_id, code = station_ids[i % len(station_ids)]
        created = base + timedelta(seconds=rng.uniform(0, 60 * 86400))
        status = rng.choice(("dispatched", "dispatched", "accepted", "in_progress", "resolved", "closed"))
        doc.update(
            # Ids carry the filing time, as the service's do (the cases with no due time are read by id).
            _id=new_id(created),
            number=f"HM{code[:6]}{created:%Y%m%d}{i:07d}S",
            station_id=station_id,
            station_code=code,
            division=code,
            county_code=code[:6],
            city_code=code[:4] + "00",
            province_code=code[:2] + "0000",
            status=status,
            created_at=created,
            updated_at=created,
            sign_due_at=created + timedelta(hours=24),
            resolve_due_at=created + timedelta(days=10),
            next_due_at=None if status in ("resolved", "closed") else created + timedelta(hours=rng.uniform(1, 240)),
        )
        out.append(doc)
    return out


async def seed_inbox(notes: Any, principal: Principal, size: int, rng: random.Random) -> None:
    """Notifications up to ``size`` in all, a sixth of them in ``principal``'s inbox (as cases
    spread over six stations), made over the same 60 days, a third of them read."""
    have = await notes.count_documents({})
    now = utcnow()
    mine = recipient_of(principal)
    while have < size:
        batch = []
        for i in range(have, min(size, have + 5000)):
            at = now - timedelta(seconds=rng.uniform(0, 60 * 86400))
            batch.append(
                {
                    "_id": new_notification_id(at),
                    "event_id": f"bench-{i}",
                    "event_type": "case.dispatched",
                    "recipient": mine if i % 6 == 0 else f"staff:bench-{i % 6}",
                    "channel": CHANNEL_INBOX,
                    "status": "delivered",
                    "title_zh": "新工单",
                    "title_en": "New case",
                    "body_zh": "您所在的社工站收到一件新工单。",
                    "body_en": "Your station received a new case.",
                    "case_id": None,
                    "case_number": None,
                    "created_at": at,
                    "read_at": at if i % 3 == 0 else None,
                }
            )
        await notes.insert_many(batch, ordered=False)
        have += len(batch)


async def seed_alerts(col: Any, stations: list[Any], size: int, rng: random.Random) -> None:
    """Device alerts up to a tenth of ``size`` in all, spread over ``stations`` and the same 60 days,
    as a vendor's low-battery reports land on the maintenance list."""
    have = await col.count_documents({})
    now = utcnow()
    while have < size // 10:
        batch = []
        for i in range(have, min(size // 10, have + 5000)):
            at = now - timedelta(seconds=rng.uniform(0, 60 * 86400))
            st = stations[i % len(stations)]
            batch.append(
                {
                    "_id": new_id(at),
                    "client_id": "vendor-bench",
                    "vendor_alert_id": f"bench-{i}",
                    "type": "low_battery",
                    "vendor_device_id": f"DEV-{i % 500}",
                    "occurred_at": at,
                    "received_at": at,
                    "details": {},
                    "fingerprint": f"bench-{i}",
                    "outcome": "maintenance_listed",
                    "station_id": st.id,
                    "township": st.code,
                    "county_code": st.code[:6],
                    "repeats": 0,
                    "escalation": None,
                    "announced": True,
                    "notified": [],
                }
            )
        await col.insert_many(batch, ordered=False)
        have += len(batch)


# ---------------------------------------------------------------- the run


async def main(quick: bool, lists_only: bool = False, out: Path | None = None) -> dict[str, Any]:
    """The operations, then the lists by collection size; ``lists_only``: a few operations (for the
    case the lists are cloned from), then the lists, with the inbox, by size."""
    n_ops = 25 if lists_only else 100 if quick else 300
    sizes = (1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    # Up to this many list requests per series and size, within a time budget per series.
    n_list, list_budget_s = (30, 6.0) if quick else (100, 15.0)
    rng = random.Random(20261128)
    server = EmbeddedMongo(":memory:", durable=False)
    uri = await asyncio.to_thread(server.start)
    redis_url = redis_url_or_none()
    prefix = f"bench-cases-{uuid.uuid4().hex[:8]}:"
    tmp = tempfile.TemporaryDirectory(prefix="bench-cases-")
    settings = load_settings(
        {},
        env="test",
        mongodb_uri=uri,
        mongodb_db="bench_cases",
        redis_url=redis_url,
        redis_prefix=prefix,
        data_dir=tmp.name,
        background_tasks=False,
        log_level="WARNING",
        # At 100,000 cases one list on the embedded server can outlast the default store
        # timeout (the API then answers 503); the benchmark wants the latency instead.
        store_timeout_seconds=30.0,
    )
    print(
        f"SecantusDB in memory (not durable) at {uri}; Redis: "
        + (f"{redis_url} prefix {prefix!r}" if redis_url else "in-process stand-in (no Redis at 127.0.0.1:6379)"),
        flush=True,
    )
    app = create_app(settings)
    runner, base = await serve(app)
    bare_runner, bare_base = await serve(bare_app())
    driver: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, retryWrites=False)
    results: dict[str, Any] = {
        "quick": quick,
        "redis": "127.0.0.1:6379" if redis_url else "in-process stand-in",
        "mongodb": "SecantusDB in memory",
        "ops": {},
        "list_sizes": [],
    }
    try:
        ctx = app[CTX]
        await catalog.seed_catalog(ctx)
        station_objs = []
        for code, name, lon, lat in STATIONS:
            data = {
                "code": code,
                "name": name,
                "location": {"type": "Point", "coordinates": [lon, lat]},
                "capabilities": CAPABILITIES,
                "precision": "exact",
            }
            station_objs.append(
                await stations.create_station(ctx=ctx, principal=ADMIN, data=from_given(StationRegistration, data))
            )
        xi = [s for s in station_objs if s.code.startswith(COUNTY)]
        service = await catalog.get_service(ctx=ctx, code=SERVICE_CODE)
        answers = example_answers(service)

        def token(role: str, **kw: Any) -> dict[str, str]:
            principal = Principal(subject=kw.pop("subject", f"bench-{role}"), role=role, **kw)  # type: ignore[arg-type]
            tok, _ = issue_access_token(settings=settings, principal=principal, now=utcnow())
            return {"Authorization": f"Bearer {tok}"}

        resident = token("resident", subject="res-bench")
        supervisor = token("supervisor", subject="sup-bench", division_prefix=COUNTY)
        workers = {s.id: token("worker", subject=f"w-{s.code}", station_id=s.id) for s in station_objs}
        worker_a = workers[xi[0].id]
        sup_principal = Principal(subject="sup-bench", role="supervisor", division_prefix=COUNTY)
        city_principal = Principal(subject="city-bench", role="supervisor", division_prefix=COUNTY[:4])
        province_principal = Principal(subject="prov-bench", role="supervisor", division_prefix=COUNTY[:2])
        city = token("supervisor", subject="city-bench", division_prefix=COUNTY[:4])
        province = token("supervisor", subject="prov-bench", division_prefix=COUNTY[:2])
        worker_principal = Principal(subject=f"w-{xi[0].code}", role="worker", station_id=xi[0].id)

        floor_db = "bench_floor"
        await ensure_indexes(driver[floor_db])
        floor = Floor(driver, floor_db)

        async with aiohttp.ClientSession() as http:
            submitted: list[tuple[str, str]] = []

            async def submit(i: int) -> None:
                station = xi[i % len(xi)]
                body = {
                    "service_code": SERVICE_CODE,
                    "answers": answers,
                    "division_code": station.code,
                    "address": "徽城镇 新安路 1 号",
                    "contact": {"name": "王芳", "phone": "13912345678"},
                }
                if service.booking:
                    body["preferred_window"] = {
                        "start": "2026-12-02T09:00:00+08:00",
                        "end": "2026-12-02T11:00:00+08:00",
                    }
                case = await call(http, "POST", f"{base}/api/v1/cases", 201, json=body, headers=resident)
                submitted.append((case["id"], case["station_id"]))

            print(f"measuring {n_ops} of each operation, one at a time ...", flush=True)
            ours: dict[str, list[float]] = {}
            floors: dict[str, list[float]] = {}
            ours["submit"] = await timed(submit, n_ops)

            # The floor clones one real case and its creation event.
            template = await ctx.db["cases"].find_one({"_id": submitted[0][0]})
            event_template = await ctx.db["events"].find_one({"case_id": submitted[0][0], "type": "case.created"})
            assert template is not None and event_template is not None
            accept_event = {**event_template, "type": "case.accepted", "from_state": "dispatched"}
            accept_event["to_state"] = "accepted"
            floors["submit"] = await timed(lambda i: floor.submit(template, event_template), n_ops)

            ids = [c for c, _ in submitted]
            ours["get"] = await timed(
                lambda i: call(http, "GET", f"{base}/api/v1/cases/{ids[i % len(ids)]}", 200, headers=resident), n_ops
            )
            floors["get"] = await timed(lambda i: floor.get(floor.dispatched[i % len(floor.dispatched)]), n_ops)

            sup_filter = _service_filter(sup_principal)
            wrk_filter = _service_filter(worker_principal)
            ours["list_supervisor"] = await timed(
                lambda i: call(http, "GET", f"{base}/api/v1/cases?limit=20", 200, headers=supervisor), n_ops
            )
            # List floors read the app's own collection: the same documents the API lists.
            app_cases = ctx.db["cases"]
            floors["list_supervisor"] = await timed(lambda i: floor.list_newest(sup_principal, app_cases), n_ops)
            ours["list_worker"] = await timed(
                lambda i: call(http, "GET", f"{base}/api/v1/cases?limit=20", 200, headers=worker_a), n_ops
            )
            floors["list_worker"] = await timed(lambda i: floor.list_newest(worker_principal, app_cases), n_ops)

            # Accept every submitted case once (warm-up uses spares, so there are enough).
            to_accept = list(submitted)

            async def accept(i: int) -> None:
                case_id, station_id = to_accept.pop()
                await call(
                    http, "POST", f"{base}/api/v1/cases/{case_id}/accept", 200, json={}, headers=workers[station_id]
                )

            floor_accept = list(floor.dispatched)

            async def accept_floor(i: int) -> None:
                await floor.accept(floor_accept.pop(), accept_event)

            n_accept = min(n_ops, len(to_accept) - 3, len(floor_accept) - 3)
            ours["accept"] = await timed(accept, n_accept)
            floors["accept"] = await timed(accept_floor, n_accept)

            bare = await timed(lambda i: call(http, "GET", f"{bare_base}/bare/{i}", 200), n_ops)
            results["bare_http"] = summary(bare)

            print_ops(ours, floors, results)

            # ---- list latency against collection size
            print(
                f"\nlist latency by collection size (up to {n_list} rounds, {list_budget_s:.0f} s budget; "
                f"supervisor of {COUNTY} newest first, worker of one station sort=due)",
                flush=True,
            )
            print(
                f"{'cases':>8} | {'seed s':>6} | {'supervisor p50':>14} {'p99':>7} | "
                f"{'worker due p50':>14} {'p99':>7} | {'floor sup p50':>13} {'floor wrk p50':>13} | "
                f"{'queue p50':>11} {'floor':>11} | "
                f"{'one find sup p50':>16}"
            )
            # As many cases again at stations of two other cities (only their codes matter to the lists),
            # so that a city's scope is a part of the province's.
            station_ids = [(s.id, s.code) for s in station_objs] + OTHER_CITIES
            # Seed and read through the bench's own client: the app's client has short socket
            # timeouts, and a retried bulk insert would collide with its own first attempt.
            col = driver[settings.mongodb_db]["cases"]
            notes = driver[settings.mongodb_db]["notifications"]
            alerts = driver[settings.mongodb_db]["alerts"]
            # The sizes are cases spread over 60 days, as a county files them. The cases filed
            # above (hundreds within a minute, a burst no county sees) go first: a time window
            # that holds a burst reads all of it (docs/performance.md).
            await col.delete_many({})
            have = 0
            for size in sizes:
                # Fresh tokens for each size: seeding 100,000 cases outlasts an access token.
                supervisor.update(token("supervisor", subject="sup-bench", division_prefix=COUNTY))
                city.update(token("supervisor", subject="city-bench", division_prefix=COUNTY[:4]))
                province.update(token("supervisor", subject="prov-bench", division_prefix=COUNTY[:2]))
                worker_a.update(token("worker", subject=f"w-{xi[0].code}", station_id=xi[0].id))
                t = time.perf_counter()
                if have < size:
                    # In bulk: the embedded server writes about 500 indexed documents a second
                    # but over 5,000 unindexed ones, and builds an index over them faster still;
                    # so the indexes go, the documents go in, and the same indexes come back.
                    await col.drop_indexes()
                    while have < size:
                        batch = clone_cases(template, station_ids, have, min(5000, size - have), rng)
                        await col.insert_many(batch, ordered=False)
                        have += len(batch)
                    await ensure_indexes(driver[settings.mongodb_db])
                    if lists_only:
                        await seed_inbox(notes, worker_principal, size, rng)
                        await seed_alerts(alerts, station_objs, size, rng)
                seed_s = time.perf_counter() - t
                # Ours and the floor alternate, so a change in the machine's load hits both alike.
                fns: dict[str, Callable[[], Awaitable[Any]]] = {
                    "supervisor_newest": lambda: call(
                        http, "GET", f"{base}/api/v1/cases?limit=20", 200, headers=supervisor
                    ),
                    "floor_supervisor_newest": lambda: floor.list_newest(sup_principal, col),
                    "worker_due": lambda: call(
                        http, "GET", f"{base}/api/v1/cases?limit=20&sort=due", 200, headers=worker_a
                    ),
                    "floor_worker_due": lambda: floor.list_due(worker_principal, {}, col),
                    "worker_queue": lambda: call(
                        http, "GET", f"{base}/api/v1/cases?limit=20&sort=due&status={QUEUE}", 200, headers=worker_a
                    ),
                    "floor_worker_queue": lambda: floor.list_due(worker_principal, {"status": QUEUE.split(",")}, col),
                    "city_newest": lambda: call(http, "GET", f"{base}/api/v1/cases?limit=20", 200, headers=city),
                    "floor_city_newest": lambda: floor.list_newest(city_principal, col),
                    "province_due": lambda: call(
                        http, "GET", f"{base}/api/v1/cases?limit=20&sort=due", 200, headers=province
                    ),
                    "floor_province_due": lambda: floor.list_due(province_principal, {}, col),
                }
                if lists_only:
                    fns["worker_inbox"] = lambda: call(
                        http, "GET", f"{base}/api/v1/me/notifications?limit=20", 200, headers=worker_a
                    )
                    fns["floor_worker_inbox"] = lambda: floor.inbox(recipient_of(worker_principal), notes)
                    fns["worker_alerts"] = lambda: call(
                        http, "GET", f"{base}/api/v1/alerts?limit=20", 200, headers=worker_a
                    )
                    fns["floor_worker_alerts"] = lambda: floor.alerts(xi[0].id, alerts)
                if have <= 10_000:
                    # For contrast: the same page as one unbounded find (seconds at 100,000, so not there).
                    fns["single_find_supervisor_newest"] = lambda: floor.list(sup_filter, SORTS["newest"], col)
                # The fast pair in rounds of its own, so the slow series do not use up its budget.
                groups = [
                    ("supervisor_newest", "floor_supervisor_newest"),
                    ("worker_queue", "floor_worker_queue"),
                    ("city_newest", "floor_city_newest"),
                    ("province_due", "floor_province_due"),
                    ("worker_inbox", "floor_worker_inbox"),
                    ("worker_alerts", "floor_worker_alerts"),
                ]
                series = {}
                for group in groups:
                    if group[0] in fns:
                        series.update(await interleaved({k: fns[k] for k in group}, n_list, list_budget_s))
                grouped = {k for group in groups for k in group}
                rest = {k: f for k, f in fns.items() if k not in grouped}
                series.update(await interleaved(rest, n_list, list_budget_s))
                row: dict[str, Any] = {
                    "cases": have,
                    **(
                        {
                            "inbox_size": await notes.count_documents({}),
                            "alerts_size": await alerts.count_documents({}),
                        }
                        if lists_only
                        else {}
                    ),
                    "seed_s": seed_s,
                    **{name: summary(lat) for name, lat in series.items()},
                    "plans": {
                        "supervisor_newest": await plan_of(col, _first_window(sup_principal), SORTS["newest"]),
                        "worker_due": await plan_of(col, wrk_filter, SORTS["due"]),
                    },
                }
                results["list_sizes"].append(row)
                s, w = row["supervisor_newest"], row["worker_due"]
                print(
                    f"{have:>8,} | {seed_s:>6.1f} | {s['p50_ms']:>11.2f} ms {s['p99_ms']:>7.2f} | "
                    f"{w['p50_ms']:>11.2f} ms {w['p99_ms']:>7.2f} | "
                    f"{row['floor_supervisor_newest']['p50_ms']:>10.2f} ms "
                    f"{row['floor_worker_due']['p50_ms']:>10.2f} ms | "
                    f"{row['worker_queue']['p50_ms']:>8.2f} ms {row['floor_worker_queue']['p50_ms']:>8.2f} ms | "
                    + (
                        f"{row['single_find_supervisor_newest']['p50_ms']:>13.2f} ms"
                        if "single_find_supervisor_newest" in row
                        else f"{'-':>16}"
                    ),
                    flush=True,
                )
                print(
                    f"{'':>8}   city {COUNTY[:4]} newest first: ours p50 {row['city_newest']['p50_ms']:.2f} ms, "
                    f"floor p50 {row['floor_city_newest']['p50_ms']:.2f} ms; province by due time, no filter: "
                    f"ours p50 {row['province_due']['p50_ms']:.2f} ms, "
                    f"floor p50 {row['floor_province_due']['p50_ms']:.2f} ms",
                    flush=True,
                )
                if "worker_inbox" in row:
                    print(
                        f"{'':>8}   inbox of one worker ({row['inbox_size']:,} notifications): "
                        f"ours p50 {row['worker_inbox']['p50_ms']:.2f} ms p99 {row['worker_inbox']['p99_ms']:.2f}, "
                        f"floor p50 {row['floor_worker_inbox']['p50_ms']:.2f} ms",
                        flush=True,
                    )
                if "worker_alerts" in row:
                    print(
                        f"{'':>8}   alert board of one station ({row['alerts_size']:,} alerts): "
                        f"ours p50 {row['worker_alerts']['p50_ms']:.2f} ms p99 {row['worker_alerts']['p99_ms']:.2f}, "
                        f"floor p50 {row['floor_worker_alerts']['p50_ms']:.2f} ms",
                        flush=True,
                    )
            first, last = results["list_sizes"][0], results["list_sizes"][-1]
            growth = {
                key: last[key]["p50_ms"] / first[key]["p50_ms"]
                for key in (
                    "supervisor_newest",
                    "worker_due",
                    "worker_queue",
                    "worker_inbox",
                    "worker_alerts",
                    "city_newest",
                    "province_due",
                    "floor_supervisor_newest",
                    "floor_worker_due",
                    "floor_city_newest",
                    "floor_province_due",
                    "floor_worker_queue",
                    "floor_worker_inbox",
                    "floor_worker_alerts",
                )
                if key in first and key in last
            }
            results["list_growth_p50"] = growth
            print(
                f"\nlist p50 growth from {first['cases']:,} to {last['cases']:,} cases "
                f"({last['cases'] / first['cases']:.0f}x more): "
                + ", ".join(f"{k} x{v:.2f}" for k, v in growth.items())
            )
            flat = {
                key: growth[key] <= 2.0 and all(r[key]["p50_ms"] < 100.0 for r in results["list_sizes"])
                for key in (
                    "supervisor_newest",
                    "floor_supervisor_newest",
                    "worker_queue",
                    "floor_worker_queue",
                    "city_newest",
                    "floor_city_newest",
                    "province_due",
                    "floor_province_due",
                    "worker_due",
                    "floor_worker_due",
                    "worker_inbox",
                    "floor_worker_inbox",
                    "worker_alerts",
                    "floor_worker_alerts",
                )
                if key in growth
            }
            results["list_flat"] = flat
            print(
                "first pages (supervisor newest first, worker queue by due time), "
                "target <= 2x growth and p50 < 100 ms at every size: "
                + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in flat.items())
            )
            print("query plans at the largest size: " + json.dumps(last["plans"], ensure_ascii=False))
    finally:
        await driver.close()
        await bare_runner.cleanup()
        await runner.cleanup()
        await clean_redis(redis_url, prefix)
        await asyncio.to_thread(server.stop)
        tmp.cleanup()
    out = out or OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"results written to {out}")
    return results


def _first_window(principal: Principal) -> dict[str, Any]:
    """The filter of the first window a newest-first first page reads."""
    return {"created_at": {"$gte": utcnow() - WINDOW_START}, **list_query(list_query_of(principal, {}))[0]}


def _service_filter(principal: Principal) -> dict[str, Any]:
    """The filter ``service.cases.queries.list_cases`` issues for a caller with no other filters."""
    return list_query(list_query_of(principal, {}))[0]


async def plan_of(col: Any, filt: dict[str, Any], sort: list[tuple[str, int]]) -> Any:
    """The winning plan's stages and index, as the server explains it."""
    try:
        explained = await col.find(filt, {"history": 0}).sort(sort).limit(21).explain()
    except Exception as exc:  # noqa: BLE001
        return f"explain failed: {exc}"
    plan = (explained.get("queryPlanner") or {}).get("winningPlan") or explained
    stages = []
    node = plan
    while isinstance(node, dict):
        stages.append(node.get("stage", "?") + (f"({node['indexName']})" if node.get("indexName") else ""))
        node = node.get("inputStage")
    return " <- ".join(stages)


def print_ops(ours: dict[str, list[float]], floors: dict[str, list[float]], results: dict[str, Any]) -> None:
    bare = results["bare_http"]
    print(
        f"\n{'operation':<16} | {'ours ops/s':>10} {'p50 ms':>7} {'p99 ms':>7} | "
        f"{'floor ops/s':>11} {'p50 ms':>7} {'p99 ms':>7} | {'ours/floor p50':>14} {'p99':>6}"
    )
    for name in ours:
        o, f = summary(ours[name]), summary(floors[name])
        ratio = {"p50": o["p50_ms"] / f["p50_ms"], "p99": o["p99_ms"] / f["p99_ms"]}
        results["ops"][name] = {"ours": o, "floor": f, "ratio": ratio}
        print(
            f"{name:<16} | {o['ops_per_s']:>10.0f} {o['p50_ms']:>7.2f} {o['p99_ms']:>7.2f} | "
            f"{f['ops_per_s']:>11.0f} {f['p50_ms']:>7.2f} {f['p99_ms']:>7.2f} | "
            f"{ratio['p50']:>13.1f}x {ratio['p99']:>5.1f}x"
        )
    print(
        f"{'bare HTTP':<16} | {bare['ops_per_s']:>10.0f} {bare['p50_ms']:>7.2f} {bare['p99_ms']:>7.2f} | "
        "(trivial JSON handler, same server and client)"
    )


def run(quick: bool = False) -> int:
    try:
        asyncio.run(main(quick))
    except Failure as exc:
        print(f"FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
