"""Request id, error-to-problem translation, metrics and authentication."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import re
import time
import uuid
from urllib.parse import unquote_to_bytes

from aiohttp import web, web_protocol, web_response
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from marshmallow import ValidationError

from handlers import problems
from handlers.endpoint import Endpoint, endpoint_of
from handlers.keys import CTX, ERROR_TRANSLATOR, METRICS, PRINCIPAL, REQUEST_ID, REVOCATION_CHECK
from service.common.errors import AuthenticationError, BadRequestError, DomainError, PermissionDeniedError
from service.common.models import Principal
from service.common.text import check_text
from service.identity import rate_limits, tokens

log = logging.getLogger("huimin.http")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

from aiohttp.typedefs import Handler  # noqa: E402


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Take X-Request-ID from the caller when it is sane, else make one; echo it back."""
    incoming = request.headers.get("X-Request-ID", "")
    rid = incoming if incoming and _VALID_REQUEST_ID.match(incoming) else os.urandom(16).hex()
    request[REQUEST_ID] = rid
    token = request_id_var.set(rid)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers["X-Request-ID"] = rid
        raise
    finally:
        request_id_var.reset(token)
    response.headers["X-Request-ID"] = rid
    return response


def _validation_problem(exc: ValidationError, instance: str) -> web.Response:
    messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    flat = [m for v in messages.values() for m in (v if isinstance(v, list) else [v])]
    if flat and all(m == "Unknown field." for m in flat):
        return problems.problem_response(
            status=422,
            code="unknown_field",
            instance=instance,
            errors=messages,
            detail="The request has fields this operation does not accept: " + ", ".join(sorted(map(str, messages))),
        )
    return problems.problem_response(
        status=422,
        code="validation_failed",
        instance=instance,
        errors=messages,
        detail="Some fields are missing or invalid; see errors.",
    )


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as an RFC 9457 problem document; nothing leaks a traceback."""
    instance = request.path
    try:
        problems.check_fixed_address(request)
        return await handler(request)
    except DomainError as exc:
        return problems.from_domain_error(exc, instance)
    except ValidationError as exc:
        return _validation_problem(exc, instance)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problems.from_http_exception(exc, instance, request, max_body_bytes=request.client_max_size)
    except HttpProcessingError as exc:
        # A body the parser could not read (e.g. a multipart part with a malformed header) is the
        # caller's fault, not ours: answer 400 with aiohttp's own reason.
        if not 400 <= exc.code < 500:
            raise
        return problems.problem_response(
            status=400, code="malformed_body", instance=instance, detail=f"The request body is malformed: {exc.message}"
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        translated = request.app[ERROR_TRANSLATOR](exc)
        if translated is not None:
            log.warning("backing store unavailable: %s", type(exc).__name__)
            return problems.from_domain_error(translated, instance)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problems.problem_response(
            status=500,
            code="internal_error",
            instance=instance,
            detail="Something went wrong on our side; it has been logged. Quote the request id when reporting it.",
            request_id=request.get(REQUEST_ID),
        )


# The longest request target (path and query) answered in the route's own error format; a
# longer one is 414. The HTTP parser reads lines up to MAX_REQUEST_LINE_BYTES, so targets
# between the two still reach this check (and Open311 callers get Open311's error list).
MAX_TARGET_BYTES = 8192
MAX_REQUEST_LINE_BYTES = 65536
MAX_HEADER_FIELD_BYTES = 16384


@web.middleware
async def request_target_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse over-long addresses and query strings that are not clean UTF-8 text, before authentication.

    Runs inside the problem and Open311 error middlewares, so the refusal has the route's
    error format; it never repeats the address back (it may hold an ``api_key``).
    """
    if len(request.raw_path) > MAX_TARGET_BYTES:
        raise web.HTTPRequestURITooLong()
    raw_query = request.raw_path.partition("?")[2]
    if raw_query:
        check_query_text(raw_query)
    return await handler(request)


