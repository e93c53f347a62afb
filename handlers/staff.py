"""Staff-account administration."""

from __future__ import annotations

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.idempotency import idempotent_json
from handlers.io import json_response, read_json, read_query
from handlers.keys import CTX
from handlers.middlewares import principal_of
from schemas.staff import StaffCreateSchema, StaffPageSchema, StaffQuerySchema, StaffSchema, StaffUpdateSchema
from service.identity import staff

routes = web.RouteTableDef()
TAGS = ("staff",)
ADMIN = ("admin",)


@routes.post("/api/v1/staff")
@endpoint(
    "Create a staff account",
    tags=TAGS,
    roles=ADMIN,
    body=StaffCreateSchema(),
    response=StaffSchema(),
    status=201,
    problems=(409, 422),
    idempotent_create=True,
)
async def create_staff(request: web.Request) -> web.Response:
    data = await read_json(request, StaffCreateSchema())

    async def operation() -> tuple[int, dict]:
        member = await staff.create_staff(ctx=request.app[CTX], principal=principal_of(request), **data)
        return 201, StaffSchema().dump(member)

    return await idempotent_json(request, body=data, operation=operation)


@routes.get("/api/v1/staff")
@endpoint(
    "List staff accounts",
    description="Admins list every account. A station head lists the staff of their own station (to assign "
    "cases): station_id defaults to theirs, another station is 403 `station_outside_scope`.",
    tags=TAGS,
    roles=("admin", "station_head"),
    query=StaffQuerySchema(),
    response=StaffPageSchema(),
)
async def list_staff(request: web.Request) -> web.Response:
    query = read_query(request, StaffQuerySchema())
    page = await staff.list_staff(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(StaffPageSchema(), page)


@routes.get("/api/v1/staff/{staff_id}")
@endpoint("Get a staff account", tags=TAGS, roles=ADMIN, response=StaffSchema(), problems=(404,))
async def get_staff(request: web.Request) -> web.Response:
    member = await staff.get_staff(
        ctx=request.app[CTX], principal=principal_of(request), staff_id=request.match_info["staff_id"]
    )
    return json_response(StaffSchema(), member)


@routes.patch("/api/v1/staff/{staff_id}")
@endpoint(
    "Change a staff account (name, role, assignment, active, password reset)",
    tags=TAGS,
    roles=ADMIN,
    body=StaffUpdateSchema(),
    response=StaffSchema(),
    problems=(404, 409, 422),
)
async def update_staff(request: web.Request) -> web.Response:
    changes = await read_json(request, StaffUpdateSchema())
    member = await staff.update_staff(
        ctx=request.app[CTX], principal=principal_of(request), staff_id=request.match_info["staff_id"], changes=changes
    )
    return json_response(StaffSchema(), member)
