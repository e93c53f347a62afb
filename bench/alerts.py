"""A county's device traffic against two web processes: alert intake latency and alert-to-notification time.

The cluster of ``make load`` (loopback only): a SecantusDB and a Redis started for the run,
two ``run.py serve`` processes with their background loops behind a round-robin proxy, and
the local SMS gateway stand-in, which notes when each text arrives. ``BENCH_ALERTS_DEVICES``,
``BENCH_ALERTS_WINDOW`` (seconds) and ``BENCH_ALERTS_BURST`` set another size or rate. Set-up: one worker per
station of the county on the duty rota with an on-call phone, and a vendor client with
``alerts:write`` (all through the admin API); the register's people and their devices are
bulk-loaded (registering 20,000 people through the API would take longer than the run).

Then, at once:

- **steady**: every device reports once per window (20,000 devices over 10 minutes, 33 a
  second; ``--quick``: 2,000 over one minute, the same rate). Huimin takes alerts, not
  heartbeats, so each report is sent as a non-urgent alert (90% low battery, 8% offline,
  2% no activity): the worst case for the intake, since each one is written;
- **burst**: 500 SOS alerts from 500 devices within one minute, from the window's second
  quarter (each opens an urgent case and texts the station's on-duty worker);
- **floor**: ``GET /healthz`` through the same proxy during the same load, the cost of a
  request that does no work.

It reports intake latency (p50, p95, p99, max) for steady reports and for the burst, the
floor beside them, and the time from sending each SOS to the on-duty worker's SMS arriving
at the gateway. Results also go to ``var/bench-alerts.json``. It fails (exit status 1) if a
request fails, or an SOS is not texted within 60 s of the burst's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pymongo import AsyncMongoClient

from loadtest.cluster import ROOT, Cluster, FakeSmsGateway
from service.common.ids import new_id

COUNTY = "341021"  # 歙县
STATIONS = 20
BURST = 500
BURST_SECONDS = 60.0
NOTIFY_WAIT = 60.0
REQUEST_TIMEOUT = 30.0
DEVICE_IN_SMS = re.compile(r"设备 (\S+?)，")


class TimedSms(FakeSmsGateway):
    """The gateway stand-in, noting when each staff text arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, float] = {}

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        text = str((body.get("params") or {}).get("body") or "")
        match = DEVICE_IN_SMS.search(text)
        if match and body.get("template") == "huimin_staff_alert":
            self.arrived.setdefault(match.group(1), time.perf_counter())
        return await super()._send(request)


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _summary(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50_ms": round(_pct(ms, 50), 1),
        "p95_ms": round(_pct(ms, 95), 1),
        "p99_ms": round(_pct(ms, 99), 1),
        "max_ms": round(max(ms), 1) if ms else float("nan"),
    }


async def _json(s: aiohttp.ClientSession, method: str, url: str, token: str, **kw: Any) -> Any:
    async with s.request(method, url, headers={"Authorization": f"Bearer {token}"}, **kw) as r:
        body = await r.json(content_type=None)
        if r.status >= 300:
            raise RuntimeError(f"{method} {url}: {r.status} {body}")
        return body


