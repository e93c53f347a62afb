"""Hostile bodies and slow clients: oversize and deeply nested JSON, trickled bodies and heads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from config import Settings
from handlers.keys import CTX
from run import create_app
from tests.factories import Accounts, bearer_for, make_wechat_resident
from tests.security.routes import Route, all_routes, best_role

LIMIT = 4096
# Representative JSON routes: a public login, a resident's filing, an admin's write.
JSON_ROUTES = (
    ("/api/v1/auth/login", None),
    ("/api/v1/cases", "resident"),
    ("/api/v1/stations", "admin"),
)


@pytest.fixture
async def api(aiohttp_client: Any, settings: Settings) -> Any:
    """The app with small limits so hostile bodies are quick to send."""
    tight = settings.replace(max_json_bytes=LIMIT, body_read_timeout_seconds=0.5, keepalive_timeout_seconds=0.5)
    return await aiohttp_client(create_app(tight))


async def _headers(api: Any, settings: Settings, role: str | None) -> dict[str, str]:
    return await Accounts(api.app[CTX], settings).bearer(role) if role else {}


async def _problem(resp: Any) -> dict[str, Any]:
    assert resp.content_type == "application/problem+json", resp.content_type
    return dict(await resp.json())


@pytest.mark.parametrize(("path", "role"), JSON_ROUTES)
async def test_oversize_json_with_content_length_is_413(api: Any, settings: Settings, path: str, role: str) -> None:
    body = json.dumps({"username": "x" * (LIMIT + 10)})
    resp = await api.post(
        path, data=body, headers={**(await _headers(api, settings, role)), "Content-Type": "application/json"}
    )
    assert resp.status == 413
    problem = await _problem(resp)
    assert problem["code"] == "payload_too_large" and problem["limit"] == LIMIT


@pytest.mark.parametrize(("path", "role"), JSON_ROUTES)
async def test_oversize_chunked_json_is_cut_off_at_the_limit(
    api: Any, settings: Settings, path: str, role: str
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"username": "'
        for _ in range(16):
            yield b"x" * 1024  # no Content-Length: the limit is enforced while reading
        yield b'"}'

    resp = await api.post(
        path, data=chunks(), headers={**(await _headers(api, settings, role)), "Content-Type": "application/json"}
    )
    assert resp.status == 413
    problem = await _problem(resp)
    assert problem["code"] == "payload_too_large" and problem["limit"] == LIMIT


@pytest.mark.parametrize("depth", [40, 1500])  # 1500: past the JSON parser's own recursion limit
@pytest.mark.parametrize(("path", "role"), JSON_ROUTES)
async def test_deeply_nested_json_is_400(api: Any, settings: Settings, path: str, role: str, depth: int) -> None:
    body = '{"a": ' + "[" * depth + "]" * depth + "}"
    resp = await api.post(
        path, data=body, headers={**(await _headers(api, settings, role)), "Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert (await _problem(resp))["code"] == "too_deeply_nested"


async def _raw(api: Any, payload: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", api.server.port)
    writer.write(payload)
    await writer.drain()
    return reader, writer


def _parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


async def test_a_trickled_json_body_is_cut_off_with_408(api: Any) -> None:
    body = json.dumps({"username": "someone", "password": "secret-password"}).encode()
    reader, writer = await _raw(
        api,
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:10],
    )
    try:
        started = asyncio.get_running_loop().time()
        raw = await asyncio.wait_for(reader.read(4096), 5)
        elapsed = asyncio.get_running_loop().time() - started
    finally:
        writer.close()
    status, headers, payload = _parse(raw)
    assert status == 408
    assert headers["content-type"].startswith("application/problem+json")
    assert json.loads(payload)["code"] == "request_timeout"
    assert elapsed < 3


async def test_a_stalled_upload_is_cut_off_with_408(api: Any, settings: Settings) -> None:
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode() + b"\x89PNG\r\n\x1a\n"
    auth = bearer_for(settings, await make_wechat_resident(api.app[CTX]))["Authorization"]
    reader, writer = await _raw(
        api,
        b"POST /api/v1/uploads HTTP/1.1\r\nHost: test\r\n"
        + f"Authorization: {auth}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n".encode()
        + f"Content-Length: {len(head) + 5000}\r\n\r\n".encode()
        + head,
    )
    try:
        raw = await asyncio.wait_for(reader.read(4096), 5)
    finally:
        writer.close()
    status, _, payload = _parse(raw)
    assert status == 408
    assert json.loads(payload)["code"] == "request_timeout"


async def test_a_trickled_request_head_is_disconnected(api: Any) -> None:
    reader, writer = await _raw(api, b"POST /api/v1/auth/login HTTP/1.1\r\nHost: test\r\n")
    try:
        for _ in range(3):  # keep trickling header bytes; the connection still closes
            await asyncio.sleep(0.2)
            writer.write(b"X-Slow: 1\r\n")
            await writer.drain()
        raw = await asyncio.wait_for(reader.read(4096), 5)
    except ConnectionError:
        raw = b""
    finally:
        writer.close()
    assert raw == b"", "the server kept a connection whose request head never completed"


async def test_an_idle_connection_is_closed(api: Any) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", api.server.port)
    try:
        assert await asyncio.wait_for(reader.read(1), 5) == b""
    finally:
        writer.close()


async def _trickle(api: Any, route: Route, headers: dict[str, str]) -> tuple[int, float]:
    """Send a route its head and the first bytes of a promised body, then stall; the status and how long it took."""
    assert route.meta is not None
    kind = {"form": "application/x-www-form-urlencoded", "multipart": "multipart/form-data; boundary=b0undary"}
    content_type = kind.get(route.meta.body_kind, "application/json")
    lines = [f"{route.method} {route.url()} HTTP/1.1", "Host: test", f"Content-Type: {content_type}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("Content-Length: 1000")
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await _raw(api, ("\r\n".join(lines) + "\r\n\r\n").encode() + b"--b0undary\r\n")
    try:
        raw = await asyncio.wait_for(reader.read(4096), 5)
    except TimeoutError:
        raw = b""
    finally:
        writer.close()
    status = _parse(raw)[0] if raw else 0
    return status, loop.time() - started


async def test_no_route_waits_for_a_body_that_never_comes(api: Any, settings: Settings) -> None:
    """Every route that may take a body answers a stalled one promptly: 408, a 4xx it decided before
    reading, or its answer when it reads no body at all."""
    routes = [
        r
        for r in all_routes(api.server.app)
        if r.meta is not None and r.method in ("POST", "PUT", "PATCH", "DELETE") and not r.streams
    ]
    assert routes
    accounts = Accounts(api.app[CTX], settings)
    headers = [{} if r.meta is not None and r.meta.public else await accounts.bearer(best_role(r)) for r in routes]
    results = await asyncio.gather(*(_trickle(api, r, h) for r, h in zip(routes, headers, strict=True)))
    failures = [
        f"{r.label}: {status or 'no answer'} after {elapsed:.1f}s"
        for r, (status, elapsed) in zip(routes, results, strict=True)
        if not 200 <= status < 500 or elapsed > 4
    ]
    assert not failures, "\n".join(failures)
    assert any(status == 408 for status, _ in results)
