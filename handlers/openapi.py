"""The OpenAPI 3.1 document, generated from the app's routes, their @endpoint metadata and schemas.

Nothing here names a particular resource: every route in the router that carries
``@endpoint`` metadata (and not ``include_in_schema=False``) is described, so routes added
later appear without edits. The document is built once per app, on first use, after the
router is frozen.
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls, resolve_schema_instance
from marshmallow import Schema

from handlers.endpoint import Endpoint, endpoint_of
from schemas.problems import ProblemSchema
from service.common.models import ALL_ROLES, CLIENT_SCOPES

OPENAPI_VERSION = "3.1.0"
API_VERSION = "0.1.0"
# The serialized document per app. Kept beside the app rather than in it: a started app's
# state must not change, and the document can only be built once the router is final.
_CACHE: weakref.WeakKeyDictionary[web.Application, bytes] = weakref.WeakKeyDictionary()

METHODS = ("get", "put", "post", "delete", "options", "patch", "trace")
# Statuses every operation may answer: bad input, failed validation, our own fault,
# rate limits and an unreachable backing store.
GENERAL_PROBLEMS = (400, 414, 422, 429, 500, 503)
AUTH_PROBLEMS = (401, 403)

SCOPE_DESCRIPTIONS = {
    "cases:read": "读取工单 Read cases the client created",
    "cases:write": "提交与更新工单 Submit and update cases",
    "stations:read": "读取社工站 Read stations and their coverage",
    "volunteers:read": "志愿服务事件 Receive volunteer-service webhook events (hours confirmed, certificates)",
    "visits:read": "接收探访事件 Receive the visit programme's events (visit.missed) for the client's territory "
    "(division_prefix; none while unset)",
    "webhooks:manage": "管理事件订阅 Manage webhook subscriptions",
    "open311": "使用 Open311 GeoReport v2 接口 Use the Open311 GeoReport v2 facade",
}

TAG_DESCRIPTIONS = {
    "operations": "运行状态 Operations: liveness, readiness, metrics",
    "docs": "接口文档 API description",
    "auth": "登录与令牌 Authentication and tokens",
    "oauth": "第三方客户端授权 OAuth2 for integrators",
    "staff": "工作人员 Staff accounts",
    "clients": "接入客户端 Integrator clients",
    "catalogue": "服务目录 Service catalogue: scenarios and service types",
    "stations": "社工站 Township social-work stations",
    "network": "社工站建设 The station network against the plan: status, six haves, verification, coverage",
    "divisions": "行政区划 Divisions for address pickers: province, city, county, township",
    "routing": "派单路由 Routing requests to the responsible station",
    "uploads": "照片上传 Photos attached to requests",
    "cases": "工单 Cases: residents' requests and bookings",
    "stats": "统计 KPIs and visit rates for staff and supervisors",
    "elders": "特殊困难老年人 Register of elderly people in special difficulty",
    "visits": "探访关爱 Elderly visit programme",
    "volunteers": "志愿服务 Volunteer service: volunteers, teams, activities, hours and certificates",
    "workforce": "社会工作人才 Social-work workforce register and reference figures",
    "training": "培训 Training programmes, sessions and records",
    "alerts": "物联网报警 Devices, alerts from vendors, the duty rota and the maintenance list",
    "notifications": "消息通知 Subscription messages, inbox, live feed and preferences",
    "webhooks": "事件订阅 Webhook subscriptions and deliveries",
    "open311": "Open311 GeoReport v2 接口 facade",
}

PROBLEM_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer challenge", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}},
    503: {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}},
}

_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class DocumentedRoute:
    method: str  # lower case
    path: str  # OpenAPI template, e.g. /api/v1/cases/{case_id}
    handler: Any
    meta: Endpoint
    patterns: dict[str, str]  # path parameter -> the regular expression the router matches it with


def documented_routes(app: web.Application) -> Iterator[DocumentedRoute]:
    """The routes the document describes: every route with metadata, minus HEAD twins and hidden ones."""
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        meta = endpoint_of(route.handler)
        if meta is None or not meta.include_in_schema:
            continue
        path = route.resource.canonical
        patterns = _param_patterns(route.resource.get_info().get("pattern"))
        methods = METHODS[:6] if route.method == "*" else (route.method.lower(),)
        for method in methods:
            yield DocumentedRoute(method, path, route.handler, meta, patterns)


def _param_patterns(pattern: re.Pattern[str] | None) -> dict[str, str]:
    """Each named group of a dynamic route's pattern, e.g. {"format": "(?:json|xml)"}."""
    if pattern is None:
        return {}
    text = pattern.pattern
    out: dict[str, str] = {}
    for match in re.finditer(r"\(\?P<([A-Za-z_][A-Za-z0-9_]*)>", text):
        depth, i = 1, match.end()
        while i < len(text) and depth:
            if text[i] == "\\":
                i += 2
                continue
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        out[match.group(1)] = text[match.end() : i - 1]
    return out


