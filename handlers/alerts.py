"""Devices, alert intake from vendors, the on-duty rota and the maintenance list (物联网报警)."""

from __future__ import annotations

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.io import json_response, read_json, read_query
from handlers.keys import CTX
from handlers.middlewares import principal_of
from schemas.alerts import (
    AlertCreateSchema,
    AlertPageSchema,
    AlertQuerySchema,
    AlertSchema,
    DeviceCreateSchema,
    DevicePageSchema,
    DeviceQuerySchema,
    DeviceSchema,
    DeviceUpdateSchema,
    MaintenanceDoneSchema,
    MaintenanceItemSchema,
    MaintenancePageSchema,
    MaintenanceQuerySchema,
    RotaEntryCreateSchema,
    RotaEntrySchema,
    RotaListSchema,
    RotaQuerySchema,
)
from service.alerts import devices, intake, maintenance, rota
from service.alerts import queries as alert_queries

routes = web.RouteTableDef()
TAGS = ("alerts",)
STAFF = ("worker", "station_head", "supervisor", "admin")
SCOPE = ("alerts:write",)


@routes.post("/api/v1/alerts")
@endpoint(
    "Report a device alert (vendors; idempotent by the vendor's alert id)",
    description="SOS, fall and smoke open an urgent case at the person's station at once and text the on-duty "
    "worker (no quiet hours), escalating while nobody signs for it; no_activity puts a check-up due today on the "
    "visit due list; low_battery and offline go to the station's maintenance list. Repeats from a device collapse "
    "into its open case. 201 for a new alert, 200 with the same record when the alert id was already received. "
    "A device not on the register is refused (422 device_not_registered) and the alert kept as refused.",
    tags=TAGS,
    roles=("client",),
    scopes=SCOPE,
    body=AlertCreateSchema(),
    response=AlertSchema(),
    status=201,
    problems=(403, 409, 422),
)
async def receive_alert(request: web.Request) -> web.Response:
    data = await read_json(request, AlertCreateSchema())
    alert, created = await intake.receive_alert(ctx=request.app[CTX], principal=principal_of(request), data=data)
    return json_response(AlertSchema(), alert, status=201 if created else 200)


