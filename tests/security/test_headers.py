"""Response headers on every route: no server version, nosniff, and no caching of API answers.

Every /api/, /oauth/ and /open311/ answer is marked ``Cache-Control: no-store`` — not only
those with personal data (cases, me, staff), but the public catalogue too: one rule that no
new route can forget is worth more than letting a proxy cache a small list. The
exceptions: the API description, which holds no data at all and is revalidated
(``no-cache``) so documentation tools can keep it, and the public division list (place
names), cached a day. Problem responses carry the same headers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from config import Settings
from handlers.keys import CTX
from tests.factories import Accounts, bearer_for, make_wechat_resident
from tests.security.routes import all_routes, best_role, read_answer

NO_STORE_PREFIXES = ("/api/", "/oauth/", "/open311/")
REVALIDATED = {
    "/api/v1/openapi.json": "no-cache",
    # Place names, codes and station ids, nothing about people: cached a day (with an ETag) so an
    # address picker costs one request per level.
    "/api/v1/divisions": "public, max-age=86400",
}


def _header_problems(label: str, path: str, headers: Any) -> list[str]:
    out = []
    if headers.get("Server") != "huimin":
        out.append(f"{label}: Server is {headers.get('Server')!r}")
    if headers.get("X-Content-Type-Options") != "nosniff":
        out.append(f"{label}: X-Content-Type-Options is {headers.get('X-Content-Type-Options')!r}")
    if path.startswith(NO_STORE_PREFIXES) and headers.get("Cache-Control") != REVALIDATED.get(path, "no-store"):
        out.append(f"{label}: Cache-Control is {headers.get('Cache-Control')!r}")
    return out


async def test_every_route_answers_with_the_safe_headers(client: Any, settings: Settings) -> None:
    failures = []
    accounts = Accounts(client.app[CTX], settings)
    for route in all_routes(client.server.app):
        assert route.meta is not None
        headers = {} if route.meta.public else await accounts.bearer(best_role(route))
        kwargs: dict[str, Any] = {"headers": headers}
        if route.method != "GET":
            kwargs["json"] = {}
        resp = await client.request(route.method, route.url(), **kwargs)
        await read_answer(resp, route)
        failures += _header_problems(f"{route.label} ({resp.status})", route.path, resp.headers)
        if route.meta.public:
            continue
        anonymous = await client.request(route.method, route.url())  # a 401 problem document
        await read_answer(anonymous, route)
        failures += _header_problems(f"{route.label} anonymous ({anonymous.status})", route.path, anonymous.headers)
    assert not failures, "\n".join(failures)


async def test_personal_data_is_never_cached(client: Any, settings: Settings) -> None:
    resident = bearer_for(settings, await make_wechat_resident(client.app[CTX]))
    for path in ("/api/v1/me", "/api/v1/cases", "/api/v1/cases/65a0c0ffee0000000000beef"):
        resp = await client.get(path, headers=resident)
        await resp.read()
        assert resp.headers["Cache-Control"] == "no-store", path


async def test_unknown_addresses_and_wrong_methods_carry_the_headers(client: Any) -> None:
    for method, path in (("GET", "/api/v1/no-such-thing"), ("DELETE", "/api/v1/scenarios"), ("GET", "/nowhere")):
        resp = await client.request(method, path)
        assert resp.content_type == "application/problem+json"
        await resp.read()
        assert not _header_problems(f"{method} {path}", path, resp.headers)


async def test_requests_the_http_parser_rejects_do_not_reveal_the_server_version(client: Any) -> None:
    for payload in (b"GARBAGE\r\n\r\n", b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"):
        reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
        try:
            writer.write(payload)
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(4096), 5)
        finally:
            writer.close()
        head = raw.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
        assert head.startswith("http/1.") and " 400 " in head.split("\r\n")[0]
        assert "\r\nserver: huimin" in head, head
        assert "aiohttp" not in head and "python" not in head, head
