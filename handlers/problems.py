"""RFC 9457 problem documents: the one table from error family to HTTP status."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aiohttp import web

from service import errors
from service.timestamps import json_default

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


def from_http_exception(
    exc: web.HTTPException, instance: str | None, *, max_body_bytes: int | None = None
) -> web.Response:
    """The problem document for one of aiohttp's own errors; a 413 names the ``limit`` in bytes."""
    code, detail = HTTP_EXCEPTION_CODES.get(exc.status, ("http_error", exc.reason))
    headers = {}
    if exc.status == 405 and isinstance(exc, web.HTTPMethodNotAllowed):
        headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
    limit = max_body_bytes if exc.status == 413 else None
    if limit is not None:
        detail = f"The request body is larger than {limit} bytes."
    return problem_response(
        status=exc.status, code=code, detail=detail, instance=instance, headers=headers, limit=limit
    )
