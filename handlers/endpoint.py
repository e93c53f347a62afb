"""Per-route metadata: who may call it, what it reads and returns.

Every handler is decorated with ``@endpoint(...)``. The auth middleware reads ``public``,
``roles`` and ``scopes`` from it; the OpenAPI generator reads everything else; the
authorization-matrix test walks the route table and fails on a route without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web
from marshmallow import Schema

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BodyKind = Literal["json", "form", "multipart", "file", "none"]


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    summary: str
    tags: tuple[str, ...] = ()
    description: str = ""
    body: Schema | None = None
    body_kind: BodyKind = "json"
    # A request body that works as shipped ("Try it out" in /docs sends it).
    body_example: dict[str, Any] | None = None
    # For body_kind "file": the media types a whole-file body may have (e.g. text/csv).
    body_media_types: tuple[str, ...] = ()
    # The JSON body may be left out; the OpenAPI document then marks it required only when
    # the body schema has a required field.
    body_optional: bool = False
    query: Schema | None = None
    response: Schema | None = None
    status: int = 200
    response_content_type: str = "application/json"
    public: bool = False
    roles: frozenset[str] | None = None  # None: any authenticated principal
    scopes: tuple[str, ...] = ()  # integrator tokens must hold all of these
    problems: tuple[int, ...] = ()
    operation_id: str | None = None
    idempotent_create: bool = False  # honours Idempotency-Key
    include_in_schema: bool = True
    # Errors in another form than RFC 9457 problem documents (Open311's error list): their schema.
    error_schema: Schema | None = None
    # Other media types the path may select for the same answers (e.g. Open311's text/xml).
    alt_content_types: tuple[str, ...] = ()
    # Also accept the access token as ``?access_token=`` (only for EventSource streams,
    # which cannot send an Authorization header).
    token_in_query: bool = False
    # A handler that hands ``request[REVOCATION_CHECK]`` to the service, which awaits it after its
    # first read and before it discloses, records or writes anything: the token's revocation check
    # (a Redis round trip) runs while the data is read. Only for handlers whose service does so
    # (case reads and lists; case actions, which await it before their conditional write).
    overlaps_revocation: bool = False
    # Bulk imports and exports: the request deadline is HUIMIN_LONG_REQUEST_DEADLINE_SECONDS
    # instead of HUIMIN_REQUEST_DEADLINE_SECONDS (handlers/deadline.py).
    long_running: bool = False


def endpoint(
    summary: str,
    *,
    roles: tuple[str, ...] | None = None,
    **kwargs: Any,
) -> Callable[[Handler], Handler]:
    """Attach :class:`Endpoint` metadata to a handler."""
    meta = Endpoint(summary=summary, roles=frozenset(roles) if roles is not None else None, **kwargs)

    def decorate(fn: Handler) -> Handler:
        fn.__endpoint__ = meta  # type: ignore[attr-defined]
        return fn

    return decorate


def endpoint_of(handler: Any) -> Endpoint | None:
    """The metadata of a matched handler (functions and class-based views)."""
    return getattr(handler, "__endpoint__", None)