async def _setup(cluster: Cluster, devices: int) -> tuple[str, list[dict[str, Any]]]:
    """Workers on the rota, a vendor client, and the register's people with their devices."""
    base = cluster.base_url
    async with aiohttp.ClientSession() as s:
        async with s.post(
            base + "/api/v1/auth/login", json={"username": "admin", "password": cluster.admin_password}
        ) as r:
            admin = str((await r.json())["access_token"])
        found = await _json(s, "GET", f"{base}/api/v1/stations?county={COUNTY}&limit={STATIONS}", admin)
        stations = found["items"][:STATIONS]
        now = datetime.now(UTC)
        for i, st in enumerate(stations):
            worker = await _json(s, "POST", f"{base}/api/v1/staff", admin, json={
                "username": f"duty-{i}", "password": "bench-staff-Passw0rd!", "role": "worker",
                "name": f"值班社工{i}", "station_id": st["id"], "phone": f"1370000{i:04d}",
            })  # fmt: skip
            await _json(s, "POST", f"{base}/api/v1/stations/{st['id']}/rota", admin, json={
                "staff_id": worker["id"], "starts_at": (now - timedelta(hours=1)).isoformat(),
                "ends_at": (now + timedelta(hours=12)).isoformat(), "phone": f"1370000{i:04d}",
            })  # fmt: skip
        issued = await _json(s, "POST", f"{base}/api/v1/clients", admin, json={
            "name": "设备厂商 bench vendor", "rate_limit_per_minute": 100_000, "scopes": ["alerts:write"],
        })  # fmt: skip
        client_id, secret = issued["client"]["client_id"], issued["client_secret"]
        async with s.post(
            f"{base}/oauth/token",
            headers={"Authorization": aiohttp.encode_basic_auth(client_id, secret)},
            data={"grant_type": "client_credentials", "scope": "alerts:write"},
        ) as r:
            r.raise_for_status()
            token = str((await r.json())["access_token"])
    mongo: Any = AsyncMongoClient(cluster.env["HUIMIN_MONGODB_URI"], tz_aware=True, socketTimeoutMS=600_000)
    try:
        db = mongo[cluster.env["HUIMIN_MONGODB_DB"]]
        elders, devs = [], []
        for i in range(devices):
            st = stations[i % len(stations)]
            elder_id = new_id()
            elders.append({
                "_id": elder_id, "name": f"老人{i}", "id_card_masked": "3410**********0000",
                "id_card_hash": f"bench-{elder_id}", "birth_date": "1940-01-01", "gender": "female",
                "township": st["code"], "station_id": st["id"], "county_code": COUNTY, "city_code": COUNTY[:4] + "00",
                "flags": ["alone"], "suggested_tier": "high", "tier": "high", "previous_tier": None,
                "tier_from": None, "active": True, "version": 1, "phone": "13900000000",
                "address": f"歙县 测试路 {i} 号", "location": st["location"], "created_at": now,
            })  # fmt: skip
            devs.append({
                "_id": new_id(), "elder_id": elder_id, "station_id": st["id"], "township": st["code"],
                "county_code": COUNTY, "type": "sos_button", "vendor_client_id": client_id,
                "vendor_device_id": f"D{i:06d}", "location_note": "卧室 bedroom", "installed_by": None,
                "installed_at": None, "active": True, "created_at": now, "created_by": "bench", "open_incident": None,
            })  # fmt: skip
        for k in range(0, devices, 2000):
            await db["elders"].insert_many(elders[k : k + 2000], ordered=False)
            await db["devices"].insert_many(devs[k : k + 2000], ordered=False)
    finally:
        await mongo.close()
    return token, devs


async def _post(s: aiohttp.ClientSession, url: str, token: str, body: dict[str, Any]) -> tuple[int, float]:
    """(status, seconds); a request not answered within REQUEST_TIMEOUT counts as status 0."""
    t = time.perf_counter()
    try:
        async with s.post(
            url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=aiohttp.ClientTimeout(REQUEST_TIMEOUT)
        ) as r:
            await r.read()
            return r.status, time.perf_counter() - t
    except (TimeoutError, aiohttp.ClientError):
        return 0, time.perf_counter() - t


async def _paced(count: int, seconds: float, send: Any) -> None:
    """Call ``send(i)`` ``count`` times, evenly spread over ``seconds``, without waiting for answers."""
    start = time.perf_counter()
    tasks = []
    for i in range(count):
        delay = start + i * seconds / count - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i)))
    await asyncio.gather(*tasks)


