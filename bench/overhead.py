"""Our own cost per request: the API's latency less its floor and bare HTTP, measured in one run.

For each operation (get, submit, list as a worker and as a supervisor, accept) three things
are timed in the same run, interleaved request by request so that a change in the machine's
load hits all three alike:

- **ours**: the real app (``run.create_app``) on a loopback port, driven by an aiohttp client
  one request at a time;
- **floor**: the MongoDB operations the request cannot do without, issued through pymongo
  (``bench.cases.Floor``: the case-number counter and the case + event inserts for submit,
  ``find_one`` for get, the same newest-first window finds for a list, the conditional update
  + event insert and the read back for accept);
- **bare HTTP**: a trivial JSON handler on the same kind of server and client.

"Our own cost" is ours − floor − bare HTTP (medians), what is left that is ours to make small;
each operation has a target (issue #18): get <= 0.5 ms, submit <= 5 ms, lists and accept
<= 1 ms. Results also go to ``var/bench-overhead.json``. ``--quick``: 60 of each instead of 300.

The app keeps each case a list reads, per version, with the part of its view and dump that is
the same for every caller (``service.common.memo``): the supervisor's list read again and again
here finds them kept, as a console's refreshes of a page whose cases have not changed do.
``list_supervisor_cold`` is the same list with nothing kept (emptied before each call): what
a page of cases changed since they were last read costs. It has no target; it is printed so the
cost of a miss stays in sight.

Each call's CPU time (``time.process_time``, this one process: client, app and driver) is
recorded beside its wall time, and "own CPU" (ours − floor − bare, medians) printed after: on
a shared machine the wall-clock figures swing with its load, the CPU figures hardly do (what
they leave out is the waiting on a round trip, so a round trip saved shows in the wall time only).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from pymongo import AsyncMongoClient

from bench.cases import (
    ADMIN,
    CAPABILITIES,
    COUNTY,
    SERVICE_CODE,
    STATIONS,
    Floor,
    bare_app,
    call,
    clean_redis,
    redis_url_or_none,
    serve,
)
from config import load_settings
from handlers.cases import dump_listed_case
from handlers.keys import CTX
from run import create_app
from service.cases.repository.cases import LISTED_CASES
from service.cases.views import HELD_VIEWS
from service.catalog import service as catalog
from service.catalog.service import example_answers
from service.common.inputs import from_given
from service.common.models import Principal, utcnow
from service.identity.tokens import issue_access_token
from service.stations import service as stations
from service.stations.inputs import StationRegistration
from service.storage.embedded import EmbeddedMongo
from service.storage.indexes import ensure_indexes

OUT = Path(__file__).resolve().parents[1] / "var" / "bench-overhead.json"
# Our own cost (ms, p50) each operation should stay within (issue #18).
TARGETS_MS = {"get": 0.5, "submit": 5.0, "list_worker": 1.0, "list_supervisor": 1.0, "accept": 1.0}

Op = Callable[[int], Awaitable[Any]]


async def rounds(
    ops: dict[str, Op], n: int, warmup: int = 3, cpu: dict[str, list[float]] | None = None
) -> dict[str, list[float]]:
    """Latencies of each of ``ops`` called in turn, ``n`` rounds after ``warmup`` unmeasured ones
    (and into ``cpu``, when given, the process CPU time of each call)."""
    for i in range(warmup):
        for fn in ops.values():
            await fn(-1 - i)
    out: dict[str, list[float]] = {name: [] for name in ops}
    for name in ops:
        if cpu is not None:
            cpu[name] = []
    for i in range(n):
        for name, fn in ops.items():
            c = time.process_time()
            t = time.perf_counter()
            await fn(i)
            out[name].append(time.perf_counter() - t)
            if cpu is not None:
                cpu[name].append(time.process_time() - c)
    return out


def forget_kept_cases() -> None:
    """Empty what the app keeps per version of a case (the case a list reads, its view's fields the
    same for every caller, their dump), so the next list builds every case from its document."""
    LISTED_CASES.clear()
    HELD_VIEWS.clear()
    dump_listed_case.clear()


def p50_ms(latencies: list[float]) -> float:
    return statistics.median(latencies) * 1000


async def main(quick: bool) -> dict[str, Any]:
    n = 60 if quick else 300
    server = EmbeddedMongo(":memory:", durable=False)
    uri = await asyncio.to_thread(server.start)
    redis_url = redis_url_or_none()
    prefix = f"bench-overhead-{uuid.uuid4().hex[:8]}:"
    tmp = tempfile.TemporaryDirectory(prefix="bench-overhead-")
    settings = load_settings(
        {},
        env="test",
        mongodb_uri=uri,
        mongodb_db="bench_overhead",
        redis_url=redis_url,
        redis_prefix=prefix,
        data_dir=tmp.name,
        background_tasks=False,
        log_level="WARNING",
    )
    load = os.getloadavg()
    print(
        f"SecantusDB in memory (not durable); Redis: {redis_url or 'in-process stand-in'}; "
        f"{n} of each, interleaved; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}",
        flush=True,
    )
    app = create_app(settings)
    runner, base = await serve(app)
    bare_runner, bare_base = await serve(bare_app())
    driver: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, retryWrites=False)
    results: dict[str, Any] = {"quick": quick, "n": n, "load_average": load, "ops": {}}
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
        worker_principal = Principal(subject=f"w-{xi[0].code}", role="worker", station_id=xi[0].id)
        floor_db = "bench_overhead_floor"
        await ensure_indexes(driver[floor_db])
        floor = Floor(driver, floor_db)
        app_cases = ctx.db["cases"]

        async with aiohttp.ClientSession() as http:
            submitted: list[tuple[str, str]] = []
            url = f"{base}/api/v1/cases"
            template: dict[str, Any] = {}
            event_template: dict[str, Any] = {}

            async def bare(i: int) -> None:
                await call(http, "GET", f"{bare_base}/bare/{i}", 200)

            async def submit(i: int) -> None:
                station = xi[i % len(xi)]
                body = {
                    "service_code": SERVICE_CODE,
                    "answers": answers,
                    "division_code": station.code,
                    "address": "徽城镇 新安路 1 号",
                    "contact": {"name": "王芳", "phone": "13912345678"},
                }
                case = await call(http, "POST", url, 201, json=body, headers=resident)
                submitted.append((case["id"], case["station_id"]))

            # The floor clones one real case and its creation event.
            await submit(0)
            template.update(await app_cases.find_one({"_id": submitted[0][0]}) or {})
            event_template.update(await ctx.db["events"].find_one({"case_id": submitted[0][0]}) or {})

            async def submit_floor(i: int) -> None:
                await floor.submit(template, event_template)

            async def get(i: int) -> None:
                await call(http, "GET", f"{url}/{submitted[i % len(submitted)][0]}", 200, headers=resident)

            async def get_floor(i: int) -> None:
                await floor.get(floor.dispatched[i % len(floor.dispatched)])

            async def list_supervisor(i: int) -> None:
                await call(http, "GET", f"{url}?limit=20", 200, headers=supervisor)

            async def list_supervisor_floor(i: int) -> None:
                await floor.list_newest(sup_principal, app_cases)

            async def list_supervisor_cold(i: int) -> None:
                # Nothing kept from the reads before: each case built, viewed and dumped anew.
                forget_kept_cases()
                await list_supervisor(i)

            async def list_worker(i: int) -> None:
                await call(http, "GET", f"{url}?limit=20", 200, headers=worker_a)

            async def list_worker_floor(i: int) -> None:
                await floor.list_newest(worker_principal, app_cases)

            accept_event = {**event_template, "type": "case.accepted", "from_state": "dispatched"}
            accept_event["to_state"] = "accepted"

            async def accept(i: int) -> None:
                case_id, station_id = to_accept.pop()
                await call(http, "POST", f"{url}/{case_id}/accept", 200, json={}, headers=workers[station_id])

            async def accept_floor(i: int) -> None:
                await floor.accept(floor_accept.pop(), accept_event)

            phases: list[tuple[str, Op, Op]] = [
                ("submit", submit, submit_floor),
                ("get", get, get_floor),
                ("list_worker", list_worker, list_worker_floor),
                ("list_supervisor", list_supervisor, list_supervisor_floor),
                ("list_supervisor_cold", list_supervisor_cold, list_supervisor_floor),
                ("accept", accept, accept_floor),
            ]
            to_accept: list[tuple[str, str]] = []
            floor_accept: list[str] = []
            print(
                f"\n{'operation':<20} | {'ours p50':>8} | {'floor p50':>9} | {'bare p50':>8} | "
                f"{'our own cost':>12} | {'target':>8} | met"
            )
            for name, ours_fn, floor_fn in phases:
                if name == "accept":
                    to_accept[:] = submitted
                    floor_accept[:] = floor.dispatched
                    count = min(n, len(to_accept) - 3, len(floor_accept) - 3)
                else:
                    count = n
                cpu: dict[str, list[float]] = {}
                series = await rounds({"ours": ours_fn, "floor": floor_fn, "bare": bare}, count, cpu=cpu)
                o, f, b = (p50_ms(series[k]) for k in ("ours", "floor", "bare"))
                own = o - f - b
                co, cf, cb = (p50_ms(cpu[k]) for k in ("ours", "floor", "bare"))
                target = TARGETS_MS.get(name)
                met = None if target is None else own <= target
                results["ops"][name] = {
                    "n": count,
                    "ours_p50_ms": o,
                    "floor_p50_ms": f,
                    "bare_p50_ms": b,
                    "own_cost_ms": own,
                    "target_ms": target,
                    "met": met,
                    "ours_over_floor": o / f,
                    "cpu_p50_ms": {"ours": co, "floor": cf, "bare": cb},
                    "own_cpu_ms": co - cf - cb,
                }
                print(
                    f"{name:<20} | {o:>5.2f} ms | {f:>6.2f} ms | {b:>5.2f} ms | {own:>9.2f} ms | "
                    f"{'-' if target is None else f'{target:.1f}':>5} ms | "
                    f"{'-' if met is None else 'yes' if met else 'NO'}",
                    flush=True,
                )
    finally:
        await driver.close()
        await bare_runner.cleanup()
        await runner.cleanup()
        await clean_redis(redis_url, prefix)
        await asyncio.to_thread(server.stop)
        tmp.cleanup()
    print(f"\n{'operation':<20} | {'ours CPU':>8} | {'floor CPU':>9} | {'bare CPU':>8} | own CPU (p50 of each call)")
    for name, op in results["ops"].items():
        c, own_cpu = op["cpu_p50_ms"], op["own_cpu_ms"]
        print(f"{name:<20} | {c['ours']:>5.2f} ms | {c['floor']:>6.2f} ms | {c['bare']:>5.2f} ms | {own_cpu:>6.2f} ms")
    load_after = os.getloadavg()
    results["load_average_after"] = load_after
    print(f"load average after: {load_after[0]:.1f} {load_after[1]:.1f} {load_after[2]:.1f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"results written to {OUT}")
    return results


def run(quick: bool = False) -> int:
    results = asyncio.run(main(quick))
    return 0 if all(op["met"] is not False for op in results["ops"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(run())