@routes.get("/api/v1/alerts")
@endpoint(
    "Alerts, newest first (the alert board: staff see their station or division, a vendor its own)",
    tags=TAGS,
    roles=(*STAFF, "client"),
    scopes=SCOPE,
    query=AlertQuerySchema(),
    response=AlertPageSchema(),
    problems=(403, 422),
)
async def list_alerts(request: web.Request) -> web.Response:
    query = read_query(request, AlertQuerySchema())
    page = await alert_queries.list_alerts(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(AlertPageSchema(), page)


@routes.get("/api/v1/alerts/{id}")
@endpoint(
    "One alert with its outcome and escalation",
    tags=TAGS,
    roles=(*STAFF, "client"),
    scopes=SCOPE,
    response=AlertSchema(),
    problems=(404,),
)
async def get_alert(request: web.Request) -> web.Response:
    alert = await alert_queries.get_alert(
        ctx=request.app[CTX], principal=principal_of(request), alert_id=request.match_info["id"]
    )
    return json_response(AlertSchema(), alert)


@routes.post("/api/v1/devices")
@endpoint(
    "Register a device for a person on the visit register",
    tags=TAGS,
    roles=STAFF,
    body=DeviceCreateSchema(),
    response=DeviceSchema(),
    status=201,
    problems=(403, 404, 409, 422),
)
async def register_device(request: web.Request) -> web.Response:
    data = await read_json(request, DeviceCreateSchema())
    device = await devices.register_device(ctx=request.app[CTX], principal=principal_of(request), data=data)
    return json_response(DeviceSchema(), device, status=201)


@routes.get("/api/v1/devices")
@endpoint(
    "Registered devices of the caller's station or division",
    tags=TAGS,
    roles=STAFF,
    query=DeviceQuerySchema(),
    response=DevicePageSchema(),
    problems=(403, 422),
)
async def list_devices(request: web.Request) -> web.Response:
    query = read_query(request, DeviceQuerySchema())
    page = await devices.list_devices(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(DevicePageSchema(), page)


@routes.get("/api/v1/devices/{id}")
@endpoint("One registered device", tags=TAGS, roles=STAFF, response=DeviceSchema(), problems=(404,))
async def get_device(request: web.Request) -> web.Response:
    device = await devices.get_device(
        ctx=request.app[CTX], principal=principal_of(request), device_id=request.match_info["id"]
    )
    return json_response(DeviceSchema(), device)


@routes.patch("/api/v1/devices/{id}")
@endpoint(
    "Change where a device is installed, or take it off the register",
    tags=TAGS,
    roles=STAFF,
    body=DeviceUpdateSchema(),
    response=DeviceSchema(),
    problems=(404, 422),
)
async def update_device(request: web.Request) -> web.Response:
    changes = await read_json(request, DeviceUpdateSchema())
    device = await devices.update_device(
        ctx=request.app[CTX], principal=principal_of(request), device_id=request.match_info["id"], changes=changes
    )
    return json_response(DeviceSchema(), device)


@routes.get("/api/v1/stations/{id}/rota")
@endpoint(
    "The station's on-duty rota (值班表): shifts not over yet",
    tags=TAGS,
    roles=STAFF,
    query=RotaQuerySchema(),
    response=RotaListSchema(),
    problems=(404, 422),
)
async def list_rota(request: web.Request) -> web.Response:
    query = read_query(request, RotaQuerySchema())
    items = await rota.list_rota(
        ctx=request.app[CTX], principal=principal_of(request), station_id=request.match_info["id"], **query
    )
    return json_response(RotaListSchema(), {"items": items})


@routes.post("/api/v1/stations/{id}/rota")
@endpoint(
    "Put a worker on duty for a shift (station heads, supervisors, admins)",
    tags=TAGS,
    roles=STAFF,
    body=RotaEntryCreateSchema(),
    response=RotaEntrySchema(),
    status=201,
    problems=(403, 404, 422),
)
async def add_rota_entry(request: web.Request) -> web.Response:
    data = await read_json(request, RotaEntryCreateSchema())
    entry = await rota.add_rota_entry(
        ctx=request.app[CTX], principal=principal_of(request), station_id=request.match_info["id"], data=data
    )
    return json_response(RotaEntrySchema(), entry, status=201)


@routes.delete("/api/v1/rota/{id}")
@endpoint("Take a shift off the rota", tags=TAGS, roles=STAFF, status=204, problems=(403, 404))
async def remove_rota_entry(request: web.Request) -> web.Response:
    await rota.remove_rota_entry(
        ctx=request.app[CTX], principal=principal_of(request), entry_id=request.match_info["id"]
    )
    return web.Response(status=204)


@routes.get("/api/v1/maintenance")
@endpoint(
    "The maintenance list: devices reporting low battery or offline",
    tags=TAGS,
    roles=STAFF,
    query=MaintenanceQuerySchema(),
    response=MaintenancePageSchema(),
    problems=(403, 422),
)
async def list_maintenance(request: web.Request) -> web.Response:
    query = read_query(request, MaintenanceQuerySchema())
    page = await maintenance.list_maintenance(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(MaintenancePageSchema(), page)


@routes.post("/api/v1/maintenance/{id}/done")
@endpoint(
    "Mark a maintenance item fixed",
    tags=TAGS,
    roles=STAFF,
    body=MaintenanceDoneSchema(),
    body_optional=True,
    response=MaintenanceItemSchema(),
    problems=(404, 409, 422),
)
async def close_maintenance_item(request: web.Request) -> web.Response:
    data = await read_json(request, MaintenanceDoneSchema(), body_optional=True)
    item = await maintenance.close_maintenance_item(
        ctx=request.app[CTX], principal=principal_of(request), item_id=request.match_info["id"], **data
    )
    return json_response(MaintenanceItemSchema(), item)
