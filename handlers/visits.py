"""Visit records (探访记录), who is still due a visit, and the visit rate."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.idempotency import idempotent_json
from handlers.io import json_response, read_json, read_query
from handlers.keys import CTX
from handlers.middlewares import principal_of
from schemas.visits import (
    DuePageSchema,
    DueQuerySchema,
    StatsQuerySchema,
    VisitCreateSchema,
    VisitListSchema,
    VisitQuerySchema,
    VisitSchema,
    VisitStatsSchema,
    WeeklyQuerySchema,
    WeeklySeriesSchema,
)
from service.common.models import STAFF_ROLES
from service.visits import due as visits_due
from service.visits import records as visits
from service.visits import stats as visit_rates

routes = web.RouteTableDef()
TAGS = ("visits",)


@routes.post("/api/v1/visits")
@endpoint(
    "Record a visit (append-only; a correction names the record it corrects)",
    tags=TAGS,
    description="Staff record phone, video and home visits. An AI calling platform (an integrator client with "
    "the visits:write scope) records machine calls with method ai_call, answered or not (reached), a summary "
    "and flags: needs_help opens an urgent 紧急求助 case, feels_unwell or asked_for_callback a home visit "
    "request. Whether a reached machine call counts toward the weekly rate is the county's setting.",
    roles=(*STAFF_ROLES, "client"),
    scopes=("visits:write",),
    body=VisitCreateSchema(),
    response=VisitSchema(),
    status=201,
    idempotent_create=True,
    problems=(404, 409, 422),
)
async def record_visit(request: web.Request) -> web.Response:
    data = await read_json(request, VisitCreateSchema())

    async def create() -> tuple[int, dict[str, Any]]:
        visit = await visits.record_visit(ctx=request.app[CTX], principal=principal_of(request), data=data)
        return 201, VisitSchema().dump(visit)

    return await idempotent_json(request, body=data, operation=create)


@routes.get("/api/v1/visits")
@endpoint(
    "A person's visit records, newest first",
    tags=TAGS,
    roles=STAFF_ROLES,
    query=VisitQuerySchema(),
    response=VisitListSchema(),
    problems=(404, 422),
)
async def list_visits(request: web.Request) -> web.Response:
    query = read_query(request, VisitQuerySchema())
    items = await visits.list_visits(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(VisitListSchema(), {"items": items})


@routes.get("/api/v1/visits/due")
@endpoint(
    "Who still needs a visit, soonest due first",
    tags=TAGS,
    roles=STAFF_ROLES,
    query=DueQuerySchema(),
    response=DuePageSchema(),
    problems=(404, 422),
)
async def list_due(request: web.Request) -> web.Response:
    query = read_query(request, DueQuerySchema())
    page = await visits_due.list_due(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(DuePageSchema(), page)


@routes.get("/api/v1/visits/{id}")
@endpoint(
    "One visit record, with the periods it counts for and the cases it opened",
    tags=TAGS,
    roles=STAFF_ROLES,
    response=VisitSchema(),
    problems=(404,),
)
async def get_visit(request: web.Request) -> web.Response:
    visit = await visits.get_visit(
        ctx=request.app[CTX], principal=principal_of(request), visit_id=request.match_info["id"]
    )
    return json_response(VisitSchema(), visit)


@routes.get("/api/v1/stats/visits")
@endpoint(
    "The plan's weekly visit rate (周探访率, weekly tier only) by station/county/city, other tiers beside it",
    description="due, visited and rate are the weekly tier's person-weeks; by_tier gives every tier on its own "
    "period; plan states which visits count (phone, video, home visits that reached the person; not machine calls).",
    tags=TAGS,
    roles=STAFF_ROLES,
    query=StatsQuerySchema(),
    response=VisitStatsSchema(),
    problems=(403, 422),
)
async def visit_stats(request: web.Request) -> web.Response:
    query = read_query(request, StatsQuerySchema())
    stats = await visit_rates.visit_stats(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(VisitStatsSchema(), stats)


@routes.get("/api/v1/stats/visits/weekly")
@endpoint(
    "The plan's weekly visit rate (周探访率) for each of the last N ISO weeks",
    tags=TAGS,
    roles=STAFF_ROLES,
    query=WeeklyQuerySchema(),
    response=WeeklySeriesSchema(),
    problems=(403, 422),
)
async def weekly_series(request: web.Request) -> web.Response:
    query = read_query(request, WeeklyQuerySchema())
    series = await visit_rates.weekly_series(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(WeeklySeriesSchema(), series)
