"""The service catalogue: scenarios and service types (public reads, admin changes)."""

from __future__ import annotations

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.io import json_response, read_json, read_query
from handlers.keys import CTX
from handlers.middlewares import principal_of
from schemas.services import (
    ScenarioListSchema,
    ServiceCreateSchema,
    ServiceListSchema,
    ServiceQuerySchema,
    ServiceSchema,
    ServiceUpdateSchema,
    ServiceVersionQuerySchema,
)
from service.catalog import service as catalog

routes = web.RouteTableDef()
TAGS = ("catalogue",)


@routes.get("/api/v1/scenarios")
@endpoint("List the seven service scenarios", tags=TAGS, public=True, response=ScenarioListSchema())
async def list_scenarios(request: web.Request) -> web.Response:
    return json_response(ScenarioListSchema(), {"items": catalog.list_scenarios(), "next_cursor": None})


@routes.get("/api/v1/services")
@endpoint(
    "List current service types",
    tags=TAGS,
    public=True,
    query=ServiceQuerySchema(),
    response=ServiceListSchema(),
    problems=(422,),
)
async def list_services(request: web.Request) -> web.Response:
    query = read_query(request, ServiceQuerySchema())
    items = await catalog.list_services(ctx=request.app[CTX], scenario=query.get("scenario"))
    return json_response(ServiceListSchema(), {"items": items, "next_cursor": None})


@routes.get("/api/v1/services/{code}")
@endpoint(
    "Get a service type (current version, or ?version=N)",
    tags=TAGS,
    public=True,
    query=ServiceVersionQuerySchema(),
    response=ServiceSchema(),
    problems=(404, 422),
)
async def get_service(request: web.Request) -> web.Response:
    query = read_query(request, ServiceVersionQuerySchema())
    service = await catalog.get_service(
        ctx=request.app[CTX], code=request.match_info["code"], version=query.get("version")
    )
    return json_response(ServiceSchema(), service)


@routes.post("/api/v1/services")
@endpoint(
    "Add a service type",
    tags=TAGS,
    roles=("admin",),
    body=ServiceCreateSchema(),
    response=ServiceSchema(),
    status=201,
    problems=(409, 422),
)
async def create_service(request: web.Request) -> web.Response:
    data = await read_json(request, ServiceCreateSchema())
    service = await catalog.create_service(ctx=request.app[CTX], principal=principal_of(request), service=data)
    return json_response(ServiceSchema(), service, status=201)


@routes.patch("/api/v1/services/{code}")
@endpoint(
    "Change a service type (stores a new version; older versions are kept)",
    tags=TAGS,
    roles=("admin",),
    body=ServiceUpdateSchema(),
    response=ServiceSchema(),
    problems=(404, 409, 422),
)
async def update_service(request: web.Request) -> web.Response:
    changes = await read_json(request, ServiceUpdateSchema())
    expected = changes.pop("expected_version", None)
    service = await catalog.update_service(
        ctx=request.app[CTX],
        principal=principal_of(request),
        code=request.match_info["code"],
        changes=changes,
        expected_version=expected,
    )
    return json_response(ServiceSchema(), service)


@routes.post("/api/v1/services/{code}/retire")
@endpoint("Retire a service type", tags=TAGS, roles=("admin",), response=ServiceSchema(), problems=(404, 409))
async def retire_service(request: web.Request) -> web.Response:
    service = await catalog.retire_service(
        ctx=request.app[CTX], principal=principal_of(request), code=request.match_info["code"]
    )
    return json_response(ServiceSchema(), service)
