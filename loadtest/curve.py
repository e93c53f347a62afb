"""The throughput curve: open-loop arrivals at stepped rates, ours against the driver floor.

``python -m loadtest --curve`` (``make load``). Two web processes (``run.py serve`` with
``HUIMIN_BACKGROUND_TASKS=false``) and one ``run.py worker`` process doing all background
work, behind Debian's nginx with ``deploy/nginx/huimin-locations.conf`` (or, without nginx,
the small round-robin proxy of ``loadtest/cluster.py``), on a durable SecantusDB and a Redis.

Open loop: arrivals are a Poisson process at the step's rate, drawn in advance from the
seed; each request starts at its scheduled time whether or not earlier ones have finished
(no connection limit in the client), and its latency counts from that scheduled time, so a
generator that falls behind shows up as latency rather than hiding it. Each arrival is one
operation drawn from a fixed mix (``MIX``) of what residents, workers, a supervisor and an
integrator do. A step is sustained when its p99 <= 300 ms, it had no error (every answer
2xx) and it achieved at least 95 % of the rate its arrivals came at (successes / time from
the step's start to its last answer, against arrivals / step length). Steps stop after two in a row are not sustained.

The floor is the same arrival process, mix and rates, with each operation replaced by the
driver operations it cannot do without (``bench.cases.Floor``: the counter and the case +
event inserts in transactions for a submission, ``find_one`` for a read, the time-window
finds for a newest-first page, the conditional update + event in a transaction for an
accept), issued through one ``AsyncMongoClient`` from this process against the same server.

Afterwards the ledger of ``make load`` runs over every submission of the web curve.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pymongo import AsyncMongoClient

from bench.cases import Floor
from loadtest import report
from loadtest.cluster import ROOT, Cluster
from loadtest.nginx import Nginx, nginx_binary
from loadtest.users import Recorder, Sample, Submission, World, case_body, staff_login
from service.cases.queries import list_query_of
from service.cases.repository.listing import filter_conditions, newest_first
from service.common.models import Principal, utcnow
from service.storage.embedded import free_port
from service.storage.indexes import ensure_indexes

P99_TARGET_MS = 300.0
# What one arrival does, and how often (weights sum to 100).
MIX: tuple[tuple[str, int], ...] = (
    ("case.submit", 22),  # a resident files a case (POST /api/v1/cases, Idempotency-Key)
    ("case.get", 24),  # a resident reads one of their cases
    ("case.list", 18),  # a resident's first page
    ("case.queue", 12),  # a worker's queue (open states)
    ("case.accept", 12),  # a worker signs for a dispatched case of the station
    ("case.list.supervisor", 6),  # the county supervisor's first page
    ("client.submit", 6),  # the integrator files a case (webhooks follow)
)
QUEUE_STATES = ["dispatched", "accepted", "in_progress"]


@dataclass
class Step:
    rate: float
    seconds: float
    samples: list[Sample] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)  # how late the generator started requests
    elapsed: float = 0.0

    def result(self) -> dict[str, Any]:
        ok = [s for s in self.samples if 200 <= s.status < 300]
        lat = [s.latency * 1000 for s in self.samples]
        errors = Counter(
            f"{s.status}{' ' + s.code if s.code else ''}" for s in self.samples if not 200 <= s.status < 300
        )
        achieved = len(ok) / self.elapsed if self.elapsed else 0.0
        # Poisson arrivals: a step offers about rate x seconds; what it did offer is the yardstick.
        arrived = len(self.samples) / self.seconds
        out = {
            "offered_per_s": self.rate,
            "arrivals": len(self.samples),
            "arrivals_per_s": round(arrived, 2),
            "achieved_per_s": round(achieved, 2),
            "p50_ms": round(report._pct(lat, 0.50), 1),
            "p99_ms": round(report._pct(lat, 0.99), 1),
            "max_ms": round(max(lat, default=0.0), 1),
            "errors": sum(errors.values()),
            "errors_by_status": dict(errors),
            "generator_lag_p99_ms": round(report._pct(self.lag_ms, 0.99), 1),
            "load_average_1m": round(os.getloadavg()[0], 2),  # the machine's, at the step's end
            "by_op_p99_ms": {
                op: round(report._pct([s.latency * 1000 for s in self.samples if s.op == op], 0.99), 1)
                for op in sorted({s.op for s in self.samples})
            },
        }
        out["sustained"] = (
            out["p99_ms"] <= P99_TARGET_MS and out["errors"] == 0 and achieved >= 0.95 * arrived and bool(ok)
        )
        return out


def schedule(rate: float, seconds: float, rng: random.Random) -> list[tuple[float, str]]:
    """Poisson arrivals over ``seconds`` at ``rate`` per second, each with an operation of the mix."""
    ops, weights = zip(*MIX, strict=True)
    out, t = [], rng.expovariate(rate)
    while t < seconds:
        out.append((t, rng.choices(ops, weights)[0]))
        t += rng.expovariate(rate)
    return out


async def run_step(step: Step, rng: random.Random, do: Callable[[str], Awaitable[tuple[str, int, str | None]]]) -> None:
    """Start every arrival of the step on time; wait (at most 60 s) for the last to finish."""
    plan = schedule(step.rate, step.seconds, rng)
    t0 = time.monotonic()
    tasks = []

    async def one(at: float, op: str) -> None:
        started = time.monotonic()
        step.lag_ms.append(max(0.0, started - (t0 + at)) * 1000)
        try:
            done_op, status, code = await do(op)
        except asyncio.CancelledError:
            step.samples.append(Sample(at, op, 0, time.monotonic() - (t0 + at), code="cut off after 60 s"))
            raise
        except Exception as exc:  # noqa: BLE001 - an error of one request is a sample, not a crash
            done_op, status, code = op, 0, type(exc).__name__
        # Latency from the scheduled start: a late generator counts against us, not for us.
        step.samples.append(Sample(at, done_op, status, time.monotonic() - (t0 + at), code=code))

    for at, op in plan:
        delay = t0 + at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(at, op)))
    if tasks:
        await asyncio.wait(tasks, timeout=60)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)  # the cut-off ones record themselves
    step.elapsed = max((s.t + s.latency for s in step.samples), default=step.seconds)
    step.elapsed = max(step.elapsed, step.seconds)


async def run_curve(
    name: str,
    rates: list[float],
    seconds: float,
    seed: int,
    do: Callable[[str], Awaitable[tuple[str, int, str | None]]],
    *,
    all_steps: bool = False,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    misses = 0
    for i, rate in enumerate(rates):
        step = Step(rate, seconds)
        await run_step(step, random.Random(seed * 1000 + i), do)
        row = step.result()
        rows.append(row)
        print(
            f"{name:6} offered {rate:6.1f}/s achieved {row['achieved_per_s']:6.1f}/s p50 {row['p50_ms']:7.1f} ms "
            f"p99 {row['p99_ms']:8.1f} ms errors {row['errors']:4} load {row['load_average_1m']:5.1f} "
            f"{'ok' if row['sustained'] else 'NOT sustained'}",
            flush=True,
        )
        misses = 0 if row["sustained"] else misses + 1
        if misses >= 2 and not all_steps:
            break
        await asyncio.sleep(2.0)  # let background work of the step settle before the next
    return rows


def best(rows: list[dict[str, Any]]) -> float | None:
    """The highest offered rate that was sustained, with every lower step sustained as well."""
    out = None
    for row in rows:
        if not row["sustained"]:
            break
        out = row["offered_per_s"]
    return out


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _principal(token: str) -> Principal:
    c = _claims(token)
    return Principal(subject=c["sub"], role=c["role"], station_id=c.get("station"), division_prefix=c.get("division"))


class Actors:
    """Logged-in residents, workers, the supervisor and the integrator, and the cases they hold."""

    def __init__(self, rec: Recorder, world: World, rng: random.Random) -> None:
        self.rec, self.world, self.rng = rec, world, rng
        self.residents: list[str] = []
        self.mine: dict[str, list[str]] = defaultdict(list)
        self.workers: dict[str, str] = {}  # station id -> token
        self.dispatched: dict[str, list[str]] = defaultdict(list)  # station id -> case ids
        self.supervisor = ""
        self.client = ""
        self.n = 0

    async def login(self, sms: Any, residents: int) -> None:
        async def resident(n: int) -> None:
            phone = f"1390001{n:04d}"
            for _ in range(10):
                status, _, headers = await self.rec.call("setup", "POST", "/api/v1/auth/otp", json={"phone": phone})
                if status in (200, 202, 204):
                    code = await sms.code_for(phone)
                    status, body, _ = await self.rec.call(
                        "setup", "POST", "/api/v1/auth/otp/verify", json={"phone": phone, "code": code}
                    )
                    if status == 200:
                        self.residents.append(body["access_token"])
                        return
                await asyncio.sleep(min(float(headers.get("Retry-After", 1)), 5))
            raise RuntimeError(f"resident {phone} could not log in")

        await asyncio.gather(*(resident(n) for n in range(residents)))
        for i, st in enumerate(self.world.stations):
            self.workers[st["id"]] = await staff_login(self.rec, f"load-worker-{i}", self.world.staff_password)
        self.supervisor = await staff_login(self.rec, "load-supervisor", self.world.staff_password)
        basic = {"Authorization": aiohttp.encode_basic_auth(self.world.client_id, self.world.client_secret)}
        status, body, _ = await self.rec.call(
            "setup", "POST", "/oauth/token", headers=basic,
            data={"grant_type": "client_credentials", "scope": "cases:read cases:write"},
        )  # fmt: skip
        if status != 200 or not all(self.workers.values()) or not self.supervisor:
            raise RuntimeError("staff or integrator could not log in")
        self.client = body["access_token"]

    async def _call(self, method: str, path: str, token: str, **kw: Any) -> tuple[int, Any]:
        """One request, not recorded by the Recorder (the step records it from its scheduled time)."""
        assert self.rec.session is not None
        h = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        async with self.rec.session.request(
            method, self.rec.base + path, headers=h, timeout=aiohttp.ClientTimeout(total=30), **kw
        ) as r:
            body = await r.json(content_type=None) if r.content_type.endswith("json") else await r.read()
            return r.status, body

    async def _submit(self, op: str, token: str, by: str) -> tuple[str, int, str | None]:
        service = self.world.services[self.n % len(self.world.services)]
        station = self.world.stations[self.rng.randrange(len(self.world.stations))]
        self.n += 1
        key = f"curve-{self.n}-{uuid.uuid4().hex[:8]}"
        sub = Submission(key=key, by=by, service_code=service["code"])
        self.rec.submissions.append(sub)
        body = case_body(service, station, self.rng, key)
        try:
            status, answer = await self._call(
                "POST", "/api/v1/cases", token, json=body, headers={"Idempotency-Key": key}
            )
        except (aiohttp.ClientError, TimeoutError):
            sub.statuses.append(0)
            raise
        sub.statuses.append(status)
        if status == 201 and isinstance(answer, dict):
            sub.case_ids.add(answer["id"])
            if by != "client":
                self.mine[token].append(answer["id"])
            if answer.get("status") == "dispatched" and answer.get("station_id") in self.workers:
                self.dispatched[answer["station_id"]].append(answer["id"])
        return op, status, _code(answer, status)

    async def do(self, op: str) -> tuple[str, int, str | None]:
        """Perform one arrival; returns (operation done, status, problem code)."""
        rng = self.rng
        resident = rng.choice(self.residents)
        if op == "case.accept":
            stations = [s for s, ids in self.dispatched.items() if ids]
            if not stations:
                op = "case.queue"
            else:
                station = rng.choice(stations)
                cid = self.dispatched[station].pop(0)
                status, body = await self._call("POST", f"/api/v1/cases/{cid}/accept", self.workers[station], json={})
                return op, status, _code(body, status)
        if op == "case.get" and not self.mine[resident]:
            op = "case.list"
        if op == "case.submit":
            return await self._submit(op, resident, "resident")
        if op == "client.submit":
            return await self._submit(op, self.client, "client")
        if op == "case.get":
            cid = rng.choice(self.mine[resident][-10:])
            status, body = await self._call("GET", f"/api/v1/cases/{cid}", resident)
        elif op == "case.list":
            status, body = await self._call("GET", "/api/v1/cases?limit=20", resident)
        elif op == "case.queue":
            token = self.workers[rng.choice(list(self.workers))]
            status, body = await self._call(
                "GET", "/api/v1/cases?status=" + ",".join(QUEUE_STATES) + "&limit=20", token
            )
        elif op == "case.list.supervisor":
            status, body = await self._call("GET", "/api/v1/cases?limit=20", self.supervisor)
        else:
            raise ValueError(op)
        return op, status, _code(body, status)


def _code(body: Any, status: int) -> str | None:
    return body.get("code") if isinstance(body, dict) and status >= 300 else None


class FloorActors:
    """The same mix as driver operations only (``bench.cases.Floor``), in a database of its own."""

    def __init__(self, floor: Floor, actors: Actors, app_db: Any, rng: random.Random) -> None:
        self.floor, self.actors, self.rng = floor, actors, rng
        self.app_cases = app_db["cases"]
        self.template: dict[str, Any] = {}
        self.created_event: dict[str, Any] = {}
        self.accept_event: dict[str, Any] = {}
        self.residents = [_principal(t) for t in actors.residents]
        self.workers = [_principal(t) for t in actors.workers.values()]
        self.supervisor = _principal(actors.supervisor)

    async def prepare(self, app_db: Any) -> None:
        """Clone one real case and its creation event (as ``python -m bench`` does)."""
        case = await app_db["cases"].find_one({"status": "dispatched", "created_by.role": "resident"})
        if case is None:
            raise RuntimeError("no dispatched case to clone for the floor")
        event = await app_db["events"].find_one({"case_id": case["_id"], "type": "case.created"})
        assert event is not None
        # The floor's copies carry no Idempotency-Key record (its index is unique).
        self.template = {k: v for k, v in case.items() if k != "idempotency_id"}
        self.created_event = event
        self.accept_event = {**event, "type": "case.accepted", "from_state": "dispatched", "to_state": "accepted"}

    async def newest(self, principal: Principal, query: dict[str, Any]) -> list[Any]:
        async def find(filt: dict[str, Any], sort: list[tuple[str, int]], n: int) -> list[Any]:
            return [d async for d in self.app_cases.find(filt, {"history": 0}).sort(sort).limit(n)]

        conditions = filter_conditions(list_query_of(principal, query))
        docs, _ = await newest_first(find, conditions=conditions, want=21, now=utcnow())
        return docs

    async def do(self, op: str) -> tuple[str, int, str | None]:
        f = self.floor
        if op == "case.accept" and not f.dispatched:
            op = "case.queue"
        if op == "case.get" and not f.dispatched:
            op = "case.list"
        if op in ("case.submit", "client.submit"):
            await f.submit(self.template, self.created_event)
        elif op == "case.get":
            await f.get(self.rng.choice(f.dispatched[-50:]))
        elif op == "case.accept":
            await f.accept(f.dispatched.pop(0), self.accept_event)
        elif op == "case.list":
            await self.newest(self.rng.choice(self.residents), {})
        elif op == "case.queue":
            await self.newest(self.rng.choice(self.workers), {"status": QUEUE_STATES})
        elif op == "case.list.supervisor":
            await self.newest(self.supervisor, {})
        return op, 200, None


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


async def main_async(args: argparse.Namespace, prepare: Callable[..., Awaitable[World]]) -> int:
    workdir = ROOT / "var" / "load"
    started = datetime.now(UTC)
    rates = [float(r) for r in args.rates.split(",")]
    print(f"starting SecantusDB, Redis, 2 web processes, 1 worker process under {workdir} ...", flush=True)
    cluster = await Cluster.start(workdir, workers=1)
    nginx: Nginx | None = None
    out: dict[str, Any] = {}
    exit_codes: dict[int, int | None] = {}
    try:
        if nginx_binary() and not args.no_nginx:
            nginx = Nginx(workdir / "nginx", free_port(), [p.port for p in cluster.webs])
            base, proxy = nginx.start(), "nginx (deploy/nginx/huimin-locations.conf)"
        else:
            base, proxy = cluster.base_url, "the loadtest round-robin proxy (nginx not installed)"
        cluster.base_url = base
        world = await prepare(cluster, stations=args.stations)
        rec = Recorder(base, time.monotonic() + 10**6, 10**9)
        load_before = machine()["load_average"]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            rec.session = session
            actors = Actors(rec, world, random.Random(args.seed))
            await actors.login(cluster.sms, args.residents)
            # a few submissions so reads and the floor's template have cases from the start
            for _ in range(len(world.stations) * 2):
                await actors.do("case.submit")
            print(f"via {proxy} at {base}; steps of {args.step_seconds:.0f} s at {rates} per s", flush=True)
            ours = await run_curve("ours", rates, args.step_seconds, args.seed, actors.do, all_steps=args.all_steps)
            load_after_ours = machine()["load_average"]

            driver: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(cluster.mongo.uri, tz_aware=True)
            try:
                floor_db = "huimin_floor"
                await ensure_indexes(driver[floor_db])
                floor = Floor(driver, floor_db)
                fa = FloorActors(floor, actors, driver["huimin_load"], random.Random(args.seed))
                await fa.prepare(driver["huimin_load"])
                for _ in range(len(world.stations) * 2):
                    await fa.do("case.submit")
                floor_rows = await run_curve(
                    "floor", rates, args.step_seconds, args.seed, fa.do, all_steps=args.all_steps
                )
            finally:
                await driver.close()
        print("checking the ledger ...", flush=True)
        ledger = await report.check_ledger(cluster, rec, catch_up=args.catch_up)
        out = {
            "run": {
                "command": "make load",
                "argv": f"python -m loadtest --curve --rates {args.rates} --step-seconds {args.step_seconds:g}"
                + (" --all-steps" if args.all_steps else ""),
                "started": started.isoformat(timespec="seconds"),
                "proxy": proxy,
                "web_processes": len(cluster.webs),
                "worker_processes": len(cluster.workers),
                "residents": args.residents,
                "stations": args.stations,
                "seed": args.seed,
                "mix": dict(MIX),
                "p99_target_ms": P99_TARGET_MS,
            },
            "machine": {
                **machine(),
                "load_average_before": load_before,
                "load_average_after_ours": load_after_ours,
            },
            "ours": ours,
            "floor": floor_rows,
            "highest_sustained_per_s": {"ours": best(ours), "floor": best(floor_rows)},
            "ledger": ledger,
        }
    finally:
        if nginx is not None:
            nginx.stop()
        exit_codes = await cluster.close()
    out["shutdown_exit_codes"] = {
        **{f"web-{k}": v for k, v in exit_codes.items()},
        **{f"worker-{k}": v for k, v in cluster.worker_exit_codes.items()},
    }
    failures = list(out["ledger"]["problems"])
    if any(code not in (0, None) for code in out["shutdown_exit_codes"].values()):
        failures.append(f"a process did not shut down cleanly: {out['shutdown_exit_codes']}")
    if any("500" in row["errors_by_status"] for row in out["ours"]):
        failures.append("some answers were 500")
    out["verdict"] = {"pass": not failures, "failures": failures}
    path = ROOT / "var" / "load-curve.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    print_curve(out)
    print(f"wrote {path.relative_to(ROOT)}")
    print(f"VERDICT: {'PASS' if not failures else 'FAIL'}")
    for failure in failures:
        print(f"  - {failure}")
    return 0 if not failures else 1


def print_curve(out: dict[str, Any]) -> None:
    print(f"\n{'offered/s':>9} | {'achieved/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} | "
          f"{'floor ach/s':>11} {'p50 ms':>8} {'p99 ms':>8}")  # fmt: skip
    floor = {r["offered_per_s"]: r for r in out["floor"]}
    for r in out["ours"]:
        f = floor.get(r["offered_per_s"])
        fl = f"{f['achieved_per_s']:>11} {f['p50_ms']:>8} {f['p99_ms']:>8}" if f else f"{'-':>11} {'-':>8} {'-':>8}"
        mark = "" if r["sustained"] else "  (not sustained)"
        print(f"{r['offered_per_s']:>9} | {r['achieved_per_s']:>10} {r['p50_ms']:>8} {r['p99_ms']:>8} "
              f"{r['errors']:>6} | {fl}{mark}")  # fmt: skip
    h = out["highest_sustained_per_s"]
    print(f"highest sustained rate (p99 <= {P99_TARGET_MS:.0f} ms, 0 errors): ours {h['ours']}/s, floor {h['floor']}/s")
    led = {k: v for k, v in out["ledger"].items() if k != "problems"}
    print(f"ledger: {led}")
    for p in out["ledger"]["problems"]:
        print(f"  ledger problem: {p}")
    print(f"machine: {out['machine']}")
