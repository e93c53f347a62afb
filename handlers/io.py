"""Reading request bodies and queries safely, writing JSON responses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

from aiohttp import web
from marshmallow import Schema

from handlers.keys import CTX
from service.errors import BadRequestError, PayloadTooLargeError, RequestTimeoutError, UnsupportedMediaTypeError
from service.timestamps import json_default

T = TypeVar("T")
MAX_DEPTH = 32
JSON_TYPES = ("application/json",)


def _check_keys(value: Any, path: str = "", depth: int = 0) -> None:
    """Refuse `$`-prefixed keys anywhere (they would be query operators) and deep nesting."""
    if depth > MAX_DEPTH:
        raise BadRequestError("too_deeply_nested", f"The JSON body is nested deeper than {MAX_DEPTH} levels.")
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("$") or "\x00" in key:
                where = f"{path}.{key}" if path else key
                raise BadRequestError(
                    "operator_not_allowed", f"Field names may not start with '$' (found {where!r}).", field=where
                )
            _check_keys(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_keys(item, f"{path}[{i}]", depth + 1)


def body_timeout_error(seconds: float) -> RequestTimeoutError:
    """The error for a client that stopped sending its body."""
    return RequestTimeoutError("request_timeout", f"The request body did not arrive within {seconds:g} seconds.")


async def within_body_timeout(request: web.Request, reading: Awaitable[T]) -> T:
    """Await a read of the body (a form, the raw bytes) within the body read timeout; 408 after."""
    seconds = request.app[CTX].settings.body_read_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            return await reading
    except TimeoutError:
        raise body_timeout_error(seconds) from None


async def read_body(request: web.Request, *, limit: int, what: str = "JSON body") -> bytes:
    """The whole body, at most ``limit`` bytes, within the body read timeout (a trickling client gets 408)."""
    seconds = request.app[CTX].settings.body_read_timeout_seconds
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.content.iter_chunked(65536):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLargeError(
                        "payload_too_large", f"The {what} is larger than {limit} bytes.", limit=limit
                    )
                chunks.append(chunk)
    except TimeoutError:
        raise body_timeout_error(seconds) from None
    return b"".join(chunks)


def _sent_no_body(request: web.Request) -> bool:
    """True when the request carries no body at all (none announced, or an announced length of 0)."""
    return not request.body_exists or request.content_length == 0


async def read_raw_json(request: web.Request, *, body_optional: bool = False) -> Any:
    """Parse a JSON body after checking content type, size, nesting and `$` keys.

    With ``body_optional``, a request without a body (or with an empty one) reads as ``{}``.
    """
    if body_optional and _sent_no_body(request):
        return {}
    if request.content_type not in JSON_TYPES:
        raise UnsupportedMediaTypeError(
            "unsupported_media_type", f"Send the body as application/json (got {request.content_type or 'nothing'})."
        )
    limit = request.app[CTX].settings.max_json_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError("payload_too_large", f"The JSON body is larger than {limit} bytes.", limit=limit)
    raw = await read_body(request, limit=limit)
    if not raw.strip():
        if body_optional:
            return {}
        raise BadRequestError("empty_body", "The request body is empty; a JSON object is expected.")
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise BadRequestError("malformed_json", "The body is not valid UTF-8.") from None
    except json.JSONDecodeError as exc:
        raise BadRequestError(
            "malformed_json", f"The body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except RecursionError:
        raise BadRequestError("too_deeply_nested", "The JSON body is nested too deeply.") from None
    _check_keys(data)
    return data


async def read_json(request: web.Request, schema: Schema, *, body_optional: bool = False) -> Any:
    """Load the JSON body through ``schema`` (unknown fields are refused).

    ``body_optional``: no body at all reads as ``{}`` (for operations whose fields are all
    optional; one with required fields then answers 422 naming them).
    """
    data = await read_raw_json(request, body_optional=body_optional)
    if not isinstance(data, dict):
        raise BadRequestError("json_object_expected", "The body must be a JSON object.")
    return schema.load(data)


def read_query(request: web.Request, schema: Schema) -> Any:
    """Load the query string through ``schema``; repeated keys become lists."""
    data: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        data[key] = values if len(values) > 1 else values[0]
    return schema.load(data)


def dumps(body: Any) -> str:
    """JSON text as the API writes it (UTF-8 Chinese kept readable)."""
    return json.dumps(body, ensure_ascii=False, default=json_default)


def json_response(
    schema: Schema | None, obj: Any, *, status: int = 200, many: bool = False, headers: dict[str, str] | None = None
) -> web.Response:
    """Dump ``obj`` through ``schema`` (or as-is) into a JSON response."""
    body = schema.dump(obj, many=many) if schema is not None else obj
    return web.Response(
        status=status,
        text=dumps(body),
        content_type="application/json",
        headers=headers,
    )