def check_query_text(raw_query: str) -> None:
    """The query string decodes as UTF-8 without loss, and no value holds a control character."""
    for pair in raw_query.split("&"):
        name, _, value = pair.partition("=")
        try:
            name_text = unquote_to_bytes(name.replace("+", " ")).decode("utf-8")
            value_text = unquote_to_bytes(value.replace("+", " ")).decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequestError("malformed_query", "The query string is not valid UTF-8 once decoded.") from None
        check_text(name_text, name_text, what="query parameter name")
        check_text(value_text, name_text, what="query parameter")


def _route_label(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count requests and time them by route template and status."""
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics = request.app.get(METRICS)
        if metrics is not None:
            metrics.observe(request.method, _route_label(request), status, time.perf_counter() - start)


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Verify the bearer token and apply the route's coarse role and scope rules."""
    meta = endpoint_of(request.match_info.handler)
    if request.match_info.http_exception is not None:
        return await handler(request)
    token = bearer_token(request)
    if token is None and meta is not None and meta.token_in_query:
        token = request.query.get("access_token", "").strip() or None
    if meta is not None and meta.public:
        if token:
            with contextlib.suppress(AuthenticationError):  # a public route works without a valid token
                request[PRINCIPAL] = await tokens.authenticate(ctx=request.app[CTX], token=token)
            await _limit_rate(request)
        return await handler(request)
    if not token:
        raise AuthenticationError("authentication_required", "This operation needs a bearer access token.")
    if meta is not None and meta.overlaps_revocation:
        return await _read_while_revocation_is_checked(request, handler, meta, token)
    principal, revocation = tokens.start_authentication(ctx=request.app[CTX], token=token)
    if principal.is_client:
        await _limit_rate_while_revocation_is_checked(request, principal, revocation)
    else:
        await revocation
    request[PRINCIPAL] = principal
    if meta is None:
        raise PermissionDeniedError("forbidden", "This operation has no access rule and is closed.")
    check_access(principal, roles=meta.roles, scopes=meta.scopes)
    return await handler(request)


async def _read_while_revocation_is_checked(
    request: web.Request, handler: Handler, meta: Endpoint, token: str
) -> web.StreamResponse:
    """The auth middleware for a request whose first read starts while its token's revocation is checked.

    The handler's service awaits ``request[REVOCATION_CHECK]`` before it discloses, records or
    writes anything; whatever happens, the check is awaited here too before an answer leaves,
    and a revoked token is answered ``token_revoked`` in place of any other answer or error.
    """
    principal, revocation = tokens.start_authentication(ctx=request.app[CTX], token=token)
    try:
        if principal.is_client:
            await _limit_rate_while_revocation_is_checked(request, principal, revocation)
        request[PRINCIPAL] = principal
        request[REVOCATION_CHECK] = revocation
        check_access(principal, roles=meta.roles, scopes=meta.scopes)
        response = await handler(request)
    except asyncio.CancelledError:
        revocation.cancel()
        raise
    except BaseException:
        await revocation
        raise
    await revocation
    return response


async def _limit_rate_while_revocation_is_checked(
    request: web.Request, principal: Principal, revocation: asyncio.Future[None]
) -> None:
    """Count an integrator's request against its limit while its token's revocation is checked.

    One round trip instead of two. A revoked token's request does not count: it is taken out of
    the window again and answered ``token_revoked`` (not 429), so a stolen, revoked token cannot
    use up its client's limit.
    """
    ctx = request.app[CTX]
    counting = asyncio.ensure_future(rate_limits.enforce_client_rate_limit(ctx=ctx, client_id=principal.subject))
    try:
        await revocation
    except asyncio.CancelledError:
        counting.cancel()
        raise
    except BaseException:
        try:
            counted = await counting
        except Exception:  # noqa: BLE001 - refused (nothing counted) or failed: the revocation answers
            counted = None
        await rate_limits.take_back_client_request(ctx=ctx, client_id=principal.subject, counted=counted)
        raise
    await counting


async def _limit_rate(request: web.Request) -> None:
    """Integrator clients are held to their per-minute request limit (429 over it)."""
    principal = request.get(PRINCIPAL)
    if principal is not None and principal.is_client:
        await rate_limits.enforce_client_rate_limit(ctx=request.app[CTX], client_id=principal.subject)


def check_access(principal: Principal, *, roles: frozenset[str] | None, scopes: tuple[str, ...]) -> None:
    """Raise PermissionDeniedError unless the role is allowed and a client holds the scopes."""
    if roles is not None and principal.role not in roles:
        raise PermissionDeniedError("role_not_allowed", f"The role {principal.role!r} may not use this operation.")
    if principal.is_client:
        missing = [s for s in scopes if not principal.has_scope(s)]
        if missing:
            raise PermissionDeniedError(
                "insufficient_scope", f"The client lacks the scope {missing[0]!r}.", required_scopes=list(scopes)
            )


def principal_of(request: web.Request) -> Principal:
    """The authenticated caller (the auth middleware guarantees it on non-public routes)."""
    p = request.get(PRINCIPAL)
    if p is None:
        raise AuthenticationError("authentication_required", "This operation needs a bearer access token.")
    return p


SERVER_NAME = "huimin"


def hide_server_version() -> None:
    """Name the server without its version on every response, including aiohttp's own.

    ``secure_headers`` covers responses to routed requests; a request the HTTP parser
    rejects (bad request line or header) never reaches the app's hooks, and aiohttp would
    answer it with ``Server: Python/3.x aiohttp/3.y``. Its default comes from this one module
    attribute, so set it once here (tests/security checks it with a malformed request).
    """
    web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined]


