"""The error model: every failure leaves as an RFC 9457 problem document with a stable code.

The routes here are added to the real app (create_app) before it starts, so the real
middlewares and body readers run; nothing is mocked.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from marshmallow import Schema, fields

from config import Settings
from handlers.endpoint import endpoint
from handlers.io import json_response, read_json
from run import create_app

PROBE = "/api/v1/_probe"
CRASH = "/api/v1/_crash"
JSON = {"Content-Type": "application/json"}


class ProbeItemSchema(Schema):
    label = fields.String(required=True)


class ProbeSchema(Schema):
    name = fields.String(required=True, metadata={"description": "a name"})
    age = fields.Integer()
    entries = fields.List(fields.Nested(ProbeItemSchema))
    meta = fields.Dict()


@endpoint("Echo a validated body", public=True, body=ProbeSchema(), response=ProbeSchema())
async def probe(request: web.Request) -> web.Response:
    data = await read_json(request, ProbeSchema())
    return json_response(ProbeSchema(), data)


@endpoint("Fail unexpectedly", public=True)
async def crash(request: web.Request) -> web.Response:
    raise RuntimeError("secret connection string mongodb://admin:hunter2@db")


@pytest.fixture
async def probe_client(aiohttp_client: Any, settings: Settings) -> AsyncIterator[Any]:
    app = create_app(settings.replace(max_json_bytes=2048))
    app.router.add_post(PROBE, probe)
    app.router.add_get(CRASH, crash)
    yield await aiohttp_client(app)


async def assert_problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    """The response is a complete problem document with this status and code."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"] == f"/problems/{code}"
    for member in ("title", "detail", "instance"):
        assert isinstance(body[member], str) and body[member], member
    assert resp.headers.get("X-Request-ID")
    return body


async def test_valid_body_passes_through(probe_client: Any) -> None:
    resp = await probe_client.post(PROBE, json={"name": "张三", "age": 70, "entries": [{"label": "a"}]})
    assert resp.status == 200
    assert await resp.json() == {"name": "张三", "age": 70, "entries": [{"label": "a"}]}


async def test_malformed_json_is_400_malformed_json(probe_client: Any) -> None:
    resp = await probe_client.post(PROBE, data=b'{"name": ', headers=JSON)
    body = await assert_problem(resp, 400, "malformed_json")
    assert body["instance"] == PROBE


async def test_body_that_is_not_utf8_is_400_malformed_json(probe_client: Any) -> None:
    resp = await probe_client.post(PROBE, data=b'{"name": "\xff\xfe"}', headers=JSON)
    await assert_problem(resp, 400, "malformed_json")


async def test_wrong_content_type_is_415(probe_client: Any) -> None:
    resp = await probe_client.post(PROBE, data=b'{"name": "a"}', headers={"Content-Type": "text/plain"})
    await assert_problem(resp, 415, "unsupported_media_type")


async def test_form_body_on_a_json_route_is_415(probe_client: Any) -> None:
    resp = await probe_client.post(PROBE, data={"name": "a"})
    await assert_problem(resp, 415, "unsupported_media_type")


async def test_empty_body_is_400_empty_body(probe_client: Any) -> None:
    resp = await probe_client.post(PROBE, data=b"", headers=JSON)
    await assert_problem(resp, 400, "empty_body")


@pytest.mark.parametrize("payload", ["[1, 2]", '"text"', "42", "null"])
async def test_json_that_is_not_an_object_is_400(probe_client: Any, payload: str) -> None:
    resp = await probe_client.post(PROBE, data=payload.encode(), headers=JSON)
    await assert_problem(resp, 400, "json_object_expected")


async def test_unknown_fields_are_422_unknown_field_with_errors(probe_client: Any) -> None:
    resp = await probe_client.post(PROBE, json={"name": "a", "is_admin": True, "role": "admin"})
    body = await assert_problem(resp, 422, "unknown_field")
    assert body["errors"] == {"is_admin": ["Unknown field."], "role": ["Unknown field."]}


async def test_wrong_types_are_422_validation_failed_per_field(probe_client: Any) -> None:
    resp = await probe_client.post(PROBE, json={"name": 5, "age": "old", "entries": [{"label": 1}]})
    body = await assert_problem(resp, 422, "validation_failed")
    errors = body["errors"]
    assert set(errors) == {"name", "age", "entries"}
    assert errors["name"] == ["Not a valid string."]
    assert errors["age"] == ["Not a valid integer."]
    assert errors["entries"] == {"0": {"label": ["Not a valid string."]}}


