"""Profile single requests through the real app: `python -m bench._profile [get|submit|list|accept] [-n N]`
(``--role worker`` or ``supervisor``: one role's list only).

Needs pyinstrument (not a project dependency: `pip install --target DIR pyinstrument==5.1.3`
and put DIR on PYTHONPATH). Serves ``run.create_app`` on a loopback port against an in-memory
SecantusDB and Redis at 127.0.0.1:6379, issues N requests of one kind one at a time with the
profiler running, and prints the call tree of the server's side (the client's frames are hidden).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from typing import Any

import aiohttp

from bench.cases import ADMIN, CAPABILITIES, COUNTY, SERVICE_CODE, STATIONS, call, clean_redis, redis_url_or_none, serve
from config import load_settings
from handlers.keys import CTX
from run import create_app
from service.catalog import service as catalog
from service.catalog.service import example_answers
from service.common.inputs import from_given
from service.common.models import Principal, utcnow
from service.identity.tokens import issue_access_token
from service.stations import service as stations
from service.stations.inputs import StationRegistration
from service.storage.embedded import EmbeddedMongo


async def main(kind: str, n: int, html: str | None, role: str = "both") -> None:
    from pyinstrument import Profiler

    server = EmbeddedMongo(":memory:", durable=False)
    uri = await asyncio.to_thread(server.start)
    redis_url = redis_url_or_none()
    prefix = f"bench-prof-{uuid.uuid4().hex[:8]}:"
    tmp = tempfile.TemporaryDirectory(prefix="bench-prof-")
    settings = load_settings(
        {},
        env="test",
        mongodb_uri=uri,
        mongodb_db="bench_profile",
        redis_url=redis_url,
        redis_prefix=prefix,
        data_dir=tmp.name,
        background_tasks=False,
        log_level="WARNING",
    )
    app = create_app(settings)
    runner, base = await serve(app)
    try:
        ctx = app[CTX]
        await catalog.seed_catalog(ctx)
        objs = []
        for code, name, lon, lat in STATIONS:
            data = {
                "code": code,
                "name": name,
                "location": {"type": "Point", "coordinates": [lon, lat]},
                "capabilities": CAPABILITIES,
                "precision": "exact",
            }
            objs.append(
                await stations.create_station(ctx=ctx, principal=ADMIN, data=from_given(StationRegistration, data))
            )
        station = objs[0]
        service = await catalog.get_service(ctx=ctx, code=SERVICE_CODE)

        def token(role: str, **kw: Any) -> dict[str, str]:
            principal = Principal(subject=kw.pop("subject", f"bench-{role}"), role=role, **kw)  # type: ignore[arg-type]
            tok, _ = issue_access_token(settings=settings, principal=principal, now=utcnow())
            return {"Authorization": f"Bearer {tok}"}

        resident = token("resident", subject="res-bench")
        worker = token("worker", subject=f"w-{station.code}", station_id=station.id)
        supervisor = token("supervisor", subject="sup-bench", division_prefix=COUNTY)
        body = {
            "service_code": SERVICE_CODE,
            "answers": example_answers(service),
            "division_code": station.code,
            "address": "徽城镇 新安路 1 号",
            "contact": {"name": "王芳", "phone": "13912345678"},
        }
        async with aiohttp.ClientSession() as http:
            url = f"{base}/api/v1/cases"
            ids = [(await call(http, "POST", url, 201, json=body, headers=resident))["id"] for _ in range(n + 5)]

            async def one(i: int) -> None:
                if kind == "get":
                    await call(http, "GET", f"{url}/{ids[i % len(ids)]}", 200, headers=resident)
                elif kind == "submit":
                    await call(http, "POST", url, 201, json=body, headers=resident)
                elif kind == "list":
                    as_supervisor = role == "supervisor" or (role == "both" and i % 2)
                    await call(http, "GET", f"{url}?limit=20", 200, headers=supervisor if as_supervisor else worker)
                elif kind == "accept":
                    await call(http, "POST", f"{url}/{ids[i]}/accept", 200, json={}, headers=worker)

            for i in range(3):
                await one(n + i + 1 if kind == "accept" else i)
            profiler = Profiler(interval=0.0005, async_mode="disabled")
            profiler.start()
            for i in range(n):
                await one(i)
            profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        if html:
            with open(html, "w", encoding="utf-8") as f:
                f.write(profiler.output_html())
    finally:
        await runner.cleanup()
        await clean_redis(redis_url, prefix)
        await asyncio.to_thread(server.stop)
        tmp.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("get", "submit", "list", "accept"))
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--html")
    parser.add_argument(
        "--role", choices=("both", "worker", "supervisor"), default="both", help="list: whose list (both: alternate)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.kind, args.n, args.html, args.role))