def _schema_name_resolver() -> Any:
    """Name schemas after their class (minus "Schema"); a clash gets the module name in front.

    Schemas used with modifiers (only, exclude, partial, ...) are inlined rather than given a
    numbered name, which apispec would otherwise invent with a warning.
    """
    owners: dict[str, type] = {}

    def resolve(schema: Any) -> str | None:
        cls = resolve_schema_cls(schema)
        cls = cls[0] if isinstance(cls, list) else cls
        instance = resolve_schema_instance(schema)
        if any(getattr(instance, m, None) for m in ("only", "exclude", "partial", "load_only", "dump_only")):
            return None
        name = cls.__name__.removesuffix("Schema") or cls.__name__
        if owners.setdefault(name, cls) is not cls:
            name = cls.__module__.replace(".", "_") + "_" + name
            owners.setdefault(name, cls)
        return name

    return resolve


def _problem_response_name(status: int) -> str:
    return f"Problem{status}"


# The example each shared problem response shows (its own status and a code it really carries).
PROBLEM_EXAMPLES: dict[int, tuple[str, str, str]] = {
    400: ("malformed_json", "Bad request", "The body is not valid JSON: Expecting value (line 1, column 1)."),
    401: ("authentication_required", "Unauthorized", "This operation needs a bearer access token."),
    403: ("role_not_allowed", "Forbidden", "The role 'resident' may not use this operation."),
    404: ("not_found", "Not found", "No resource at this address."),
    408: ("request_timeout", "Request timeout", "The request body did not arrive within 10 seconds."),
    409: ("illegal_transition", "Action not allowed in the current state", "This action is not allowed now."),
    413: ("payload_too_large", "Payload too large", "The JSON body is larger than 1048576 bytes."),
    415: ("unsupported_media_type", "Unsupported media type", "Send the body as application/json (got text/plain)."),
    422: ("validation_failed", "Unprocessable Entity", "Some fields are missing or invalid; see errors."),
    429: ("rate_limited", "Too many requests", "Over 600 requests a minute; retry after Retry-After seconds."),
    500: (
        "internal_error",
        "Internal Server Error",
        "Something went wrong on our side; it has been logged. Quote the request id when reporting it.",
    ),
    502: ("wechat_error", "Upstream service error", "WeChat did not answer as expected; try again."),
    503: ("database_unavailable", "Service unavailable", "The database cannot be reached; retry after Retry-After."),
}


def problem_example(status: int) -> dict[str, Any]:
    """A problem document as the API writes it for ``status``."""
    code, title, detail = PROBLEM_EXAMPLES.get(status, ("http_error", HTTPStatus(status).phrase, "The request failed."))
    example: dict[str, Any] = {"type": f"/problems/{code}", "title": title, "status": status, "detail": detail}
    example.update({"code": code, "instance": "/api/v1/cases"})
    if status == 422:
        example["errors"] = {"service_code": ["Missing data for required field."]}
    if status == 413:
        example["limit"] = 1048576
    if status == 500:
        example["request_id"] = "5b1f0c1e9d6a4c0b8f2e7a3d9c4b1e20"
    return example


def _add_problem_response(spec: APISpec, status: int, added: set[int]) -> str:
    name = _problem_response_name(status)
    if status not in added:
        added.add(status)
        response: dict[str, Any] = {
            "description": HTTPStatus(status).phrase + " (problem document, RFC 9457)",
            "content": {"application/problem+json": {"schema": "Problem", "example": problem_example(status)}},
        }
        if status in PROBLEM_HEADERS:
            response["headers"] = PROBLEM_HEADERS[status]
        spec.components.response(name, response)
    return name


