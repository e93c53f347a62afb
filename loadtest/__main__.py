"""Load runs: `python -m loadtest [--curve | --chaos] [--duration S]`.

`python -m loadtest` is the closed-loop mixed load (two web processes behind a local
round-robin proxy, on a SecantusDB and a Redis started for the run, data under var/load/);
`make chaos` runs it while stopping MongoDB and Redis for 10 s each and SIGKILLing one web
process, then checks the ledger. `make load` runs `--curve` (loadtest/curve.py): open-loop
arrivals at stepped rates through nginx to two web processes and a worker, next to the
driver floor, then the same ledger. Loopback only; every loop is bounded in requests and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp

from loadtest import report
from loadtest.cluster import ROOT, Cluster
from loadtest.users import Recorder, World, integrator, resident, supervisor, worker

STAFF_PASSWORD = "load-staff-Passw0rd!"
COUNTY = "341021"  # 歙县: the stations under load are its townships


async def _admin(cluster: Cluster, session: aiohttp.ClientSession) -> str:
    async with session.post(
        cluster.base_url + "/api/v1/auth/login", json={"username": "admin", "password": cluster.admin_password}
    ) as r:
        r.raise_for_status()
        return str((await r.json())["access_token"])


async def _json(session: aiohttp.ClientSession, method: str, url: str, token: str, **kw: Any) -> Any:
    async with session.request(method, url, headers={"Authorization": f"Bearer {token}"}, **kw) as r:
        body = await r.json(content_type=None)
        if r.status >= 300:
            raise RuntimeError(f"{method} {url}: {r.status} {body}")
        return body


async def prepare(cluster: Cluster, *, stations: int) -> World:
    """Staff, an integrator client and its webhook subscription, through the admin API."""
    base = cluster.base_url
    async with aiohttp.ClientSession() as s:
        admin = await _admin(cluster, s)
        found = await _json(s, "GET", f"{base}/api/v1/stations?county={COUNTY}&limit={stations}", admin)
        chosen = found["items"][:stations]
        for i, st in enumerate(chosen):
            await _json(s, "POST", f"{base}/api/v1/staff", admin, json={
                "username": f"load-worker-{i}", "password": STAFF_PASSWORD, "role": "worker",
                "name": f"社工{i}", "station_id": st["id"],
            })  # fmt: skip
        await _json(s, "POST", f"{base}/api/v1/staff", admin, json={
            "username": "load-supervisor", "password": STAFF_PASSWORD, "role": "supervisor",
            "name": "督导", "division_prefix": COUNTY,
        })  # fmt: skip
        client = await _json(s, "POST", f"{base}/api/v1/clients", admin, json={
            "name": "负载测试对接系统 load integrator", "rate_limit_per_minute": 6000,
            "scopes": ["cases:read", "cases:write", "webhooks:manage"],
        })  # fmt: skip
        client_id, client_secret = client["client"]["client_id"], client["client_secret"]
        async with s.post(
            f"{base}/oauth/token",
            headers={"Authorization": aiohttp.encode_basic_auth(client_id, client_secret)},
            data={"grant_type": "client_credentials", "scope": "webhooks:manage"},
        ) as r:
            r.raise_for_status()
            hook_token = (await r.json())["access_token"]
        sub = await _json(
            s, "POST", f"{base}/api/v1/webhooks", hook_token, json={"url": cluster.receiver.url, "event_types": ["*"]}
        )
        cluster.receiver.secret = sub["secret"]
        catalogue = await _json(s, "GET", f"{base}/api/v1/services", admin)
        services = []
        for item in catalogue["items"]:
            services.append(await _json(s, "GET", f"{base}/api/v1/services/{item['code']}", admin))
    return World(
        services=services,
        stations=chosen,
        supervisor_division=COUNTY,
        staff_password=STAFF_PASSWORD,
        client_id=client_id,
        client_secret=client_secret,
    )


class Faults:
    """The chaos schedule: each fault is (name, start, end) in seconds since the load started."""

    def __init__(self, cluster: Cluster, rec: Recorder, duration: float) -> None:
        self.cluster, self.rec = cluster, rec
        self.windows: list[dict[str, Any]] = []
        self.probes: list[dict[str, Any]] = []
        self.at = {"mongo": duration * 0.15, "redis": duration * 0.4, "web": duration * 0.6}

    def now(self) -> float:
        return time.monotonic() - self.rec.t0

    async def _until(self, t: float) -> None:
        await asyncio.sleep(max(0.0, t - self.now()))

    async def run(self, outage: float) -> None:
        c = self.cluster
        await self._until(self.at["mongo"])
        start = self.now()
        await asyncio.to_thread(c.mongo.stop)
        print(f"[{start:6.1f}s] MongoDB stopped", flush=True)
        await asyncio.sleep(outage)
        await c.restart_mongo()
        self.windows.append({"fault": "mongodb_down", "start": start, "end": self.now()})
        print(f"[{self.now():6.1f}s] MongoDB restarted", flush=True)

        await self._until(self.at["redis"])
        start = self.now()
        c.redis.stop()
        print(f"[{start:6.1f}s] Redis stopped", flush=True)
        await asyncio.sleep(outage / 2)
        status, body, _ = await self.rec.call("otp.probe", "POST", "/api/v1/auth/otp", json={"phone": "13900009999"})
        self.probes.append({"probe": "otp_during_redis_outage", "status": status, "code": (body or {}).get("code")})
        await asyncio.sleep(outage / 2)
        await c.redis.start()
        self.windows.append({"fault": "redis_down", "start": start, "end": self.now()})
        print(f"[{self.now():6.1f}s] Redis restarted", flush=True)

        await self._until(self.at["web"])
        start = self.now()
        victim = c.webs[1]
        victim.kill()
        print(f"[{start:6.1f}s] web process {victim.slot} killed (SIGKILL)", flush=True)
        await victim.start()
        self.windows.append({"fault": "web_killed", "start": start, "end": self.now()})
        print(f"[{self.now():6.1f}s] web process {victim.slot} back", flush=True)


async def sample_memory(cluster: Cluster, rec: Recorder) -> None:
    while time.monotonic() < rec.deadline + 5:
        for p in cluster.webs:
            p.sample()
        await asyncio.sleep(1.0)


async def readiness(cluster: Cluster) -> dict[str, int]:
    out = {}
    async with aiohttp.ClientSession() as s:
        for p in cluster.webs:
            try:
                async with s.get(f"http://127.0.0.1:{p.port}/readyz", timeout=aiohttp.ClientTimeout(total=10)) as r:
                    out[f"web-{p.slot}"] = r.status
            except (aiohttp.ClientError, TimeoutError):
                out[f"web-{p.slot}"] = 0
    return out


async def main_async(args: argparse.Namespace) -> int:
    workdir = ROOT / "var" / "load"
    started = datetime.now(UTC)
    print(f"starting SecantusDB, Redis, 2 web processes and the proxy under {workdir} ...", flush=True)
    cluster = await Cluster.start(workdir)
    exit_codes: dict[int, int | None] = {}
    try:
        world = await prepare(cluster, stations=args.stations)
        print(
            f"proxy {cluster.base_url}; {len(world.services)} services, {len(world.stations)} stations; "
            f"{args.residents} residents, {len(world.stations)} workers, 1 supervisor, 1 integrator; "
            f"{args.duration:.0f} s of load{' with faults' if args.chaos else ''}",
            flush=True,
        )
        rec = Recorder(cluster.base_url, time.monotonic() + args.duration, args.max_requests)
        rng = random.Random(args.seed)
        faults = Faults(cluster, rec, args.duration) if args.chaos else None
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector) as session:
            rec.session = session
            users = [resident(rec, world, cluster.sms, n, random.Random(rng.random())) for n in range(args.residents)]
            users += [
                worker(rec, world, f"load-worker-{i}", random.Random(rng.random())) for i in range(len(world.stations))
            ]
            users += [supervisor(rec, world, "load-supervisor", random.Random(rng.random()))]
            users += [integrator(rec, world, random.Random(rng.random()))]
            tasks = [asyncio.create_task(u) for u in users]
            side = [asyncio.create_task(sample_memory(cluster, rec))]
            if faults is not None:
                side.append(asyncio.create_task(faults.run(args.outage)))
            # Users stop at the deadline; anything still running well after it is cut off.
            await asyncio.wait(tasks + side, timeout=args.duration + 90)
            for t in tasks + side:
                if not t.done():
                    t.cancel()
            for t in tasks + side:
                if t.done() and not t.cancelled() and t.exception() is not None:
                    print(f"a simulated user failed: {t.exception()!r}", file=sys.stderr)
        load_seconds = min(time.monotonic() - rec.t0, args.duration + 90)
        print(f"load done: {len(rec.samples)} requests in {load_seconds:.0f} s; checking the ledger ...", flush=True)
        ready = await readiness(cluster)
        ledger = await report.check_ledger(cluster, rec, catch_up=args.catch_up)
        summary = report.summarise(
            rec, cluster, load_seconds=load_seconds, windows=faults.windows if faults else [],
            probes=faults.probes if faults else [],
        )  # fmt: skip
        summary["ledger"] = ledger
        summary["ready_after"] = ready
    finally:
        exit_codes = await cluster.close()
    summary["shutdown_exit_codes"] = {f"web-{k}": v for k, v in exit_codes.items()}
    summary["run"] = {
        "command": "make chaos" if args.chaos else "make load",
        "started": started.isoformat(timespec="seconds"),
        "duration_s": args.duration,
        "residents": args.residents,
        "stations": args.stations,
        "web_processes": len(cluster.webs),
        "seed": args.seed,
    }
    verdict = report.verdict(summary, chaos=args.chaos)
    summary["verdict"] = verdict
    name = "chaos" if args.chaos else "load"
    out = ROOT / "var" / f"{name}-summary.json"
    out.write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    plot = ROOT / "var" / f"{name}-latency.png"
    report.plot(rec, plot, windows=summary.get("faults", []), title=f"huimin {summary['run']['command']}")
    report.print_summary(summary)
    print(f"wrote {out.relative_to(ROOT)} and {plot.relative_to(ROOT)}")
    print(f"VERDICT: {'PASS' if verdict['pass'] else 'FAIL'}")
    for failure in verdict["failures"]:
        print(f"  - {failure}")
    return 0 if verdict["pass"] else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__)
    p.add_argument("--chaos", action="store_true", help="inject faults during the load and check the ledger")
    p.add_argument("--duration", type=float, default=None, help="seconds of load (default 75; 150 with --chaos)")
    p.add_argument("--residents", type=int, default=16, help="simulated residents (default 16)")
    p.add_argument("--stations", type=int, default=4, help="stations under load, one worker each (default 4)")
    p.add_argument("--max-requests", type=int, default=50_000, help="stop after this many requests")
    p.add_argument("--outage", type=float, default=10.0, help="seconds each backing server stays down")
    p.add_argument("--catch-up", type=float, default=120.0, help="longest wait for webhook deliveries to catch up")
    p.add_argument("--seed", type=int, default=20261128)
    curve = p.add_argument_group("throughput curve (--curve, what `make load` runs)")
    curve.add_argument("--curve", action="store_true", help="step the offered rate (open loop), ours and the floor")
    curve.add_argument("--rates", default="1,2,4,6,8,12,16,20,24,32,40", help="offered rates per second, in order")
    curve.add_argument("--step-seconds", type=float, default=20.0, help="seconds per step (default 20)")
    curve.add_argument("--all-steps", action="store_true", help="run every step (default: stop after 2 misses)")
    curve.add_argument("--no-nginx", action="store_true", help="use the round-robin proxy even if nginx is installed")
    args = p.parse_args(argv)
    if args.curve:
        from loadtest import curve as curve_run

        if args.residents == 16:
            args.residents = 24
        return asyncio.run(curve_run.main_async(args, prepare))
    if args.duration is None:
        args.duration = 150.0 if args.chaos else 75.0
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
