"""RFC 9457 problem documents: the one table from error family to HTTP status."""

from __future__ import annotations

import json
import weakref
from http import HTTPStatus
from typing import Any

from aiohttp import web

from service.common import errors
from service.common.timestamps import json_default

PROBLEM_TYPE = "application/problem+json"

# Order matters: subclasses before their bases.
STATUS_BY_FAMILY: tuple[tuple[type[errors.DomainError], int], ...] = (
    (errors.ValidationFailedError, 422),
    (errors.BadRequestError, 400),
    (errors.AuthenticationError, 401),
    (errors.PermissionDeniedError, 403),
    (errors.NotFoundError, 404),
    (errors.InvalidStateError, 409),
    (errors.ConflictError, 409),
    (errors.PayloadTooLargeError, 413),
    (errors.UnsupportedMediaTypeError, 415),
    (errors.RequestTimeoutError, 408),
    (errors.RateLimitedError, 429),
    (errors.UpstreamError, 502),
    (errors.UnavailableError, 503),
)


def status_for(exc: errors.DomainError) -> int:
    for family, status in STATUS_BY_FAMILY:
        if isinstance(exc, family):
            return status
    return 400


def problem_response(
    *,
    status: int,
    code: str,
    detail: str,
    title: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False, default=json_default),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


def from_domain_error(exc: errors.DomainError, instance: str | None) -> web.Response:
    """The problem document for a domain error."""
    status = status_for(exc)
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = f'{getattr(exc, "scheme", "Bearer")} realm="huimin"'
    extra = dict(exc.extra)
    if isinstance(exc, errors.ValidationFailedError) and exc.errors:
        extra["errors"] = exc.errors
    return problem_response(
        status=status, code=exc.code, detail=exc.detail, title=exc.title, instance=instance, headers=headers, **extra
    )


# aiohttp's own HTTP errors (no route, wrong method, body too large) in our format.
HTTP_EXCEPTION_CODES = {
    404: ("not_found", "No resource at this address."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("payload_too_large", "The request body is too large."),
    400: ("bad_request", "The request could not be understood."),
    414: (
        "uri_too_long",
        "The address (path and query string) is longer than 8192 bytes; send fewer values "
        "(Open311: at most 200 service_request_id values per request).",
    ),
    431: ("header_too_large", "A request header is longer than 16384 bytes."),
}


# Per app: fixed (template-free) address -> the methods routed to it. Built on first use,
# once the router is frozen.
_FIXED: weakref.WeakKeyDictionary[web.Application, dict[str, frozenset[str]]] = weakref.WeakKeyDictionary()


def fixed_methods(app: web.Application, path: str) -> frozenset[str] | None:
    """The methods of the fixed resource at exactly ``path`` (e.g. ``/api/v1/elders/import``), if any."""
    table = _FIXED.get(app)
    if table is None:
        table = {}
        for resource in app.router.resources():
            fixed = resource.get_info().get("path")
            if fixed is not None:
                table[fixed] = table.get(fixed, frozenset()) | {route.method for route in resource}
        _FIXED[app] = table
    return table.get(path)


def check_fixed_address(request: web.Request) -> None:
    """A fixed address answers only its own methods: 405, not the template behind it.

    ``GET /api/v1/stations/import`` would otherwise match ``/api/v1/stations/{id}`` and answer
    404 for a station called "import", although that address exists and takes POST only.
    """
    resource = request.match_info.route.resource
    if request.match_info.http_exception is not None or resource is None or resource.get_info().get("path"):
        return
    methods = fixed_methods(request.app, request.path)
    if methods and request.method not in methods:
        raise web.HTTPMethodNotAllowed(request.method, sorted(methods))


def allow_header(request: web.Request, exc: web.HTTPException) -> dict[str, str]:
    """``Allow`` for a 405 (RFC 9110): the methods this address really answers.

    aiohttp unions the methods of every resource whose pattern matches, so a fixed address
    such as ``/api/v1/elders/import`` would also list the methods of ``/api/v1/elders/{elder_id}``,
    although those never reach it. A fixed resource at exactly this path decides alone.
    """
    if exc.status != 405 or not isinstance(exc, web.HTTPMethodNotAllowed):
        return {}
    methods = fixed_methods(request.app, request.path) or frozenset(exc.allowed_methods)
    return {"Allow": ", ".join(sorted(methods))}


def from_http_exception(
    exc: web.HTTPException, instance: str | None, request: web.Request, *, max_body_bytes: int | None = None
) -> web.Response:
    """The problem document for one of aiohttp's own errors; a 413 names the ``limit`` in bytes."""
    code, detail = HTTP_EXCEPTION_CODES.get(exc.status, ("http_error", exc.reason))
    headers = allow_header(request, exc)
    limit = max_body_bytes if exc.status == 413 else None
    if limit is not None:
        detail = f"The request body is larger than {limit} bytes."
    return problem_response(
        status=exc.status, code=code, detail=detail, instance=instance, headers=headers, limit=limit
    )
