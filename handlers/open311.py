"""Open311 GeoReport v2 routes under /open311/v2, in JSON and XML, with the spec's error lists.

Every resource answers at ``<name>.json`` and ``<name>.xml``; without an extension it
answers JSON. Errors on these routes follow the specification (``[{code, description}]``
or ``<errors><error>…``), not RFC 9457: ``open311_error_middleware`` turns the domain's
errors into that form for paths under the prefix only.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from aiohttp import web
from aiohttp.typedefs import Handler

from handlers.auth import basic_credentials
from handlers.endpoint import endpoint
from handlers.io import read_form
from handlers.keys import CTX, ERROR_TRANSLATOR
from handlers.problems import HTTP_EXCEPTION_CODES, allow_header, status_for
from schemas.open311 import (
    ByKeyQuerySchema,
    CreatedRequestSchema,
    CreateRequestFormSchema,
    DiscoverySchema,
    Open311ErrorSchema,
    Open311QuerySchema,
    Open311ServiceSchema,
    RequestsQuerySchema,
    ServiceDefinitionSchema,
    ServiceRequestSchema,
    TokenSchema,
)
from service.common.errors import (
    AuthenticationError,
    DomainError,
    ValidationFailedError,
)
from service.common.text import xml_text
from service.open311 import queries
from service.open311 import service as open311

log = logging.getLogger("huimin.open311")
routes = web.RouteTableDef()
PREFIX = "/open311/v2"
TAGS = ("open311",)
EXT = ".{format:(?:json|xml)}"
MAX_FORM_BYTES = 65536
# Repeated elements: the list's own element and the element of each item.
LIST_ITEMS = {"attributes": "attribute", "values": "value", "endpoints": "endpoint", "formats": "format"}
XML_TYPE = "text/xml"
FORMAT_NOTE = " Append .json or .xml for the format (no extension: JSON)."
# Every Open311 route answers errors as the spec's list, in JSON or XML as the path asks.
SPEC_FORMS: dict[str, Any] = {"error_schema": Open311ErrorSchema(many=True), "alt_content_types": (XML_TYPE,)}


# ---------------------------------------------------------------- reading and writing


async def read_params(request: web.Request) -> open311.Params:
    """Query-string fields, overlaid with the form body's fields on POST (either place is accepted)."""
    params: open311.Params = {key: request.query.getall(key) for key in request.query}
    if request.method == "POST" and request.body_exists:
        params.update(await read_form(request, limit=MAX_FORM_BYTES))
    return params