def _content_for(schema: Schema | None, content_type: str, alt_types: tuple[str, ...] = ()) -> dict[str, Any]:
    content: dict[str, Any]
    if schema is not None:
        content = {content_type: {"schema": schema}}
    elif content_type.endswith("json"):
        content = {content_type: {"schema": {"type": "object"}}}
    else:
        content = {content_type: {"schema": {"type": "string"}}}
    for alt in alt_types:
        content.setdefault(alt, {"schema": {"type": "string"}})
    return content


def _error_response(spec: APISpec, meta: Endpoint, status: int, added: set[int]) -> Any:
    """The shared problem-document response, or the route's own error form."""
    if meta.error_schema is None:
        return _add_problem_response(spec, status, added)
    response: dict[str, Any] = {
        "description": HTTPStatus(status).phrase,
        "content": _content_for(meta.error_schema, "application/json", meta.alt_content_types),
    }
    if status in PROBLEM_HEADERS:
        response["headers"] = PROBLEM_HEADERS[status]
    return response


def _request_body(meta: Endpoint) -> dict[str, Any] | None:
    if meta.body_kind == "none":
        return None
    if meta.body_kind == "json":
        if meta.body is None:
            return None
        required = not meta.body_optional or any(f.required for f in meta.body.fields.values())
        media: dict[str, Any] = {"schema": meta.body}
        if meta.body_example is not None:
            media["example"] = meta.body_example
        return {"required": required, "content": {"application/json": media}}
    if meta.body_kind == "file":
        return {
            "required": True,
            "content": {media: {"schema": {"type": "string"}} for media in meta.body_media_types},
        }
    if meta.body_kind == "form":
        schema: Any = meta.body if meta.body is not None else {"type": "object"}
        return {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": schema}}}
    schema = (
        meta.body
        if meta.body is not None
        else {
            "type": "object",
            "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream"}},
        }
    )
    return {"required": True, "content": {"multipart/form-data": {"schema": schema}}}


def _security(meta: Endpoint) -> list[dict[str, list[str]]]:
    if meta.public:
        return []
    requirements: list[dict[str, list[str]]] = [{"bearerAuth": []}]
    if meta.roles is None or "client" in meta.roles:
        requirements.append({"oauth2": list(meta.scopes)})
    return requirements


def _operation_id(route: DocumentedRoute, taken: set[str]) -> str:
    base = route.meta.operation_id or getattr(route.handler, "__name__", "") or f"{route.method}_{route.path}"
    candidate = base
    if candidate in taken:
        module = getattr(route.handler, "__module__", "").rsplit(".", 1)[-1]
        candidate = f"{module}_{base}" if module else base
    n = 2
    stem = candidate
    while candidate in taken:
        candidate = f"{stem}_{n}"
        n += 1
    taken.add(candidate)
    return candidate


def _path_schema(pattern: str | None) -> dict[str, Any]:
    """A path parameter's schema: a non-empty string the router's expression matches in full."""
    schema: dict[str, Any] = {"type": "string", "minLength": 1}
    if pattern is not None:
        schema["pattern"] = f"^{pattern}$"
    return schema