async def _run(quick: bool) -> int:
    devices, window = (2_000, 60.0) if quick else (20_000, 600.0)
    # A smaller box than a county's servers: the same shape at a lower rate.
    devices = int(os.environ.get("BENCH_ALERTS_DEVICES", devices))
    window = float(os.environ.get("BENCH_ALERTS_WINDOW", window))
    burst_size = int(os.environ.get("BENCH_ALERTS_BURST", BURST))
    workdir = ROOT / "var" / "bench-alerts"
    sms = TimedSms()
    cluster = await Cluster.start(workdir, webs=2, sms=sms)
    try:
        token, devs = await _setup(cluster, devices)
        url = cluster.base_url + "/api/v1/alerts"
        rng = random.Random(19)
        steady_lat: list[float] = []
        burst_lat: list[float] = []
        floor_lat: list[float] = []
        failures: list[str] = []
        sent_at: dict[str, float] = {}
        burst_devices = devs[-burst_size:]
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(connector=connector) as s:

            async def steady(i: int) -> None:
                d = devs[i]
                kind = rng.choices(("low_battery", "offline", "no_activity"), (90, 8, 2))[0]
                body = {
                    "alert_id": f"S-{i}",
                    "type": kind,
                    "device_id": d["vendor_device_id"],
                    "occurred_at": datetime.now(UTC).isoformat(),
                }
                status, took = await _post(s, url, token, body)
                if status in (200, 201):
                    steady_lat.append(took)
                else:
                    failures.append(f"steady {status}")

            async def burst(i: int) -> None:
                d = burst_devices[i]
                body = {
                    "alert_id": f"B-{i}",
                    "type": "sos",
                    "device_id": d["vendor_device_id"],
                    "occurred_at": datetime.now(UTC).isoformat(),
                }
                sent_at[d["vendor_device_id"]] = time.perf_counter()
                status, took = await _post(s, url, token, body)
                if status == 201:
                    burst_lat.append(took)
                else:
                    failures.append(f"burst {status}")

            async def floor() -> None:
                while True:
                    t = time.perf_counter()
                    try:
                        async with s.get(cluster.base_url + "/healthz", timeout=aiohttp.ClientTimeout(30)) as r:
                            await r.read()
                        floor_lat.append(time.perf_counter() - t)
                    except (TimeoutError, aiohttp.ClientError):
                        failures.append("floor timeout")
                    await asyncio.sleep(0.5)

            driver_lat: list[float] = []
            floor_client: Any = AsyncMongoClient(cluster.env["HUIMIN_MONGODB_URI"], tz_aware=True)
            fdb = floor_client[cluster.env["HUIMIN_MONGODB_DB"] + "_floor"]
            await fdb["devices"].create_index([("vendor_client_id", 1), ("vendor_device_id", 1)], unique=True)
            await fdb["alerts"].create_index([("client_id", 1), ("vendor_alert_id", 1)], unique=True)
            await fdb["maintenance"].create_index("open_key", unique=True, sparse=True)
            await fdb["devices"].insert_one({"_id": "fd", "vendor_client_id": "v", "vendor_device_id": "D0"})

            async def driver_floor() -> None:
                """The bare driver operations a repeated report's intake needs, in the same server, once a second."""
                n = 0
                while True:
                    n += 1
                    t = time.perf_counter()
                    try:
                        await fdb["devices"].find_one({"vendor_client_id": "v", "vendor_device_id": "D0"})
                        await fdb["alerts"].insert_one({"_id": f"a{n}", "client_id": "v", "vendor_alert_id": f"F{n}"})
                        counted = await fdb["maintenance"].update_one(
                            {"open_key": "D0:low_battery"}, {"$inc": {"count": 1}}
                        )
                        if counted.matched_count == 0:
                            await fdb["maintenance"].insert_one({"open_key": "D0:low_battery", "count": 1})
                        await fdb["maintenance"].find_one({"open_key": "D0:low_battery"}, {"_id": 1})
                        await fdb["alerts"].update_one({"_id": f"a{n}"}, {"$set": {"outcome": "collapsed"}})
                        driver_lat.append(time.perf_counter() - t)
                    except Exception:  # noqa: BLE001
                        failures.append("driver floor")
                    await asyncio.sleep(1.0)

            async def delayed_burst() -> None:
                await asyncio.sleep(window / 4)
                await _paced(burst_size, BURST_SECONDS, burst)

            print(f"    {devices} devices over {window:.0f} s, {burst_size} SOS in {BURST_SECONDS:.0f} s", flush=True)
            floor_task = asyncio.create_task(floor())
            driver_task = asyncio.create_task(driver_floor())
            t0 = time.perf_counter()
            await asyncio.gather(_paced(devices, window, steady), delayed_burst())
            floor_task.cancel()
            driver_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await floor_task
            with contextlib.suppress(asyncio.CancelledError):
                await driver_task
            await floor_client.close()
            elapsed = time.perf_counter() - t0
        deadline = time.perf_counter() + NOTIFY_WAIT
        while time.perf_counter() < deadline and len([d for d in sent_at if d in sms.arrived]) < len(sent_at):
            await asyncio.sleep(0.25)
        notify = [sms.arrived[d] - sent_at[d] for d in sent_at if d in sms.arrived]
        missing = len(sent_at) - len(notify)
    finally:
        await cluster.close()
    result = {
        "devices": devices,
        "burst": burst_size,
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "window_s": window,
        "elapsed_s": round(elapsed, 1),
        "steady_intake": _summary(steady_lat),
        "burst_intake": _summary(burst_lat),
        "floor_healthz": _summary(floor_lat),
        "floor_driver": _summary(driver_lat),
        "sent_per_s": round((devices + burst_size) / elapsed, 1),
        "alert_to_sms": _summary(notify),
        "sos_not_texted": missing,
        "failures": len(failures),
    }
    driver_p50 = result["floor_driver"]["p50_ms"]
    for name in ("steady_intake", "burst_intake"):
        row = result[name]
        ratio = row["p50_ms"] / driver_p50 if driver_p50 else float("nan")
        print(
            f"    {name:14s} n={row['n']:6d} p50 {row['p50_ms']:8.1f} ms  p95 {row['p95_ms']:8.1f} ms  "
            f"p99 {row['p99_ms']:8.1f} ms  max {row['max_ms']:8.1f} ms  (p50 / driver floor p50 = {ratio:.1f})"
        )
    row = result["floor_healthz"]
    print(f"    floor /healthz n={row['n']:6d} p50 {row['p50_ms']:8.1f} ms  p95 {row['p95_ms']:8.1f} ms")
    row = result["floor_driver"]
    print(
        f"    floor driver   n={row['n']:6d} p50 {row['p50_ms']:8.1f} ms  p95 {row['p95_ms']:8.1f} ms  "
        f"p99 {row['p99_ms']:8.1f} ms  (the five driver operations of a repeated report's intake)"
    )
    row = result["alert_to_sms"]
    print(
        f"    SOS -> on-duty SMS p99 {row['p99_ms'] / 1000:.2f} s; sent {result['sent_per_s']} requests/s over "
        f"{result['elapsed_s']} s (planned window {window:.0f} s); load average {result['load_average']}"
    )
    row = result["alert_to_sms"]
    print(
        f"    SOS -> on-duty SMS n={row['n']} p50 {row['p50_ms'] / 1000:.2f} s  p95 {row['p95_ms'] / 1000:.2f} s  "
        f"max {row['max_ms'] / 1000:.2f} s; not texted within {NOTIFY_WAIT:.0f} s: {missing}; failed requests: "
        f"{len(failures)}"
    )
    out = ROOT / "var" / "bench-alerts.json"
    Path(out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 1 if failures or missing else 0


def run(quick: bool = False) -> int:
    """Entry point for ``python -m bench alerts``."""
    return asyncio.run(_run(quick))


if __name__ == "__main__":
    import sys

    sys.exit(run(quick="--quick" in sys.argv))
