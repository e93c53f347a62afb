"""The social-work workforce: the register, training, reference figures and the plan's indicators."""

from __future__ import annotations

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.idempotency import idempotent_json
from handlers.io import json_response, read_json, read_query, within_body_timeout
from handlers.keys import CTX
from handlers.middlewares import principal_of
from schemas.workforce import (
    EnrolmentCreateSchema,
    FigurePageSchema,
    FigureQuerySchema,
    HistorySchema,
    ImportQuerySchema,
    PersonCreateSchema,
    PersonPageSchema,
    PersonQuerySchema,
    PersonSchema,
    PersonUpdateSchema,
    PlanBreakdownQuerySchema,
    PlanBreakdownSchema,
    PlanQuerySchema,
    PlanReportSchema,
    ProgrammeCreateSchema,
    ProgrammePageSchema,
    ProgrammeQuerySchema,
    ProgrammeSchema,
    RecordListSchema,
    RecordPageSchema,
    RecordQuerySchema,
    RecordUpdateSchema,
    SessionCreateSchema,
    SessionListSchema,
    SessionSchema,
    TrainingRecordSchema,
    WorkforceImportReportSchema,
)
from service.common.errors import PayloadTooLargeError
from service.common.models import STAFF_ROLES
from service.workforce import figures, plan, register, register_import, rules, training

routes = web.RouteTableDef()
TAGS = ("workforce",)
TRAINING = ("training",)


async def _file(request: web.Request) -> bytes:
    limit = request.app[CTX].settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError("payload_too_large", f"The file is larger than {limit} bytes.", limit=limit)
    return await within_body_timeout(request, request.read())


# ---------------------------------------------------------------- the register


@routes.post("/api/v1/workforce/people")
@endpoint(
    "Put a person on the social-work workforce register",
    tags=TAGS,
    roles=rules.MANAGERS,
    body=PersonCreateSchema(),
    response=PersonSchema(),
    status=201,
    idempotent_create=True,
    problems=(403, 409, 422),
)
async def create_person(request: web.Request) -> web.Response:
    data = await read_json(request, PersonCreateSchema())

    async def create() -> tuple[int, dict]:
        person = await register.create_person(ctx=request.app[CTX], principal=principal_of(request), data=data)
        return 201, PersonSchema().dump(person)

    return await idempotent_json(request, body=data, operation=create)


