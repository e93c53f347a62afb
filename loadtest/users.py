"""Simulated users: residents, workers, supervisors and one integrator, each an asyncio task.

Every request is recorded (time, operation, status, latency). Each user stops when the
run's deadline passes or its request budget is spent.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp

SHANGHAI = timezone(timedelta(hours=8))
REQUEST_TIMEOUT = 30.0


@dataclass
class Sample:
    t: float  # seconds since the load started, at the request's start
    op: str
    status: int  # 0: no answer (connection error or client timeout)
    latency: float
    retry_after: bool = False
    code: str | None = None


@dataclass
class Submission:
    """One Idempotency-Key and every answer it got."""

    key: str
    by: str
    service_code: str
    case_ids: set[str] = field(default_factory=set)
    statuses: list[int] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return any(200 <= s < 300 for s in self.statuses)


class Recorder:
    def __init__(self, base_url: str, deadline: float, max_requests: int) -> None:
        self.base = base_url
        self.t0 = time.monotonic()
        self.deadline = deadline
        self.budget = max_requests
        self.samples: list[Sample] = []
        self.submissions: list[Submission] = []
        self.session: aiohttp.ClientSession | None = None

    def running(self) -> bool:
        return time.monotonic() < self.deadline and len(self.samples) < self.budget

    async def call(
        self, op: str, method: str, path: str, *, token: str | None = None, json: Any = None,
        headers: dict[str, str] | None = None, data: Any = None,
    ) -> tuple[int, Any, dict[str, str]]:  # fmt: skip
        """One request through the proxy; returns (status, parsed body or None, headers)."""
        assert self.session is not None
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        start = time.monotonic()
        status, body, out_headers = 0, None, {}
        try:
            async with self.session.request(
                method, self.base + path, json=json, data=data, headers=h,
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            ) as r:  # fmt: skip
                status, out_headers = r.status, dict(r.headers)
                if r.content_type.endswith("json"):
                    body = await r.json(content_type=None)
                else:
                    await r.read()
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        latency = time.monotonic() - start
        code = body.get("code") if isinstance(body, dict) and status >= 400 else None
        self.samples.append(
            Sample(start - self.t0, op, status, latency, retry_after="Retry-After" in out_headers, code=code)
        )
        return status, body, out_headers

    async def pause(self, low: float, high: float) -> None:
        await asyncio.sleep(min(random.uniform(low, high), max(0.0, self.deadline - time.monotonic())))


# ---------------------------------------------------------------- answers from the service definitions


def _id_card(rng: random.Random) -> str:
    body = f"341021{rng.randint(1940, 1960)}0{rng.randint(1, 9)}{rng.randint(10, 28)}{rng.randint(100, 999)}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


def answers_for(service: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Valid answers for every field of a service definition (as GET /api/v1/services/{code} shows it)."""
    out: dict[str, Any] = {}
    for f in service["fields"]:
        t, choices = f["type"], [c["code"] for c in f.get("choices") or []]
        if t in ("string", "text"):
            out[f["code"]] = "负载测试 load test"[: f.get("max_length") or 50]
        elif t == "number":
            low = f.get("min") if f.get("min") is not None else 0
            high = f.get("max") if f.get("max") is not None else low + 100
            out[f["code"]] = int(rng.uniform(low, min(high, low + 50)))
        elif t == "date":
            out[f["code"]] = (datetime.now(SHANGHAI) + timedelta(days=3)).date().isoformat()
        elif t == "datetime":
            out[f["code"]] = (datetime.now(SHANGHAI) + timedelta(days=3)).replace(microsecond=0).isoformat()
        elif t == "single_choice":
            out[f["code"]] = rng.choice(choices)
        elif t == "multi_choice":
            out[f["code"]] = [rng.choice(choices)]
        elif t == "phone":
            out[f["code"]] = f"139{rng.randint(10_000_000, 99_999_999)}"
        elif t == "id_card":
            out[f["code"]] = _id_card(rng)
    return out


