"""Reading request bodies and queries safely, writing JSON responses."""

from __future__ import annotations

import asyncio
import codecs
import copy
from collections.abc import Awaitable
from datetime import date, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from aiohttp import web
from marshmallow import Schema, ValidationError

from handlers.deadline import deadline_paused
from handlers.keys import CTX, SENT_JSON
from service.common.errors import (
    BadRequestError,
    PayloadTooLargeError,
    RequestTimeoutError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from service.common.text import MAX_JSON_DEPTH, check_text, parse_json_text
from service.common.timestamps import json_default

T = TypeVar("T")
JSON_TYPES = ("application/json",)


def _check_keys(value: Any, path: str = "", depth: int = 0) -> None:
    """Refuse `$`-prefixed keys anywhere (they would be query operators) and deep nesting."""
    if depth > MAX_JSON_DEPTH:
        raise BadRequestError("too_deeply_nested", f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.")
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
        with deadline_paused(request):
            async with asyncio.timeout(seconds):
                return await reading
    except TimeoutError:
        raise body_timeout_error(seconds) from None


async def read_body(request: web.Request, *, limit: int, what: str = "JSON body") -> bytes:
    """The whole body, at most ``limit`` bytes, within the body read timeout (a trickling client gets 408)."""
    content = request.content
    if content.is_eof():
        # The whole body came in with the request (most JSON bodies): no waiting, so no timeout.
        raw = content.read_nowait()
        if len(raw) > limit:
            raise PayloadTooLargeError("payload_too_large", f"The {what} is larger than {limit} bytes.", limit=limit)
        return raw
    seconds = request.app[CTX].settings.body_read_timeout_seconds
    chunks: list[bytes] = []
    size = 0
    try:
        with deadline_paused(request):
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
        request[SENT_JSON] = {}
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
            request[SENT_JSON] = {}
            return {}
        raise BadRequestError("empty_body", "The request body is empty; a JSON object is expected.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequestError("malformed_json", "The body is not valid UTF-8.") from None
    data = parse_json_text(text)
    _check_keys(data)
    check_text(data)  # characters no answer format (JSON, XML, BSON) could carry
    request[SENT_JSON] = data
    return data


PROBLEM_CODE = "problem_code"  # field metadata: the problem code when only such fields fail


def load(schema: Schema, data: Any) -> Any:
    """``schema.load``; when every failing field names the same ``problem_code`` in its metadata,
    the 422 carries that code (``invalid_station``, ``unknown_method``) rather than
    ``validation_failed``, as when the service found the same fault."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {}
        codes = {
            (schema.fields[name].metadata.get(PROBLEM_CODE) if name in schema.fields else None) for name in messages
        }
        code = codes.pop() if len(codes) == 1 else None
        if not code:
            raise
        raise ValidationFailedError(code, "Some fields are invalid; see errors.", errors=messages) from None


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _form_text_error() -> BadRequestError:
    return BadRequestError("malformed_form", "The form is not valid text in its declared charset (UTF-8 by default).")


async def read_form(request: web.Request, *, limit: int) -> dict[str, list[str]]:
    """A form body's text fields by name, decoded strictly (a byte that is not text is 400, never replaced).

    ``application/x-www-form-urlencoded`` is read here, at most ``limit`` bytes, in the
    charset the Content-Type names (UTF-8 when it names none); ``multipart/form-data``
    through aiohttp, keeping its text parts. Values holding characters no answer format
    could carry are refused (``invalid_character``).
    """
    if request.content_type not in FORM_TYPES:
        raise UnsupportedMediaTypeError(
            "unsupported_media_type", "Send the request as application/x-www-form-urlencoded."
        )
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError("payload_too_large", f"The form is larger than {limit} bytes.", limit=limit)
    charset = request.charset or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        raise UnsupportedMediaTypeError("unsupported_charset", f"The charset {charset!r} is not known.") from None
    if request.content_type == "multipart/form-data" and "boundary=" not in request.headers.get("Content-Type", ""):
        raise BadRequestError("malformed_body", "A multipart/form-data body needs a boundary parameter.")
    fields: dict[str, list[str]] = {}
    try:
        if request.content_type == "multipart/form-data":
            form = await within_body_timeout(request, request.post())
            for key in form:
                fields[key] = [v for v in form.getall(key) if isinstance(v, str)]
        else:
            raw = await read_body(request, limit=limit, what="form")
            text = raw.decode(charset)
            for key, value in parse_qsl(text, keep_blank_values=True, encoding=charset, errors="strict"):
                fields.setdefault(key, []).append(value)
    except (UnicodeDecodeError, ValueError):
        raise _form_text_error() from None
    for key, values in fields.items():
        check_text(key, key, what="form field name")
        for value in values:
            check_text(value, key, what="form field")
    return fields


async def read_json(request: web.Request, schema: Schema, *, body_optional: bool = False) -> Any:
    """Load the JSON body through ``schema`` (unknown fields are refused).

    ``body_optional``: no body at all reads as ``{}`` (for operations whose fields are all
    optional; one with required fields then answers 422 naming them).
    """
    return load_json_object(schema, await read_raw_json(request, body_optional=body_optional))


def load_json_object(schema: Schema, data: Any) -> Any:
    """A parsed JSON body loaded through ``schema``; 400 ``json_object_expected`` unless it is an object."""
    if not isinstance(data, dict):
        raise BadRequestError("json_object_expected", "The body must be a JSON object.")
    return load(schema, data)


def read_query(request: web.Request, schema: Schema) -> Any:
    """Load the query string through ``schema``; repeated keys become lists.

    An empty parameter (``?service=``) is refused with 422 rather than read as "any" or as
    "absent": leave it out instead. The OpenAPI document says so (``minLength: 1``).
    """
    data: dict[str, Any] = {}
    empty: dict[str, list[str]] = {}
    for key in dict.fromkeys(request.query):
        values = request.query.getall(key)
        if "" in values:
            empty[key] = ["Must not be empty; leave the parameter out instead."]
        data[key] = values if len(values) > 1 else values[0]
    if empty:
        raise ValidationError(empty)
    return load(schema, data)


class QueryReader:
    """``read_query`` for one schema whose load is a pure function of the query string (fixed
    defaults, fixed validators): each query string is loaded once and remembered (the last
    ``kept``), and every caller gets its own copy. A query that fails to load is not remembered.

    The same list or case read asked again (a console refreshing its queue) skips marshmallow.
    """

    def __init__(self, schema: Schema, *, kept: int = 256) -> None:
        self.schema = schema
        self.kept = kept
        self._loaded: dict[str, Any] = {}

    def __call__(self, request: web.Request) -> Any:
        key = request.query_string
        loaded = self._loaded.get(key, _NOT_LOADED)
        if loaded is _NOT_LOADED:
            loaded = read_query(request, self.schema)
            while len(self._loaded) >= self.kept:
                del self._loaded[next(iter(self._loaded))]
            self._loaded[key] = loaded
        return _copy_of(loaded)


_NOT_LOADED = object()


def _copy_of(value: Any) -> Any:
    """A copy of a loaded query that shares nothing a caller could change: its dicts, lists and
    sets are copied, everything else a query loads to (text, numbers, times, None) cannot change.
    (``copy.deepcopy`` gives the same for a tenth of the speed: this runs on every list request.)"""
    kind = type(value)
    if kind is dict:
        return {key: _copy_of(item) for key, item in value.items()}
    if kind is list:
        return [_copy_of(item) for item in value]
    if kind is set:
        return {_copy_of(item) for item in value}
    if kind in _UNCHANGING:
        return value
    return copy.deepcopy(value)


_UNCHANGING = frozenset({str, int, float, bool, type(None), datetime, date, bytes})


# orjson (about a tenth of json.dumps' time for a page of cases); dates, times and dataclasses
# go through json_default as before (RFC 3339 times with milliseconds, dataclasses as text),
# non-string keys become strings as json.dumps makes them.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS


def dumps(body: Any) -> bytes:
    """JSON as the API writes it: UTF-8 (Chinese kept readable), compact."""
    return orjson.dumps(body, default=json_default, option=_ORJSON_OPTIONS)


def json_response(
    schema: Schema | None, obj: Any, *, status: int = 200, many: bool = False, headers: dict[str, str] | None = None
) -> web.Response:
    """Dump ``obj`` through ``schema`` (or as-is) into a JSON response."""
    body = schema.dump(obj, many=many) if schema is not None else obj
    return web.Response(
        status=status,
        body=dumps(body),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )
