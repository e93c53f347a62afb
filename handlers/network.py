"""The station network against the plan (社工站建设): records, verification, figures, CSV in and out."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.idempotency import idempotent_json
from handlers.io import json_response, read_json, read_query, within_body_timeout
from handlers.keys import CTX
from handlers.middlewares import principal_of
from schemas.network import (
    ExportQuerySchema,
    NetworkPageSchema,
    NetworkQuerySchema,
    NetworkStatsSchema,
    NetworkUpdateSchema,
    StationNetworkSchema,
    StatsQuerySchema,
    VerificationCreateSchema,
    VerificationListSchema,
    VerificationSchema,
)
from schemas.stations import ImportQuerySchema, ImportReportSchema
from service.common.errors import PayloadTooLargeError
from service.network import service as network
from service.network import transfer

routes = web.RouteTableDef()
TAGS = ("network",)
STAFF = ("worker", "station_head", "supervisor", "admin")
SUPERVISION = ("supervisor", "admin")


# Fixed addresses first: /network/stations/{station_id} must not take "export" or "import" as an id.
@routes.get("/api/v1/network/export")
@endpoint(
    "Export the station network as CSV",
    description="UTF-8 CSV (with a byte-order mark for Excel) of the division's stations: the import's columns "
    "first, then names, staff, services, documents and the six-haves and verification state.",
    tags=TAGS,
    roles=SUPERVISION,
    query=ExportQuerySchema(),
    response_content_type="text/csv",
    long_running=True,
    problems=(403, 404, 422),
)
async def export_network(request: web.Request) -> web.Response:
    query = read_query(request, ExportQuerySchema())
    text = await transfer.export_station_network(ctx=request.app[CTX], principal=principal_of(request), **query)
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="station-network.csv"'},
    )


@routes.post("/api/v1/network/import")
@endpoint(
    "Import construction status and site details of stations from CSV",
    description="Send the file as text/csv with columns station_code,status and optional planned_on, built_on, "
    "operating_on, model_on (YYYY-MM-DD), site_address, floor_area_m2, equipment (name:quantity separated by ;). "
    "The export's other columns are accepted and ignored. Every bad row is reported with its line and column; "
    "with dry_run=false all rows are written or none.",
    tags=TAGS,
    roles=SUPERVISION,
    body_kind="file",
    long_running=True,
    body_media_types=("text/csv",),
    query=ImportQuerySchema(),
    response=ImportReportSchema(),
    problems=(400, 403, 409, 413, 415, 422),
)
async def import_network(request: web.Request) -> web.Response:
    query = read_query(request, ImportQuerySchema())
    limit = request.app[CTX].settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError("payload_too_large", f"The file is larger than {limit} bytes.", limit=limit)
    body = await within_body_timeout(request, request.read())
    report = await transfer.import_station_network(
        ctx=request.app[CTX],
        principal=principal_of(request),
        body=body,
        content_type=request.content_type,
        dry_run=query["dry_run"],
    )
    return json_response(ImportReportSchema(), report)


@routes.get("/api/v1/network/stations")
@endpoint(
    "The station network of a division: status, six haves and verification of each station",
    tags=TAGS,
    roles=SUPERVISION,
    query=NetworkQuerySchema(),
    response=NetworkPageSchema(),
    problems=(400, 403, 404, 422),
)
async def list_network(request: web.Request) -> web.Response:
    query = read_query(request, NetworkQuerySchema())
    page = await network.list_station_network(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(NetworkPageSchema(), page)


@routes.get("/api/v1/network/stations/{station_id}")
@endpoint(
    "A station's construction record and six-haves checklist",
    tags=TAGS,
    roles=STAFF,
    response=StationNetworkSchema(),
    problems=(403, 404),
)
async def get_network(request: web.Request) -> web.Response:
    found = await network.get_station_network(
        ctx=request.app[CTX], principal=principal_of(request), station_id=request.match_info["station_id"]
    )
    return json_response(StationNetworkSchema(), found)


@routes.patch("/api/v1/network/stations/{station_id}")
@endpoint(
    "Keep a station's construction record",
    description="The station's head keeps the record (status up to operating, dates, site, equipment, workflow "
    "and rule documents); supervisors of its division set the status and its dates (they designate model "
    "stations). Dates and site merge field by field (null removes a date); lists replace.",
    tags=TAGS,
    roles=("station_head", "supervisor", "admin"),
    body=NetworkUpdateSchema(),
    body_example={
        "status": "operating",
        "dates": {"built": "2024-03-01", "operating": "2024-05-20"},
        "site": {"address": "昱东街道新安路 8 号", "floor_area_m2": 120},
        "equipment": [{"name": "办公电脑", "quantity": 2}, {"name": "档案柜", "quantity": 1}],
    },
    response=StationNetworkSchema(),
    problems=(403, 404, 409, 422),
)
async def update_network(request: web.Request) -> web.Response:
    data = await read_json(request, NetworkUpdateSchema())
    found = await network.update_station_network(
        ctx=request.app[CTX], principal=principal_of(request), station_id=request.match_info["station_id"], **data
    )
    return json_response(StationNetworkSchema(), found)


@routes.post("/api/v1/network/stations/{station_id}/verifications")
@endpoint(
    "Verify a station's record: sign off (approved) or return it",
    tags=TAGS,
    roles=SUPERVISION,
    body=VerificationCreateSchema(),
    body_example={"outcome": "returned", "note": "场地照片不清晰，请补充。"},
    response=VerificationSchema(),
    status=201,
    idempotent_create=True,
    problems=(400, 403, 404, 409, 422),
)
async def verify_network(request: web.Request) -> web.Response:
    data = await read_json(request, VerificationCreateSchema())

    async def create() -> tuple[int, dict[str, Any]]:
        verification = await network.verify_station_network(
            ctx=request.app[CTX], principal=principal_of(request), station_id=request.match_info["station_id"], **data
        )
        return 201, VerificationSchema().dump(verification)

    return await idempotent_json(request, body=data, operation=create)


@routes.get("/api/v1/network/stations/{station_id}/verifications")
@endpoint(
    "The verification history of a station's record, newest first",
    tags=TAGS,
    roles=STAFF,
    response=VerificationListSchema(),
    problems=(403, 404),
)
async def list_verifications(request: web.Request) -> web.Response:
    items = await network.list_verifications(
        ctx=request.app[CTX], principal=principal_of(request), station_id=request.match_info["station_id"]
    )
    return json_response(VerificationListSchema(), {"items": items})


@routes.get("/api/v1/network/stations/{station_id}/photos/{upload_id}")
@endpoint(
    "An image the station's record refers to (site photo or document page)",
    tags=TAGS,
    roles=STAFF,
    response_content_type="image/*",
    problems=(403, 404),
)
async def read_photo(request: web.Request) -> web.StreamResponse:
    upload, chunks = await network.open_station_photo(
        ctx=request.app[CTX],
        principal=principal_of(request),
        station_id=request.match_info["station_id"],
        upload_id=request.match_info["upload_id"],
    )
    response = web.StreamResponse(
        headers={"Content-Type": upload.content_type, "Content-Length": str(upload.size), "ETag": f'"{upload.sha256}"'}
    )
    await response.prepare(request)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


@routes.get("/api/v1/stats/stations")
@endpoint(
    "Station network figures: townships, stations by status, coverage and six-haves compliance",
    description="Coverage = townships with an operating or model station / all townships (the NBS list, plus "
    "township-like units that have a station); compliance = stations whose six haves a supervisor signed off "
    "at their current revision / stations; both against the 100% target. Supervisors read their own division "
    "(the default) or a part of it; group_by=city|county adds one row per city or county.",
    tags=("stats", *TAGS),
    roles=SUPERVISION,
    query=StatsQuerySchema(),
    response=NetworkStatsSchema(),
    problems=(403, 404, 422),
)
async def station_stats(request: web.Request) -> web.Response:
    query = read_query(request, StatsQuerySchema())
    stats = await network.get_station_stats(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(NetworkStatsSchema(), stats)
