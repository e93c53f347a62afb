"""Idempotency-Key on creating POSTs: the HTTP side of service.idempotency.service.

    data = await read_json(request, CaseCreateSchema())

    async def create() -> tuple[int, dict]:
        case = await submit_case(ctx=request.app[CTX], principal=principal_of(request), data=data)
        return 201, CaseSchema().dump(case)

    return await idempotent_json(request, body=data, operation=create)

Mark such routes ``@endpoint(..., idempotent_create=True)`` so the OpenAPI document lists
the header.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from handlers.io import json_response
from handlers.keys import CTX, SENT_JSON
from handlers.middlewares import principal_of
from service.idempotency.service import run_idempotent

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotency-Replayed"
_NOT_SENT = object()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return value


def request_fingerprint(request: web.Request, body: Any) -> str:
    """sha256 of method, route and the canonical JSON of the body as sent (``body``, the loaded one,
    when it came in another form than JSON): defaults a schema fills in are not part of it, so a
    retry sent again after an upgrade that changed one still replays."""
    sent = request.get(SENT_JSON, _NOT_SENT)
    canonical = json.dumps(
        _plain(body if sent is _NOT_SENT else sent),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    material = f"{request.method}\n{request.path}\n{canonical}".encode()
    return hashlib.sha256(material).hexdigest()


async def idempotent_json(
    request: web.Request,
    *,
    body: Any,
    operation: Callable[[], Awaitable[tuple[int, dict[str, Any]]]] | None = None,
    create: Callable[[str], Awaitable[tuple[int, dict[str, Any]]]] | None = None,
) -> web.Response:
    """Run ``operation`` under the request's Idempotency-Key and answer with its JSON result.

    ``create`` instead of ``operation`` is given the id the new resource gets, the same for
    every retry with the key (service.idempotency.service).
    """
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    status, payload, replayed = await run_idempotent(
        ctx=request.app[CTX],
        principal=principal_of(request),
        key=key,
        # Only a keyed request is compared with an earlier one; without a key nothing reads it.
        fingerprint=request_fingerprint(request, body) if key is not None else "",
        operation=operation,
        create=create,
    )
    headers = {REPLAYED_HEADER: "true"} if replayed else None
    return json_response(None, payload, status=status, headers=headers)