@routes.get("/api/v1/workforce/people")
@endpoint(
    "List the register (supervisors: their division; station staff: their station)",
    tags=TAGS,
    roles=STAFF_ROLES,
    query=PersonQuerySchema(),
    response=PersonPageSchema(),
    problems=(403, 422),
)
async def list_people(request: web.Request) -> web.Response:
    query = read_query(request, PersonQuerySchema())
    page = await register.list_people(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(PersonPageSchema(), page)


@routes.post("/api/v1/workforce/people/import")
@endpoint(
    "Bulk import the register from CSV (dry run, then all or nothing)",
    description="Send the file as text/csv with columns name,id_card,employer_kind,division,role,start_date and "
    "optional phone, occupation, qualification_level, certificate_no, certificate_year, employer_name, post, "
    "status, end_date, staff_id. A row whose ID number is on the register changes that entry. Every bad row is "
    "reported with its line and field; with dry_run=false all rows are written or none.",
    tags=TAGS,
    roles=rules.MANAGERS,
    body_kind="file",
    long_running=True,
    body_media_types=("text/csv",),
    query=ImportQuerySchema(),
    response=WorkforceImportReportSchema(),
    problems=(400, 403, 409, 413, 415, 422),
)
async def import_people(request: web.Request) -> web.Response:
    query = read_query(request, ImportQuerySchema())
    report = await register_import.import_people(
        ctx=request.app[CTX],
        principal=principal_of(request),
        body=await _file(request),
        content_type=request.content_type,
        dry_run=query["dry_run"],
    )
    return json_response(WorkforceImportReportSchema(), report)


@routes.get("/api/v1/workforce/people/{id}")
@endpoint("Get a register entry", tags=TAGS, roles=STAFF_ROLES, response=PersonSchema(), problems=(403, 404))
async def get_person(request: web.Request) -> web.Response:
    person = await register.get_person(
        ctx=request.app[CTX], principal=principal_of(request), person_id=request.match_info["id"]
    )
    return json_response(PersonSchema(), person)


@routes.patch("/api/v1/workforce/people/{id}")
@endpoint(
    "Change a register entry (kept in its history)",
    tags=TAGS,
    roles=rules.MANAGERS,
    body=PersonUpdateSchema(),
    response=PersonSchema(),
    problems=(403, 404, 409, 422),
)
async def update_person(request: web.Request) -> web.Response:
    changes = await read_json(request, PersonUpdateSchema())
    person = await register.update_person(
        ctx=request.app[CTX], principal=principal_of(request), person_id=request.match_info["id"], changes=changes
    )
    return json_response(PersonSchema(), person)


@routes.get("/api/v1/workforce/people/{id}/history")
@endpoint(
    "The changes of a register entry", tags=TAGS, roles=STAFF_ROLES, response=HistorySchema(), problems=(403, 404)
)
async def person_history(request: web.Request) -> web.Response:
    items = await register.person_history(
        ctx=request.app[CTX], principal=principal_of(request), person_id=request.match_info["id"]
    )
    return json_response(HistorySchema(), {"items": items})


@routes.get("/api/v1/workforce/people/{id}/training")
@endpoint(
    "A person's training record", tags=TRAINING, roles=STAFF_ROLES, response=RecordListSchema(), problems=(403, 404)
)
async def person_training(request: web.Request) -> web.Response:
    items = await training.person_training(
        ctx=request.app[CTX], principal=principal_of(request), person_id=request.match_info["id"]
    )
    return json_response(RecordListSchema(), {"items": items})


# ---------------------------------------------------------------- training


@routes.post("/api/v1/training/programmes")
@endpoint(
    "Add a training programme (category and tier)",
    tags=TRAINING,
    roles=rules.MANAGERS,
    body=ProgrammeCreateSchema(),
    response=ProgrammeSchema(),
    status=201,
    idempotent_create=True,
    problems=(403, 422),
)
async def create_programme(request: web.Request) -> web.Response:
    data = await read_json(request, ProgrammeCreateSchema())

    async def create() -> tuple[int, dict]:
        programme = await training.create_programme(ctx=request.app[CTX], principal=principal_of(request), data=data)
        return 201, ProgrammeSchema().dump(programme)

    return await idempotent_json(request, body=data, operation=create)


@routes.get("/api/v1/training/programmes")
@endpoint(
    "List training programmes",
    tags=TRAINING,
    roles=STAFF_ROLES,
    query=ProgrammeQuerySchema(),
    response=ProgrammePageSchema(),
    problems=(403, 422),
)
async def list_programmes(request: web.Request) -> web.Response:
    query = read_query(request, ProgrammeQuerySchema())
    page = await training.list_programmes(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(ProgrammePageSchema(), page)


@routes.get("/api/v1/training/programmes/{id}")
@endpoint("Get a training programme", tags=TRAINING, roles=STAFF_ROLES, response=ProgrammeSchema(), problems=(403, 404))
async def get_programme(request: web.Request) -> web.Response:
    programme = await training.get_programme(
        ctx=request.app[CTX], principal=principal_of(request), programme_id=request.match_info["id"]
    )
    return json_response(ProgrammeSchema(), programme)


@routes.post("/api/v1/training/programmes/{id}/sessions")
@endpoint(
    "Add a session to a programme (dates, place, hours, trainer)",
    tags=TRAINING,
    roles=rules.MANAGERS,
    body=SessionCreateSchema(),
    response=SessionSchema(),
    status=201,
    idempotent_create=True,
    problems=(403, 404, 422),
)
async def create_session(request: web.Request) -> web.Response:
    data = await read_json(request, SessionCreateSchema())

    async def create() -> tuple[int, dict]:
        session = await training.create_session(
            ctx=request.app[CTX], principal=principal_of(request), programme_id=request.match_info["id"], data=data
        )
        return 201, SessionSchema().dump(session)

    return await idempotent_json(request, body=data, operation=create)


@routes.get("/api/v1/training/programmes/{id}/sessions")
@endpoint(
    "The sessions of a programme", tags=TRAINING, roles=STAFF_ROLES, response=SessionListSchema(), problems=(403, 404)
)
async def list_sessions(request: web.Request) -> web.Response:
    items = await training.list_sessions(
        ctx=request.app[CTX], principal=principal_of(request), programme_id=request.match_info["id"]
    )
    return json_response(SessionListSchema(), {"items": items})


@routes.post("/api/v1/training/sessions/{id}/enrolments")
@endpoint(
    "Enrol a person in a session",
    tags=TRAINING,
    roles=rules.MANAGERS,
    body=EnrolmentCreateSchema(),
    response=TrainingRecordSchema(),
    status=201,
    idempotent_create=True,
    problems=(403, 404, 409, 422),
)
async def enrol_person(request: web.Request) -> web.Response:
    data = await read_json(request, EnrolmentCreateSchema())

    async def create() -> tuple[int, dict]:
        record = await training.enrol_person(
            ctx=request.app[CTX], principal=principal_of(request), session_id=request.match_info["id"], data=data
        )
        return 201, TrainingRecordSchema().dump(record)

    return await idempotent_json(request, body=data, operation=create)


@routes.post("/api/v1/training/sessions/{id}/records/import")
@endpoint(
    "Import a session's attendance and results sheet (CSV; dry run, then all or nothing)",
    description="Send the file as text/csv with columns id_card,status and optional name, attended_hours, "
    "completed_on, certificate_no. status: enrolled, attended, completed, not_completed. People not yet "
    "enrolled are enrolled. Every bad row is reported; with dry_run=false all rows are written or none.",
    tags=TRAINING,
    roles=rules.MANAGERS,
    body_kind="file",
    long_running=True,
    body_media_types=("text/csv",),
    query=ImportQuerySchema(),
    response=WorkforceImportReportSchema(),
    problems=(400, 403, 404, 409, 413, 415, 422),
)
async def import_records(request: web.Request) -> web.Response:
    query = read_query(request, ImportQuerySchema())
    report = await training.import_records(
        ctx=request.app[CTX],
        principal=principal_of(request),
        session_id=request.match_info["id"],
        body=await _file(request),
        content_type=request.content_type,
        dry_run=query["dry_run"],
    )
    return json_response(WorkforceImportReportSchema(), report)


@routes.get("/api/v1/training/records")
@endpoint(
    "List training records (supervisors: their division)",
    tags=TRAINING,
    roles=rules.MANAGERS,
    query=RecordQuerySchema(),
    response=RecordPageSchema(),
    problems=(403, 422),
)
async def list_records(request: web.Request) -> web.Response:
    query = read_query(request, RecordQuerySchema())
    page = await training.list_records(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(RecordPageSchema(), page)


@routes.patch("/api/v1/training/records/{id}")
@endpoint(
    "Record attendance or completion",
    tags=TRAINING,
    roles=rules.MANAGERS,
    body=RecordUpdateSchema(),
    response=TrainingRecordSchema(),
    problems=(403, 404, 409, 422),
)
async def update_record(request: web.Request) -> web.Response:
    changes = await read_json(request, RecordUpdateSchema())
    record = await training.update_record(
        ctx=request.app[CTX], principal=principal_of(request), record_id=request.match_info["id"], changes=changes
    )
    return json_response(TrainingRecordSchema(), record)


# ---------------------------------------------------------------- reference figures and the plan


@routes.get("/api/v1/reference-figures")
@endpoint(
    "Reference figures per division and year (older population, care-home beds)",
    tags=TAGS,
    roles=rules.MANAGERS,
    query=FigureQuerySchema(),
    response=FigurePageSchema(),
    problems=(403, 422),
)
async def list_figures(request: web.Request) -> web.Response:
    query = read_query(request, FigureQuerySchema())
    page = await figures.list_figures(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(FigurePageSchema(), page)


@routes.post("/api/v1/reference-figures/import")
@endpoint(
    "Import reference figures from CSV, with their source (dry run, then all or nothing)",
    description="Send the file as text/csv with columns division,year,source and older_population and/or "
    "care_home_beds. A row replaces the earlier figure of its division and year.",
    tags=TAGS,
    roles=("admin",),
    body_kind="file",
    long_running=True,
    body_media_types=("text/csv",),
    query=ImportQuerySchema(),
    response=WorkforceImportReportSchema(),
    problems=(400, 403, 413, 415, 422),
)
async def import_figures(request: web.Request) -> web.Response:
    query = read_query(request, ImportQuerySchema())
    report = await figures.import_figures(
        ctx=request.app[CTX],
        principal=principal_of(request),
        body=await _file(request),
        content_type=request.content_type,
        dry_run=query["dry_run"],
    )
    return json_response(WorkforceImportReportSchema(), report)


@routes.get("/api/v1/stats/plan")
@endpoint(
    "The plan's indicators: target, actual, gap and how each was computed",
    description="Targets come from config/plan_targets.toml (per plan period). A figure with no source yet "
    "(the stations' six-haves compliance) is answered with actual null, available false and the reason.",
    tags=("stats",),
    roles=rules.MANAGERS,
    query=PlanQuerySchema(),
    response=PlanReportSchema(),
    problems=(403, 422),
)
async def plan_indicators(request: web.Request) -> web.Response:
    query = read_query(request, PlanQuerySchema())
    report = await plan.plan_indicators(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(PlanReportSchema(), report)


@routes.get("/api/v1/stats/plan/divisions")
@endpoint(
    "One plan indicator for each division under a division (for the map)",
    description="The province's cities, a city's counties (and county-level development zones) or a county's "
    "townships, each with the indicator's target, actual and progress computed exactly as GET /api/v1/stats/plan "
    "computes it for that division, and the address of its records.",
    tags=("stats",),
    roles=rules.MANAGERS,
    query=PlanBreakdownQuerySchema(),
    response=PlanBreakdownSchema(),
    problems=(403, 422),
)
async def plan_breakdown(request: web.Request) -> web.Response:
    query = read_query(request, PlanBreakdownQuerySchema())
    breakdown = await plan.plan_breakdown(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(PlanBreakdownSchema(), breakdown)
