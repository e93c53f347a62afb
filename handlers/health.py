"""Liveness, readiness and metrics."""

from __future__ import annotations

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.keys import CTX, METRICS
from schemas.health import HealthSchema, ReadinessSchema
from service.common.health import check_stores

routes = web.RouteTableDef()


@routes.get("/healthz")
@endpoint("Liveness: the process is up", tags=("operations",), public=True, response=HealthSchema())
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
@endpoint(
    "Readiness: MongoDB and Redis answer",
    tags=("operations",),
    public=True,
    response=ReadinessSchema(),
    problems=(503,),
)
async def readyz(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    checks = await check_stores(ctx=ctx)
    ready = all(checks.values())
    body = {
        "status": ("degraded" if ctx.loops.degraded else "ready") if ready else "not_ready",
        "checks": {name: "ok" if ok else "down" for name, ok in checks.items()},
        "loops": ctx.loops.report(),
    }
    headers = {} if ready else {"Retry-After": "5"}
    return web.json_response(body, status=200 if ready else 503, headers=headers)


@routes.get("/metrics")
@endpoint("Prometheus metrics", tags=("operations",), public=True, response_content_type="text/plain")
async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    return web.Response(body=m.render(loops=request.app[CTX].loops), headers={"Content-Type": m.content_type})
