"""Case routes: submit, list, read, one route per lifecycle action, and KPIs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from handlers.dumping import VersionedDump, compiled
from handlers.endpoint import Handler, endpoint
from handlers.idempotency import idempotent_json
from handlers.io import QueryReader, json_response, load_json_object, read_json, read_query, read_raw_json
from handlers.keys import CTX, REVOCATION_CHECK
from handlers.middlewares import principal_of
from schemas.cases import (
    ACTION_ALIASES,
    ACTIONS,
    CaseCreateSchema,
    CasePageSchema,
    CaseQuerySchema,
    CaseReadQuerySchema,
    CaseSchema,
    KpiQuerySchema,
    KpiSchema,
)
from service.cases import actions as case_actions
from service.cases import kpis as case_kpis
from service.cases import queries as case_queries
from service.cases import submit as case_submit
from service.cases.inputs import ActionInput
from service.cases.views import CALLER_FIELDS, CaseView
from service.catalog.seed import SEED_SERVICES
from service.catalog.service import example_answers
from service.common.memo import CASES_KEPT
from service.common.models import STAFF_ROLES, Page

routes = web.RouteTableDef()


def _submit_example() -> dict[str, Any]:
    """A filing that works on a freshly seeded deployment: a home visit (上门探访) in 合肥市瑶海区."""
    service = next(s for s in SEED_SERVICES if s.code == "elderly_home_visit")
    return {
        "service_code": service.code,
        "answers": example_answers(service),
        "division_code": "340102001",
        "address": "明光路 1 号",
        "contact": {"name": "王芳", "phone": "13912345678"},
    }


# One instance of each schema for every request: building a marshmallow schema deep-copies its
# fields (and a nested field builds its schema on first use), which cost more than the dump
# itself. Loading and dumping keep no state on the instance, so sharing them is safe.
CASE_CREATE = CaseCreateSchema()
CASE_OUT = CaseSchema()
CASE_PAGE = CasePageSchema()
CASE_QUERY = CaseQuerySchema()
CASE_READ_QUERY = CaseReadQuerySchema()
# Both load a query string to the same values every time (fixed defaults and validators).
read_case_query = QueryReader(CASE_QUERY)
read_case_read_query = QueryReader(CASE_READ_QUERY)
# And their dumps without marshmallow's per-field calls (handlers/dumping.py: the same output).
dump_case = compiled(CASE_OUT)
# A list's cases: what is the same for every caller dumped once per version of a case (a page is
# read far more often than its cases change), the caller's own fields each time.
dump_listed_case = VersionedDump(CaseSchema(exclude=("history",)), CALLER_FIELDS, CASES_KEPT)


def dump_case_page(page: Page[CaseView], coord_system: str) -> dict[str, Any]:
    """What ``CASE_PAGE`` dumps ``page`` to, each case through ``dump_listed_case``."""
    return {
        "items": [dump_listed_case(item, coord_system) for item in page.items],
        "next_cursor": page.next_cursor,
    }


ANYONE_ON_CASES = ("resident", "worker", "station_head", "supervisor", "admin", "client")


@routes.post("/api/v1/cases")
@endpoint(
    "提交诉求 Submit a request or booking",
    tags=("cases",),
    body=CaseCreateSchema(),
    response=CaseSchema(),
    status=201,
    roles=ANYONE_ON_CASES,
    scopes=("cases:write",),
    problems=(404, 409, 422),
    idempotent_create=True,
    body_example=_submit_example(),
    description="Validates the answers against the service's form fields, routes the case to a station at "
    "once and stores the routing decision. Send an Idempotency-Key header to make retries safe.",
)
async def submit(request: web.Request) -> web.StreamResponse:
    data = await read_json(request, CASE_CREATE)

    async def create(case_id: str) -> tuple[int, dict]:
        case = await case_submit.submit_case(
            ctx=request.app[CTX], principal=principal_of(request), data=data, case_id=case_id
        )
        return 201, dump_case(case)

    return await idempotent_json(request, body=data, create=create)


@routes.get("/api/v1/cases")
@endpoint(
    "查询工单 List cases the caller may see",
    tags=("cases",),
    query=CaseQuerySchema(),
    response=CasePageSchema(),
    roles=ANYONE_ON_CASES,
    scopes=("cases:read",),
    overlaps_revocation=True,
)
async def list_cases(request: web.Request) -> web.Response:
    query = read_case_query(request)
    page = await case_queries.list_cases(
        ctx=request.app[CTX], principal=principal_of(request), query=query, ready=request.get(REVOCATION_CHECK)
    )
    return json_response(None, dump_case_page(page, query.get("coord_system") or "wgs84"))


@routes.get("/api/v1/cases/{case_id}")
@endpoint(
    "工单详情 Read one case with its history and allowed actions",
    tags=("cases",),
    query=CaseReadQuerySchema(),
    response=CaseSchema(),
    roles=ANYONE_ON_CASES,
    scopes=("cases:read",),
    problems=(404, 422),
    overlaps_revocation=True,
)
async def get_case(request: web.Request) -> web.Response:
    query = read_case_read_query(request)
    case = await case_queries.get_case(
        ctx=request.app[CTX],
        principal=principal_of(request),
        case_id=request.match_info["case_id"],
        ready=request.get(REVOCATION_CHECK),
        **query,
    )
    return json_response(None, dump_case(case))


def _action_handler(segment: str, *, alias: bool = False) -> Handler:
    action, schema_cls, summary = ACTIONS[segment]
    body_schema = schema_cls()
    # What no fields at all (no body, or ``{}``: most actions) load as, once loaded: every default
    # of an action's fields is a constant and the input is frozen, so each such call can share it.
    no_fields: list[ActionInput] = []

    @endpoint(
        summary,
        tags=("cases",),
        body=schema_cls(),
        body_optional=True,
        response=CaseSchema(),
        roles=ANYONE_ON_CASES,
        scopes=("cases:write",),
        problems=(404, 409, 422),
        operation_id=f"case_{action}",
        overlaps_revocation=True,
        include_in_schema=not alias,
        description=(
            "Needs no fields: the body may be left out (or be {})."
            if not any(f.required for f in schema_cls().fields.values())
            else "Fields marked required must be sent."
        ),
    )
    async def handler(request: web.Request) -> web.Response:
        # An action that needs no fields needs no body either; one that does answers 422 naming them.
        body = await read_raw_json(request, body_optional=True)
        if body == {} and no_fields:
            data = no_fields[0]
        else:
            data = load_json_object(body_schema, body)
            if body == {}:
                no_fields.append(data)
        case = await case_actions.act(
            ctx=request.app[CTX],
            principal=principal_of(request),
            case_id=request.match_info["case_id"],
            action=action,
            data=data,
            ready=request.get(REVOCATION_CHECK),
        )
        return json_response(None, dump_case(case))

    handler.__name__ = f"case_{action}"
    return handler


for _segment in ACTIONS:
    routes.post(f"/api/v1/cases/{{case_id}}/{_segment}")(_action_handler(_segment))
for _old, _segment in ACTION_ALIASES.items():
    routes.post(f"/api/v1/cases/{{case_id}}/{_old}")(_action_handler(_segment, alias=True))


@routes.get("/api/v1/stats/kpis")
@endpoint(
    "绩效指标 KPIs: counts, response, resolution, on-time and satisfaction rates",
    tags=("stats",),
    query=KpiQuerySchema(),
    response=KpiSchema(),
    roles=STAFF_ROLES,
    problems=(403,),
)
async def kpis(request: web.Request) -> web.Response:
    q = read_query(request, KpiQuerySchema())
    result = await case_kpis.kpis(
        ctx=request.app[CTX],
        principal=principal_of(request),
        division=q["division"],
        date_from=q["date_from"],
        date_to=q["date_to"],
        group_by=q["group_by"],
    )
    return json_response(KpiSchema(), result)
