"""The OpenAPI document covers every route, validates as OpenAPI 3.1, and /docs is served locally."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp import web
from marshmallow import Schema, fields
from openapi_spec_validator import validate

from config import Settings
from handlers.docs import STATIC_FILES
from handlers.endpoint import endpoint, endpoint_of
from handlers.openapi import build_openapi, openapi_json
from run import create_app
from service.common.models import ALL_ROLES, CLIENT_SCOPES

STATIC_DIR = Path(__file__).resolve().parents[2] / "handlers" / "static" / "swagger-ui"


def _expected_operations(app: web.Application) -> set[tuple[str, str]]:
    """Every (method, path) the router serves that the document must describe."""
    expected = set()
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        meta = endpoint_of(route.handler)
        assert meta is not None, f"{route.method} {route.resource.canonical} has no @endpoint metadata"
        if meta.include_in_schema:
            expected.add((route.method.lower(), route.resource.canonical))
    return expected


def _listed_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, ops in doc["paths"].items() for method in ops}


async def test_openapi_document_validates_as_openapi_3_1(client: Any) -> None:
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    validate(doc)


async def test_every_route_of_the_router_is_described(client: Any) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    expected = _expected_operations(client.server.app)
    assert expected, "the router has no documented routes"
    assert _listed_operations(doc) == expected


async def test_operation_ids_are_unique(client: Any) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


async def test_every_tag_has_a_bilingual_description(client: Any) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    used = {tag for ops in doc["paths"].values() for op in ops.values() for tag in op.get("tags", [])}
    described = {t["name"]: t["description"] for t in doc["tags"]}
    assert used <= set(described)
    assert [name for name in used if described[name] == name] == []


async def test_every_operation_lists_problem_responses(client: Any) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            needed = {"400", "422", "429", "500", "503"} | ({"401", "403"} if op["security"] else set())
            assert needed <= set(op["responses"]), f"{method} {path}"
    problem = doc["components"]["responses"]["Problem503"]
    assert problem["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert "Retry-After" in problem["headers"]
    required = set(doc["components"]["schemas"]["Problem"]["required"])
    assert {"type", "title", "status", "detail", "code"} <= required


async def test_security_schemes_offer_bearer_and_client_credentials(client: Any) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["bearerAuth"]["description"],
    }
    flow = schemes["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/oauth/token"
    assert set(flow["scopes"]) == set(CLIENT_SCOPES)
    assert doc["paths"]["/healthz"]["get"]["security"] == []


async def test_openapi_document_is_generated_once_per_app(client: Any) -> None:
    first = await (await client.get("/api/v1/openapi.json")).read()
    second = await (await client.get("/api/v1/openapi.json")).read()
    assert first == second
    assert openapi_json(client.server.app) is openapi_json(client.server.app)


# ------------------------------------------------------------ routes added by other modules


class ThingCreateSchema(Schema):
    name = fields.String(required=True, metadata={"description": "名称 name"})
    size = fields.Integer(load_default=1)


class ThingQuerySchema(Schema):
    limit = fields.Integer(load_default=20, metadata={"description": "page size"})
    cursor = fields.String()


class ThingSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)


class UploadSchema(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


@endpoint(
    "Create a thing",
    tags=("things",),
    body=ThingCreateSchema(),
    query=ThingQuerySchema(),
    response=ThingSchema(),
    status=201,
    roles=("worker", "station_head", "client"),
    scopes=("cases:write",),
    problems=(404, 409),
    idempotent_create=True,
)
async def create_thing(request: web.Request) -> web.Response:
    raise AssertionError("not called")


@endpoint("Remove a thing", roles=("admin",), status=204, body_kind="none")
async def remove_thing(request: web.Request) -> web.Response:
    raise AssertionError("not called")


@endpoint("Log in with a form", public=True, body=ThingCreateSchema(only=("name",)), body_kind="form")
async def form_login(request: web.Request) -> web.Response:
    raise AssertionError("not called")


@endpoint("Upload", body=UploadSchema(), body_kind="multipart")
async def upload(request: web.Request) -> web.Response:
    raise AssertionError("not called")


@endpoint("Hidden", public=True, include_in_schema=False)
async def hidden(request: web.Request) -> web.Response:
    raise AssertionError("not called")


@endpoint("Same handler name elsewhere", public=True)
async def healthz(request: web.Request) -> web.Response:
    raise AssertionError("not called")


def _app_with_more_routes(settings: Settings) -> web.Application:
    app = create_app(settings)
    app.router.add_post("/api/v1/stations/{station_id}/things", create_thing)
    app.router.add_delete(r"/api/v1/things/{thing_id:\d+}", remove_thing)
    app.router.add_post("/api/v1/form-login", form_login)
    app.router.add_post("/api/v1/uploads", upload)
    app.router.add_get("/api/v1/hidden", hidden)
    app.router.add_get("/api/v1/other-health", healthz)
    return app


def test_routes_added_later_are_described_without_edits(settings: Settings) -> None:
    app = _app_with_more_routes(settings)
    doc = build_openapi(app)
    validate(doc)
    assert _listed_operations(doc) == _expected_operations(app)
    assert "/api/v1/hidden" not in doc["paths"]

    op = doc["paths"]["/api/v1/stations/{station_id}/things"]["post"]
    assert op["operationId"] == "create_thing"
    params = {(p["in"], p["name"]): p for p in op["parameters"]}
    assert params[("path", "station_id")]["required"] is True
    assert ("query", "limit") in params and ("query", "cursor") in params
    assert ("header", "Idempotency-Key") in params
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ThingCreate"}
    assert op["responses"]["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Thing"}
    assert {"400", "401", "403", "404", "409", "422", "429", "500", "503"} <= set(op["responses"])
    assert op["security"] == [{"bearerAuth": []}, {"oauth2": ["cases:write"]}]
    assert op["x-roles"] == ["client", "station_head", "worker"]
    assert "things" in {t["name"] for t in doc["tags"]}


def test_body_kinds_and_roles_are_described(settings: Settings) -> None:
    doc = build_openapi(_app_with_more_routes(settings))

    remove = doc["paths"]["/api/v1/things/{thing_id}"]["delete"]
    assert "requestBody" not in remove
    assert "content" not in remove["responses"]["204"]
    assert remove["security"] == [{"bearerAuth": []}]  # integrator clients may not call it
    assert remove["x-roles"] == ["admin"]
    assert [p["name"] for p in remove["parameters"]] == ["thing_id"]

    form = doc["paths"]["/api/v1/form-login"]["post"]
    assert "application/x-www-form-urlencoded" in form["requestBody"]["content"]
    assert form["security"] == []
    assert "401" not in form["responses"]
    assert "x-roles" not in form

    multipart = doc["paths"]["/api/v1/uploads"]["post"]
    assert "multipart/form-data" in multipart["requestBody"]["content"]
    assert multipart["x-roles"] == list(ALL_ROLES)  # any authenticated caller


def test_handlers_with_the_same_name_get_distinct_operation_ids(settings: Settings) -> None:
    doc = build_openapi(_app_with_more_routes(settings))
    ours = doc["paths"]["/api/v1/other-health"]["get"]["operationId"]
    theirs = doc["paths"]["/healthz"]["get"]["operationId"]
    assert theirs == "healthz"
    assert ours != theirs and ours.endswith("healthz")


# ------------------------------------------------------------ /docs


async def test_docs_page_is_served_without_outside_resources(client: Any) -> None:
    resp = await client.get("/docs")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    html = await resp.text()
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources
    assert all(s.startswith("/") for s in sources), sources
    init = await (await client.get("/docs/static/huimin-docs.js")).text()
    assert '"/api/v1/openapi.json"' in init
    assert "validatorUrl: null" in init


async def test_docs_assets_have_content_types_and_cache_headers(client: Any) -> None:
    for name, content_type in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css")):
        resp = await client.get(f"/docs/static/{name}?v=1")
        assert resp.status == 200, name
        assert resp.content_type == content_type
        assert "max-age=" in resp.headers["Cache-Control"]
        etag = resp.headers["ETag"]
        body = await resp.read()
        assert body == (STATIC_DIR / name).read_bytes()
        again = await client.get(f"/docs/static/{name}", headers={"If-None-Match": etag})
        assert again.status == 304


async def test_docs_assets_outside_the_list_are_not_found(client: Any) -> None:
    for path in ("/docs/static/PROVENANCE.md", "/docs/static/..%2F..%2Fdocs.py", "/docs/static/swagger-ui.js"):
        resp = await client.get(path)
        assert resp.status == 404, path
        assert (await resp.json())["code"] == "not_found"


def test_vendored_swagger_ui_is_version_5_and_small() -> None:
    provenance = (STATIC_DIR / "PROVENANCE.md").read_text()
    assert "swagger-ui-dist` 5." in provenance and "Apache-2.0" in provenance
    for name in STATIC_FILES:
        path = STATIC_DIR / name
        assert path.is_file(), name
        assert path.stat().st_size < 2 * 1024 * 1024, name
    assert not list(STATIC_DIR.glob("*.map"))


async def test_path_parameters_carry_the_pattern_the_router_matches(client: Any) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    params = {p["name"]: p["schema"] for p in doc["paths"]["/open311/v2/discovery.{format}"]["get"]["parameters"]}
    assert params["format"]["pattern"] == "^(?:json|xml)$"
    case = doc["paths"]["/api/v1/cases/{case_id}"]["get"]
    assert case["parameters"][0]["schema"] == {"type": "string", "minLength": 1, "pattern": "^[^{}/]+$"}
    assert "404" in case["responses"]


async def test_routes_with_their_own_error_form_document_it_instead_of_problems(client: Any) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    op = doc["paths"]["/open311/v2/requests.{format}"]["get"]
    forbidden = op["responses"]["403"]["content"]
    assert forbidden["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Open311Error"},
    }
    assert "text/xml" in forbidden and "text/xml" in op["responses"]["200"]["content"]
    assert "application/problem+json" not in forbidden


async def test_the_document_says_how_address_is_decided_and_marks_address_required_required(client: Any) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    [create] = [s for name, s in schemas.items() if name.startswith("CaseCreate")]
    assert "address_required" in create["properties"]["address"]["description"]
    assert "address" not in create.get("required", []) and "service_code" in create["required"]
    [service] = [s for name, s in schemas.items() if name in ("Service", "ServiceSchema")]
    assert "address_required" in service["required"]
    assert service["properties"]["address_required"]["type"] == "boolean"