def _operation(spec: APISpec, route: DocumentedRoute, taken: set[str], added: set[int]) -> dict[str, Any]:
    meta = route.meta
    description = meta.description or (route.handler.__doc__ or "").strip()
    parameters: list[dict[str, Any]] = [
        {"in": "path", "name": name, "required": True, "schema": _path_schema(route.patterns.get(name))}
        for name in _PATH_PARAM.findall(route.path)
    ]
    if meta.query is not None:
        parameters.append({"in": "query", "schema": meta.query})
    if meta.idempotent_create:
        parameters.append(
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": False,
                "description": "Repeat a create safely: the same key and body replays the first response "
                "(1-255 printable ASCII characters)",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[ -~]*[!-~][ -~]*$"},
            }
        )
    success: dict[str, Any] = {"description": HTTPStatus(meta.status).phrase}
    if meta.status != 204:
        success["content"] = _content_for(meta.response, meta.response_content_type, meta.alt_content_types)
    responses: dict[str, Any] = {str(meta.status): success}
    statuses = set(meta.problems) | set(GENERAL_PROBLEMS) | (set() if meta.public else set(AUTH_PROBLEMS))
    if route.patterns or _PATH_PARAM.search(route.path):
        statuses.add(404)  # a path the parameter's pattern does not match, or an id that does not exist
    if _request_body(meta) is not None:
        statuses.add(408)  # the body did not arrive in time (HUIMIN_BODY_READ_TIMEOUT_SECONDS)
        statuses.add(413)  # the body is larger than the limit
        statuses.add(415)  # the body is of another media type than the one described
    for status in sorted(statuses):
        responses.setdefault(str(status), _error_response(spec, meta, status, added))

    operation: dict[str, Any] = {
        "operationId": _operation_id(route, taken),
        "summary": meta.summary,
        "tags": list(meta.tags),
        "responses": responses,
        "security": _security(meta),
    }
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    body = _request_body(meta)
    if body is not None:
        operation["requestBody"] = body
    if not meta.public:
        operation["x-roles"] = sorted(meta.roles) if meta.roles is not None else list(ALL_ROLES)
    if not operation["tags"]:
        del operation["tags"]
    return operation


def build_openapi(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document for every documented route of ``app``."""
    spec = APISpec(
        title="Huimin 惠民 API",
        version=API_VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name_resolver())],
        info={
            "summary": "互联网+民政服务 Internet + civil-affairs services for Anhui province",
            "description": (
                "居民提交服务申请与预约，工单派至乡镇（街道）社工站办理，民政部门督办考核，"
                "其他政务系统通过 REST、Open311 与 Webhook 对接。\n\n"
                "Residents file requests and bookings; each lands at the responsible township "
                "social-work station, is handled under time limits and supervised. Errors are "
                "RFC 9457 problem documents (application/problem+json) with a stable `code`."
            ),
            "license": {"name": "Proprietary"},
        },
    )
    spec.components.schema("Problem", schema=ProblemSchema)
    spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "访问令牌 Access token"},
    )
    spec.components.security_scheme(
        "oauth2",
        {
            "type": "oauth2",
            "description": "接入客户端 Integrator clients: client credentials",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/oauth/token",
                    "scopes": {s: SCOPE_DESCRIPTIONS.get(s, s) for s in CLIENT_SCOPES},
                }
            },
        },
    )
    taken: set[str] = set()
    added: set[int] = set()
    used_tags: list[str] = []
    by_path: dict[str, dict[str, Any]] = {}
    own_errors: set[str] = set()  # operations that answer errors in their own form (Open311)
    for route in documented_routes(app):
        operation = _operation(spec, route, taken, added)
        by_path.setdefault(route.path, {})[route.method] = operation
        if route.meta.error_schema is not None:
            own_errors.add(operation["operationId"])
        for tag in route.meta.tags:
            if tag not in used_tags:
                used_tags.append(tag)
    for tag in used_tags:
        spec.tag({"name": tag, "description": TAG_DESCRIPTIONS.get(tag, tag)})
    for path, operations in by_path.items():
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    _refuse_empty_query_values(document, skip=own_errors)
    return document


def _refuse_empty_query_values(document: dict[str, Any], *, skip: set[str]) -> None:
    """State what ``read_query`` enforces: a query parameter, when given, is not empty.

    Open311 routes (``skip``) read their parameters themselves and are left as their schemas say.
    """
    for operations in document["paths"].values():
        for op in operations.values():
            if op["operationId"] in skip:
                continue
            for param in op.get("parameters", []):
                if param.get("in") != "query":
                    continue
                schema = param.get("schema", {})
                target = schema.get("items", {}) if schema.get("type") == "array" else schema
                if target.get("type") == "string" and "enum" not in target:
                    target["minLength"] = max(1, target.get("minLength", 0))


def openapi_json(app: web.Application) -> bytes:
    """The serialized document, built on first use and kept on the app."""
    cached = _CACHE.get(app)
    if cached is None:
        cached = json.dumps(build_openapi(app), ensure_ascii=False).encode()
        _CACHE[app] = cached
    return cached
