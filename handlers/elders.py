"""The visit register (探访关爱对象): station staff and supervisors manage the people they visit."""

from __future__ import annotations

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.io import json_response, read_json, read_query, within_body_timeout
from handlers.keys import CTX
from handlers.middlewares import principal_of
from schemas.elders import (
    ElderCreateSchema,
    ElderEndSchema,
    ElderImportQuerySchema,
    ElderImportReportSchema,
    ElderPageSchema,
    ElderQuerySchema,
    ElderSchema,
    ElderUpdateSchema,
    TierRulesApplyQuerySchema,
    TierRulesReportSchema,
    TierTableSchema,
)
from service.common.errors import PayloadTooLargeError
from service.common.models import STAFF_ROLES
from service.visits import elder_imports, elders
from service.visits import tier_rules as visit_tier_rules

routes = web.RouteTableDef()
TAGS = ("elders",)


@routes.post("/api/v1/elders")
@endpoint(
    "Register an older person for visits",
    tags=TAGS,
    roles=STAFF_ROLES,
    body=ElderCreateSchema(),
    response=ElderSchema(),
    status=201,
    problems=(403, 409, 422),
)
async def create_elder(request: web.Request) -> web.Response:
    data = await read_json(request, ElderCreateSchema())
    elder = await elders.create_elder(ctx=request.app[CTX], principal=principal_of(request), data=data)
    return json_response(ElderSchema(), elder, status=201)


@routes.get("/api/v1/elders")
@endpoint(
    "List registered people (audit-logged)",
    tags=TAGS,
    roles=STAFF_ROLES,
    query=ElderQuerySchema(),
    response=ElderPageSchema(),
    problems=(403, 422),
)
async def list_elders(request: web.Request) -> web.Response:
    query = read_query(request, ElderQuerySchema())
    page = await elders.list_elders(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(ElderPageSchema(), page)


@routes.post("/api/v1/elders/import")
@endpoint(
    "Bulk import the register from CSV",
    description="Send the file as text/csv with columns name,id_card,township and optional birth_date, phone, "
    "address, lon, lat, coord_system, flags (separated by ;), tier, visitor_id, consent_given, consent_method, "
    "emergency_contact_name, emergency_contact_relation, emergency_contact_phone. Every bad row is reported; "
    "with dry_run=false all rows are written or none.",
    tags=TAGS,
    roles=STAFF_ROLES,
    body_kind="file",
    long_running=True,
    body_media_types=("text/csv",),
    query=ElderImportQuerySchema(),
    response=ElderImportReportSchema(),
    problems=(400, 403, 409, 413, 415, 422),
)
async def import_elders(request: web.Request) -> web.Response:
    query = read_query(request, ElderImportQuerySchema())
    limit = request.app[CTX].settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError("payload_too_large", f"The file is larger than {limit} bytes.", limit=limit)
    report = await elder_imports.import_elders(
        ctx=request.app[CTX],
        principal=principal_of(request),
        body=await within_body_timeout(request, request.read()),
        content_type=request.content_type,
        dry_run=query["dry_run"],
    )
    return json_response(ElderImportReportSchema(), report)


@routes.get("/api/v1/elders/tier-rules")
@endpoint(
    "The default visit tier rules per province (read-only; set in configuration)",
    tags=TAGS,
    roles=STAFF_ROLES,
    response=TierTableSchema(),
)
async def tier_rules(request: web.Request) -> web.Response:
    table = visit_tier_rules.tier_rules(ctx=request.app[CTX], principal=principal_of(request))
    return json_response(TierTableSchema(), table)


@routes.post("/api/v1/elders/tier-rules/apply")
@endpoint(
    "Re-apply the tier rules to the register (dry run by default: who moves)",
    description="Every active person whose tier is not pinned moves to the tier the rules suggest, "
    "from the start of the next ISO week. With dry_run=true (the default) nothing is written.",
    tags=TAGS,
    roles=("admin",),
    body_kind="none",
    query=TierRulesApplyQuerySchema(),
    response=TierRulesReportSchema(),
    problems=(403,),
)
async def apply_tier_rules(request: web.Request) -> web.Response:
    query = read_query(request, TierRulesApplyQuerySchema())
    report = await visit_tier_rules.apply_tier_rules(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(TierRulesReportSchema(), report)


@routes.get("/api/v1/elders/{id}")
@endpoint(
    "Get a registered person (audit-logged)", tags=TAGS, roles=STAFF_ROLES, response=ElderSchema(), problems=(404,)
)
async def get_elder(request: web.Request) -> web.Response:
    elder = await elders.get_elder(
        ctx=request.app[CTX], principal=principal_of(request), elder_id=request.match_info["id"]
    )
    return json_response(ElderSchema(), elder)


@routes.patch("/api/v1/elders/{id}")
@endpoint(
    "Change a registered person's record (a new tier applies from the next period)",
    tags=TAGS,
    roles=STAFF_ROLES,
    body=ElderUpdateSchema(),
    response=ElderSchema(),
    problems=(403, 404, 409, 422),
)
async def update_elder(request: web.Request) -> web.Response:
    changes = await read_json(request, ElderUpdateSchema())
    elder = await elders.update_elder(
        ctx=request.app[CTX], principal=principal_of(request), elder_id=request.match_info["id"], changes=changes
    )
    return json_response(ElderSchema(), elder)


@routes.post("/api/v1/elders/{id}/end")
@endpoint(
    "Take a person off the register (moved, deceased, other)",
    tags=TAGS,
    roles=STAFF_ROLES,
    body=ElderEndSchema(),
    response=ElderSchema(),
    problems=(404, 409, 422),
)
async def end_elder(request: web.Request) -> web.Response:
    data = await read_json(request, ElderEndSchema())
    elder = await elders.end_elder(
        ctx=request.app[CTX], principal=principal_of(request), elder_id=request.match_info["id"], **data
    )
    return json_response(ElderSchema(), elder)