async def test_missing_required_field_is_422_validation_failed(probe_client: Any) -> None:
    resp = await probe_client.post(PROBE, json={"age": 3})
    body = await assert_problem(resp, 422, "validation_failed")
    assert body["errors"] == {"name": ["Missing data for required field."]}


async def test_oversize_body_with_content_length_is_413(probe_client: Any) -> None:
    big = json.dumps({"name": "x" * 4096}).encode()
    resp = await probe_client.post(PROBE, data=big, headers=JSON)
    body = await assert_problem(resp, 413, "payload_too_large")
    assert body["limit"] == 2048


async def test_oversize_chunked_body_is_413(probe_client: Any) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(8):
            yield b"x" * 512
        yield b'"}'

    resp = await probe_client.post(PROBE, data=chunks(), headers=JSON)
    assert "Content-Length" not in resp.request_info.headers
    assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
    await assert_problem(resp, 413, "payload_too_large")


async def test_body_limit_follows_settings(aiohttp_client: Any, settings: Settings) -> None:
    app = create_app(settings.replace(max_json_bytes=100_000))
    app.router.add_post(PROBE, probe)
    client = await aiohttp_client(app)
    resp = await client.post(PROBE, json={"name": "x" * 4096})
    assert resp.status == 200


async def test_deeply_nested_json_is_400_too_deeply_nested(probe_client: Any) -> None:
    nested = "[" * 40 + "]" * 40
    resp = await probe_client.post(PROBE, data=f'{{"name": "a", "meta": {{"x": {nested}}}}}'.encode(), headers=JSON)
    await assert_problem(resp, 400, "too_deeply_nested")


async def test_pathologically_nested_json_is_400_not_500(aiohttp_client: Any, settings: Settings) -> None:
    app = create_app(settings.replace(max_json_bytes=100_000))
    app.router.add_post(PROBE, probe)
    client = await aiohttp_client(app)
    # Deep enough that the JSON parser itself gives up (RecursionError), not only our check.
    resp = await client.post(PROBE, data=b"[" * 40_000 + b"]" * 40_000, headers=JSON)
    await assert_problem(resp, 400, "too_deeply_nested")


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"name": "a", "$where": "1"}, "$where"),
        ({"name": {"$ne": None}}, "name.$ne"),
        ({"name": "a", "meta": {"x": [{"y": {"$gt": 1}}]}}, "meta.x[0].y.$gt"),
    ],
)
async def test_operator_keys_at_any_depth_are_400(probe_client: Any, payload: dict[str, Any], where: str) -> None:
    resp = await probe_client.post(PROBE, json=payload)
    body = await assert_problem(resp, 400, "operator_not_allowed")
    assert body["field"] == where


async def test_unknown_route_is_404_problem(probe_client: Any) -> None:
    resp = await probe_client.post("/api/v1/_no_such_route", json={"name": "a"})
    await assert_problem(resp, 404, "not_found")


async def test_wrong_method_is_405_with_allow(probe_client: Any) -> None:
    resp = await probe_client.get(PROBE)
    await assert_problem(resp, 405, "method_not_allowed")
    assert resp.headers["Allow"] == "POST"


async def test_unexpected_exception_is_500_without_internals(probe_client: Any, caplog: Any) -> None:
    resp = await probe_client.get(CRASH, headers={"X-Request-ID": "trace-me-1"})
    body = await assert_problem(resp, 500, "internal_error")
    text = json.dumps(body)
    assert "Traceback" not in text and "hunter2" not in text and "RuntimeError" not in text
    assert body["request_id"] == "trace-me-1" == resp.headers["X-Request-ID"]
    assert any("unhandled error" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_request_id_is_echoed_when_sane(probe_client: Any) -> None:
    resp = await probe_client.post(PROBE, json={"name": "a"}, headers={"X-Request-ID": "req.42:abc-DEF_1"})
    assert resp.headers["X-Request-ID"] == "req.42:abc-DEF_1"
    problem = await probe_client.post(PROBE, data=b"{", headers={**JSON, "X-Request-ID": "req-43"})
    assert problem.headers["X-Request-ID"] == "req-43"


async def test_request_id_is_generated_when_missing(probe_client: Any) -> None:
    first = await probe_client.post(PROBE, json={"name": "a"})
    second = await probe_client.post(PROBE, json={"name": "a"})
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "<script>", "a\tb", "é"])
async def test_invalid_incoming_request_id_is_replaced(probe_client: Any, bad: str) -> None:
    resp = await probe_client.post(PROBE, json={"name": "a"}, headers={"X-Request-ID": bad})
    assert resp.status == 200
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-ID"])