def _xml_append(parent: Element, tag: str, value: Any) -> None:
    child = SubElement(parent, tag)
    if isinstance(value, list):
        for item in value:
            _xml_append(child, LIST_ITEMS.get(tag, "item"), item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _xml_append(child, key, item)
    elif isinstance(value, bool):
        child.text = "true" if value else "false"
    elif value is not None:
        # Whatever was stored, the document stays well-formed: characters XML 1.0 cannot hold
        # (control characters, lone surrogates, U+FFFE) are written as U+FFFD.
        child.text = xml_text(str(value))


def to_xml(root: str, item: str, data: Any) -> bytes:
    """The spec's XML: a root element holding one ``item`` element per list entry (or the dict's fields)."""
    top = Element(root)
    if isinstance(data, list):
        for entry in data:
            _xml_append(top, item, entry)
    else:
        for key, value in data.items():
            _xml_append(top, key, value)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(top, encoding="utf-8", xml_declaration=False)


def _wants_xml(request: web.Request) -> bool:
    return request.match_info.get("format") == "xml" or request.path.endswith(".xml")


def render(
    request: web.Request,
    data: Any,
    *,
    root: str,
    item: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The answer in the format the path asks for."""
    if _wants_xml(request):
        return web.Response(
            status=status, body=to_xml(root, item, data), content_type=XML_TYPE, charset="utf-8", headers=headers
        )
    return web.Response(
        status=status,
        text=json.dumps(data, ensure_ascii=False),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


# ---------------------------------------------------------------- errors


def _error_status(exc: DomainError) -> int:
    if isinstance(exc, ValidationFailedError):
        return 400  # the spec's status for bad input
    if isinstance(exc, AuthenticationError):
        return 403  # the spec's status for a bad api_key
    return status_for(exc)


def _error_list(exc: DomainError, status: int) -> list[dict[str, Any]]:
    errors = [{"code": status, "description": f"{exc.code}: {exc.detail}"}]
    if isinstance(exc, ValidationFailedError):
        for field, messages in exc.errors.items():
            for message in messages if isinstance(messages, list) else [messages]:
                errors.append({"code": status, "description": f"{field}: {message}"})
    return errors


@web.middleware
async def open311_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On /open311/ paths, errors leave as the spec's error list (JSON or XML), not as problem documents."""
    if not request.path.startswith(PREFIX + "/") and request.path != PREFIX:
        return await handler(request)
    headers: dict[str, str] = {}
    try:
        return await handler(request)
    except DomainError as exc:
        status = _error_status(exc)
        errors = _error_list(exc, status)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            headers["Retry-After"] = str(retry_after)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status = exc.status
        code, detail = HTTP_EXCEPTION_CODES.get(status, ("http_error", exc.reason))
        errors = [{"code": status, "description": f"{code}: {detail}"}]
        headers.update(allow_header(request, exc))
    except Exception as exc:
        translated = request.app[ERROR_TRANSLATOR](exc)
        if translated is None:
            log.exception("unhandled error on %s %s", request.method, request.path)
            status = 500
            errors = [{"code": 500, "description": "internal_error: something went wrong on our side; it is logged."}]
        else:
            log.warning("backing store unavailable: %s", type(exc).__name__)
            status = _error_status(translated)
            errors = _error_list(translated, status)
            headers["Retry-After"] = str(getattr(translated, "retry_after", 5))
    return render(request, errors, root="errors", item="error", status=status, headers=headers)


# ---------------------------------------------------------------- routes


@routes.get(PREFIX + "/discovery" + EXT)
@routes.get(PREFIX + "/discovery")
@endpoint(
    "Open311 service discovery",
    tags=TAGS,
    public=True,
    **SPEC_FORMS,
    response=DiscoverySchema(),
    description="Where this GeoReport v2 endpoint is and which formats it speaks." + FORMAT_NOTE,
)
async def open311_discovery(request: web.Request) -> web.Response:
    base_url = f"{request.url.origin()}{PREFIX}"
    return render(request, DiscoverySchema().dump(open311.discovery(base_url=base_url)), root="discovery")


@routes.get(PREFIX + "/services" + EXT)
@routes.get(PREFIX + "/services")
@endpoint(
    "Open311 GET services: the service types",
    tags=TAGS,
    public=True,
    **SPEC_FORMS,
    query=Open311QuerySchema(),
    response=Open311ServiceSchema(many=True),
    problems=(404,),
    description="Every current service type; group is its scenario; metadata is true when it has attributes."
    + FORMAT_NOTE,
)
async def open311_services(request: web.Request) -> web.Response:
    services = await open311.list_services(ctx=request.app[CTX], params=await read_params(request))
    return render(request, Open311ServiceSchema(many=True).dump(services), root="services", item="service")


@routes.get(PREFIX + "/services/{service_code:[^{}/.]+}" + EXT)
@routes.get(PREFIX + "/services/{service_code:[^{}/.]+}")
@endpoint(
    "Open311 GET service definition: a service's attributes",
    tags=TAGS,
    public=True,
    **SPEC_FORMS,
    query=Open311QuerySchema(),
    response=ServiceDefinitionSchema(),
    problems=(404,),
    description="The service's form fields as attributes with datatypes and values." + FORMAT_NOTE,
)
async def open311_service_definition(request: web.Request) -> web.Response:
    definition = await open311.get_service_definition(
        ctx=request.app[CTX], service_code=request.match_info["service_code"], params=await read_params(request)
    )
    return render(request, ServiceDefinitionSchema().dump(definition), root="service_definition")


@routes.post(PREFIX + "/requests" + EXT)
@routes.post(PREFIX + "/requests")
@endpoint(
    "Open311 POST requests: file a service request",
    tags=TAGS,
    public=True,
    **SPEC_FORMS,
    body=CreateRequestFormSchema(),
    body_kind="form",
    response=CreatedRequestSchema(many=True),
    status=201,
    problems=(403, 404, 415),
    description="Form-encoded (fields in the body or the query string); api_key is client_id:client_secret of "
    "a client with the open311 scope. Files an ordinary case and answers its number as service_request_id."
    + FORMAT_NOTE,
)
async def open311_create_request(request: web.Request) -> web.Response:
    created = await open311.create_request(
        ctx=request.app[CTX], params=await read_params(request), basic=basic_credentials(request)
    )
    return render(
        request, CreatedRequestSchema(many=True).dump(created), root="service_requests", item="request", status=201
    )


@routes.get(PREFIX + "/requests" + EXT)
@routes.get(PREFIX + "/requests")
@endpoint(
    "Open311 GET requests: the client's service requests",
    tags=TAGS,
    public=True,
    **SPEC_FORMS,
    query=RequestsQuerySchema(),
    response=ServiceRequestSchema(many=True),
    problems=(403, 404),
    description="Needs api_key (or HTTP Basic): only the calling client's requests, newest first, at most 1,000, "
    "by default from the last 90 days." + FORMAT_NOTE,
)
async def open311_list_requests(request: web.Request) -> web.Response:
    found = await queries.list_requests(
        ctx=request.app[CTX], params=await read_params(request), basic=basic_credentials(request)
    )
    return render(request, ServiceRequestSchema(many=True).dump(found), root="service_requests", item="request")


@routes.get(PREFIX + "/requests/{service_request_id:[^{}/.]+}" + EXT)
@routes.get(PREFIX + "/requests/{service_request_id:[^{}/.]+}")
@endpoint(
    "Open311 GET request: one service request",
    tags=TAGS,
    public=True,
    **SPEC_FORMS,
    query=ByKeyQuerySchema(),
    response=ServiceRequestSchema(many=True),
    problems=(403, 404),
    description="One of the calling client's requests, as a one-element list." + FORMAT_NOTE,
)
async def open311_get_request(request: web.Request) -> web.Response:
    found = await queries.get_request(
        ctx=request.app[CTX],
        service_request_id=request.match_info["service_request_id"],
        params=await read_params(request),
        basic=basic_credentials(request),
    )
    return render(request, ServiceRequestSchema(many=True).dump(found), root="service_requests", item="request")


@routes.get(PREFIX + "/tokens/{token:[^{}/.]+}" + EXT)
@routes.get(PREFIX + "/tokens/{token:[^{}/.]+}")
@endpoint(
    "Open311 GET token: the request id for a token",
    tags=TAGS,
    public=True,
    **SPEC_FORMS,
    query=ByKeyQuerySchema(),
    response=TokenSchema(many=True),
    problems=(403, 404),
    description="Requests are created at once, so POST answers the service_request_id directly; a case id "
    "used as token maps to its number." + FORMAT_NOTE,
)
async def open311_token(request: web.Request) -> web.Response:
    found = await queries.get_token(
        ctx=request.app[CTX],
        token=request.match_info["token"],
        params=await read_params(request),
        basic=basic_credentials(request),
    )
    return render(request, TokenSchema(many=True).dump(found), root="service_requests", item="request")