def case_body(service: dict[str, Any], station: dict[str, Any], rng: random.Random, key: str) -> dict[str, Any]:
    lon, lat = station["location"]["coordinates"]
    body: dict[str, Any] = {
        "service_code": service["code"],
        "answers": answers_for(service, rng),
        "location": {"lon": lon, "lat": lat, "coord_system": "wgs84"},
        "division_code": station["code"],
        "address": "负载测试地址 1 号",
        "contact": {"name": "测试居民", "phone": f"139{rng.randint(10_000_000, 99_999_999)}"},
        # The key rides in the description so the ledger can count cases per key.
        "description": f"load-key:{key}",
    }
    if service.get("booking"):
        start = (datetime.now(SHANGHAI) + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
        body["preferred_window"] = {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}
    return body


# ---------------------------------------------------------------- users


@dataclass
class World:
    """What the users share: the catalogue, the stations under load, credentials."""

    services: list[dict[str, Any]]  # at least one per scenario
    stations: list[dict[str, Any]]
    supervisor_division: str
    staff_password: str
    client_id: str = ""
    client_secret: str = ""


async def submit(rec: Recorder, *, op: str, token_fn: Any, by: str, body: dict[str, Any], key: str) -> str | None:
    """POST /cases with an Idempotency-Key, retried with the same key as a careful client would."""
    sub = Submission(key=key, by=by, service_code=body["service_code"])
    rec.submissions.append(sub)
    # A careful client: same key on every retry, Retry-After honoured, for at most ~90 s.
    give_up = time.monotonic() + 90
    for attempt in range(60):
        status, answer, headers = await rec.call(
            op, "POST", "/api/v1/cases", token=await token_fn(), json=body, headers={"Idempotency-Key": key}
        )
        sub.statuses.append(status)
        if 200 <= status < 300 and isinstance(answer, dict):
            sub.case_ids.add(answer["id"])
            return str(answer["id"])
        if status in (0, 409, 429, 502, 503) and time.monotonic() < give_up:
            wait = float(headers.get("Retry-After", 2)) if status in (429, 503, 409) else min(0.5 * (attempt + 1), 5)
            await asyncio.sleep(min(wait, 5.0))
            continue
        return None
    return None


async def resident(rec: Recorder, world: World, sms: Any, n: int, rng: random.Random) -> None:
    phone = f"1390000{n:04d}"
    token = ""
    while rec.running() and not token:
        status, _, headers = await rec.call("otp.request", "POST", "/api/v1/auth/otp", json={"phone": phone})
        if status in (200, 202, 204):
            try:
                code = await sms.code_for(phone)
            except TimeoutError:
                continue
            status, body, _ = await rec.call(
                "otp.verify", "POST", "/api/v1/auth/otp/verify", json={"phone": phone, "code": code}
            )
            if status == 200:
                token = body["access_token"]
                break
        await asyncio.sleep(min(float(headers.get("Retry-After", 2)), 10))

    async def tok() -> str:
        return token

    mine: list[str] = []
    i = 0
    while rec.running():
        service = world.services[(n + i) % len(world.services)]
        station = world.stations[rng.randrange(len(world.stations))]
        key = f"res{n}-{i}-{uuid.uuid4().hex[:8]}"
        i += 1
        case_id = await submit(
            rec, op="case.submit", token_fn=tok, by=phone, body=case_body(service, station, rng, key), key=key
        )
        if case_id:
            mine.append(case_id)
        await rec.pause(0.5, 1.5)
        await rec.call("case.list", "GET", "/api/v1/cases?limit=20", token=token)
        if mine:
            cid = rng.choice(mine[-10:])
            status, case, _ = await rec.call("case.get", "GET", f"/api/v1/cases/{cid}", token=token)
            if status == 200 and case["status"] == "resolved" and "rate" in case.get("allowed_actions", []):
                await rec.call(
                    "case.rate", "POST", f"/api/v1/cases/{cid}/rate", token=token, json={"rating": rng.randint(3, 5)}
                )
        await rec.pause(1.0, 3.0)


async def staff_login(rec: Recorder, username: str, password: str) -> str:
    while rec.running():
        status, body, headers = await rec.call(
            "staff.login", "POST", "/api/v1/auth/login", json={"username": username, "password": password}
        )
        if status == 200:
            return str(body["access_token"])
        await asyncio.sleep(min(float(headers.get("Retry-After", 2)), 10))
    return ""


async def worker(rec: Recorder, world: World, username: str, rng: random.Random) -> None:
    token = await staff_login(rec, username, world.staff_password)
    while rec.running():
        status, page, _ = await rec.call(
            "case.queue", "GET", "/api/v1/cases?status=dispatched,accepted,in_progress&limit=20", token=token
        )
        items = page.get("items", []) if status == 200 and isinstance(page, dict) else []
        rng.shuffle(items)
        for case in items[:3]:
            if not rec.running():
                break
            cid = case["id"]
            if case["status"] == "dispatched":
                await rec.call("case.accept", "POST", f"/api/v1/cases/{cid}/accept", token=token, json={})
            elif case["status"] in ("accepted", "in_progress"):
                await rec.call(
                    "case.resolve", "POST", f"/api/v1/cases/{cid}/resolve", token=token, json={"result": "已办结 done"}
                )
            await rec.pause(0.2, 0.6)
        await rec.pause(0.8, 2.0)


async def supervisor(rec: Recorder, world: World, username: str, rng: random.Random) -> None:
    token = await staff_login(rec, username, world.staff_password)
    while rec.running():
        await rec.call("kpi.read", "GET", f"/api/v1/stats/kpis?division={world.supervisor_division}", token=token)
        await rec.pause(1.0, 3.0)
        status, page, _ = await rec.call("case.unrouted", "GET", "/api/v1/cases?status=unrouted&limit=10", token=token)
        for case in (page.get("items", []) if status == 200 and isinstance(page, dict) else [])[:2]:
            station = rng.choice(world.stations)
            await rec.call(
                "case.dispatch", "POST", f"/api/v1/cases/{case['id']}/dispatch", token=token,
                json={"station_id": station["id"]},
            )  # fmt: skip
        await rec.pause(2.0, 4.0)


async def integrator(rec: Recorder, world: World, rng: random.Random) -> None:
    basic = {"Authorization": aiohttp.encode_basic_auth(world.client_id, world.client_secret)}
    state = {"token": "", "until": 0.0}

    async def tok() -> str:
        while not state["token"] or time.monotonic() > float(state["until"]):
            status, body, _ = await rec.call(
                "oauth.token", "POST", "/oauth/token", headers=basic,
                data={"grant_type": "client_credentials", "scope": "cases:read cases:write"},
            )  # fmt: skip
            if status == 200:
                state["token"], state["until"] = body["access_token"], time.monotonic() + body["expires_in"] - 30
            else:
                await asyncio.sleep(1)
                if not rec.running():
                    break
        return str(state["token"])

    i = 0
    while rec.running():
        service = world.services[i % len(world.services)]
        station = rng.choice(world.stations)
        key = f"client-{i}-{uuid.uuid4().hex[:8]}"
        i += 1
        body = case_body(service, station, rng, key)
        case_id = await submit(rec, op="client.submit", token_fn=tok, by="client", body=body, key=key)
        await rec.pause(0.3, 1.0)
        if case_id:
            await rec.call("client.get", "GET", f"/api/v1/cases/{case_id}", token=await tok())
        await rec.pause(0.5, 1.5)
