"""Integrator-client administration."""

from __future__ import annotations

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.io import json_response, read_json, read_query
from handlers.keys import CTX
from handlers.middlewares import principal_of
from schemas.clients import (
    ClientCreateSchema,
    ClientPageSchema,
    ClientQuerySchema,
    ClientSchema,
    ClientUpdateSchema,
    IssuedClientSchema,
)
from service.identity import clients

routes = web.RouteTableDef()
TAGS = ("clients",)
ADMIN = ("admin",)


@routes.post("/api/v1/clients")
@endpoint(
    "Register an API client; the secret is shown only in this answer",
    tags=TAGS,
    roles=ADMIN,
    body=ClientCreateSchema(),
    response=IssuedClientSchema(),
    status=201,
    problems=(422,),
)
async def create_client(request: web.Request) -> web.Response:
    data = await read_json(request, ClientCreateSchema())
    issued = await clients.create_client(ctx=request.app[CTX], principal=principal_of(request), **data)
    return json_response(IssuedClientSchema(), issued, status=201)


@routes.get("/api/v1/clients")
@endpoint("List API clients", tags=TAGS, roles=ADMIN, query=ClientQuerySchema(), response=ClientPageSchema())
async def list_clients(request: web.Request) -> web.Response:
    query = read_query(request, ClientQuerySchema())
    page = await clients.list_clients(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(ClientPageSchema(), page)


@routes.get("/api/v1/clients/{client_id}")
@endpoint("Get an API client", tags=TAGS, roles=ADMIN, response=ClientSchema(), problems=(404,))
async def get_client(request: web.Request) -> web.Response:
    client = await clients.get_client(
        ctx=request.app[CTX], principal=principal_of(request), client_id=request.match_info["client_id"]
    )
    return json_response(ClientSchema(), client)


@routes.patch("/api/v1/clients/{client_id}")
@endpoint(
    "Set the territory (division-code prefix) whose visit-programme events the client receives",
    tags=TAGS,
    roles=ADMIN,
    body=ClientUpdateSchema(),
    response=ClientSchema(),
    problems=(404, 422),
)
async def update_client(request: web.Request) -> web.Response:
    data = await read_json(request, ClientUpdateSchema())
    client = await clients.set_client_division(
        ctx=request.app[CTX], principal=principal_of(request), client_id=request.match_info["client_id"], **data
    )
    return json_response(ClientSchema(), client)


@routes.post("/api/v1/clients/{client_id}/rotate-secret")
@endpoint(
    "Issue a new secret (the old one stops working)",
    tags=TAGS,
    roles=ADMIN,
    response=IssuedClientSchema(),
    problems=(404,),
)
async def rotate_secret(request: web.Request) -> web.Response:
    issued = await clients.rotate_client_secret(
        ctx=request.app[CTX], principal=principal_of(request), client_id=request.match_info["client_id"]
    )
    return json_response(IssuedClientSchema(), issued)


@routes.post("/api/v1/clients/{client_id}/disable")
@endpoint("Disable an API client", tags=TAGS, roles=ADMIN, response=ClientSchema(), problems=(404,))
async def disable_client(request: web.Request) -> web.Response:
    client = await clients.disable_client(
        ctx=request.app[CTX], principal=principal_of(request), client_id=request.match_info["client_id"]
    )
    return json_response(ClientSchema(), client)
