"""Township social-work stations: public search, admin changes and bulk import."""

from __future__ import annotations

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.io import json_response, read_json, read_query, within_body_timeout
from handlers.keys import CTX
from handlers.middlewares import principal_of
from schemas.stations import (
    CoordSystemQuerySchema,
    ImportQuerySchema,
    ImportReportSchema,
    StationCreateSchema,
    StationPageSchema,
    StationQuerySchema,
    StationSchema,
    StationUpdateSchema,
)
from service.common.errors import PayloadTooLargeError
from service.stations import imports as station_imports
from service.stations import service as stations

routes = web.RouteTableDef()
TAGS = ("stations",)


@routes.get("/api/v1/stations")
@endpoint(
    "Find stations: nearest to a point (near=LON,LAT) or listed by code",
    tags=TAGS,
    public=True,
    query=StationQuerySchema(),
    response=StationPageSchema(),
    problems=(422,),
)
async def list_stations(request: web.Request) -> web.Response:
    query = read_query(request, StationQuerySchema())
    page = await stations.search_stations(ctx=request.app[CTX], **query)
    return json_response(StationPageSchema(), page)


@routes.get("/api/v1/stations/{id}")
@endpoint(
    "Get a station",
    tags=TAGS,
    public=True,
    query=CoordSystemQuerySchema(),
    response=StationSchema(),
    problems=(404, 422),
)
async def get_station(request: web.Request) -> web.Response:
    query = read_query(request, CoordSystemQuerySchema())
    station = await stations.get_station(ctx=request.app[CTX], station_id=request.match_info["id"], **query)
    return json_response(StationSchema(), station)


@routes.post("/api/v1/stations")
@endpoint(
    "Add a station",
    tags=TAGS,
    roles=("admin",),
    body=StationCreateSchema(),
    response=StationSchema(),
    status=201,
    problems=(409, 422),
)
async def create_station(request: web.Request) -> web.Response:
    data = await read_json(request, StationCreateSchema())
    station = await stations.create_station(ctx=request.app[CTX], principal=principal_of(request), data=data)
    return json_response(StationSchema(), station, status=201)


@routes.patch("/api/v1/stations/{id}")
@endpoint(
    "Change a station",
    tags=TAGS,
    roles=("admin",),
    body=StationUpdateSchema(),
    response=StationSchema(),
    problems=(404, 409, 422),
)
async def update_station(request: web.Request) -> web.Response:
    changes = await read_json(request, StationUpdateSchema())
    station = await stations.update_station(
        ctx=request.app[CTX], principal=principal_of(request), station_id=request.match_info["id"], changes=changes
    )
    return json_response(StationSchema(), station)


@routes.delete("/api/v1/stations/{id}")
@endpoint(
    "Deactivate a station (kept for its cases)", tags=TAGS, roles=("admin",), response=StationSchema(), problems=(404,)
)
async def deactivate_station(request: web.Request) -> web.Response:
    station = await stations.deactivate_station(
        ctx=request.app[CTX], principal=principal_of(request), station_id=request.match_info["id"]
    )
    return json_response(StationSchema(), station)


@routes.post("/api/v1/stations/import")
@endpoint(
    "Bulk import stations from a GeoJSON FeatureCollection or CSV",
    description="Send the file as the body with Content-Type application/geo+json, application/json or "
    "text/csv (columns code,name,county_code,county_name,city_name,lon,lat and optional capabilities, "
    "capacity, active, precision). Every bad row is reported; with dry_run=false all rows are written or none.",
    tags=TAGS,
    roles=("admin",),
    body_kind="file",
    long_running=True,
    body_media_types=("text/csv", "application/geo+json", "application/json"),
    query=ImportQuerySchema(),
    response=ImportReportSchema(),
    problems=(400, 409, 413, 415, 422),
)
async def import_stations(request: web.Request) -> web.Response:
    query = read_query(request, ImportQuerySchema())
    limit = request.app[CTX].settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError("payload_too_large", f"The file is larger than {limit} bytes.", limit=limit)
    body = await within_body_timeout(request, request.read())
    report = await station_imports.import_stations(
        ctx=request.app[CTX],
        principal=principal_of(request),
        body=body,
        content_type=request.content_type,
        dry_run=query["dry_run"],
    )
    return json_response(ImportReportSchema(), report)