def _unreadable_request_answer(
    self: web_protocol.RequestHandler,
    request: web.BaseRequest,
    status: int = 500,
    exc: BaseException | None = None,
    message: str | None = None,
) -> web.StreamResponse:
    """aiohttp's answer to a request it could not parse or handle, as a problem document.

    aiohttp's own answer is plain text that repeats the start of the offending line (an
    over-long address repeats its query string, ``api_key`` included) and logs it. This
    answer names the fault only, and the log line says what kind of fault it was, never
    the line itself. The path is unknown here (the request was never parsed), so it is a
    problem document on every path, Open311's included.
    """
    if status >= 500:
        self.log_exception("Error handling request", exc_info=exc)
    else:
        log.warning("unreadable request refused", extra={"status": status, "fault": type(exc).__name__})
    if request.writer.output_size > 0:
        raise ConnectionError("Response is sent already, cannot send another response with the error message")
    if isinstance(exc, LineTooLong):
        status = 414 if exc.args[1:2] == (MAX_REQUEST_LINE_BYTES,) else 431
    if status >= 500:
        code, detail = "internal_error", "Something went wrong on our side; it has been logged."
    else:
        code, detail = problems.HTTP_EXCEPTION_CODES.get(status, problems.HTTP_EXCEPTION_CODES[400])
    response = problems.problem_response(status=status, code=code, detail=detail)
    response.headers.update({"Server": SERVER_NAME, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})
    response.headers["X-Request-ID"] = uuid.uuid4().hex
    response.force_close()
    return response


def answer_unreadable_requests_with_problems() -> None:
    """Make aiohttp answer requests it cannot parse (bad line, over-long address or header) with problems.

    The HTTP parser runs before any application hook, and aiohttp offers no setting for
    its error answer, so its one method is replaced, once per process. The limits it
    enforces are set in ``create_app`` (``handler_args``).
    """
    web_protocol.RequestHandler.handle_error = _unreadable_request_answer  # type: ignore[method-assign]


async def secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    """No server version on the wire; API answers carry personal data, so never cache them."""
    response.headers["Server"] = SERVER_NAME
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.path.startswith(("/api/", "/oauth/", "/open311/")):
        response.headers.setdefault("Cache-Control", "no-store")
