"""API clients: administration and the OAuth2 client-credentials token endpoint."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from handlers.keys import CTX
from tests.factories import admin_token, bearer

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def _new_client(client: Any, token: str, scopes: list[str] | None = None) -> dict[str, Any]:
    body = {"name": "皖事通 Wanshitong", "scopes": scopes or ["cases:read", "stations:read"]}
    resp = await client.post("/api/v1/clients", json=body, headers=bearer(token))
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode(), **FORM}


async def _token(client: Any, data: str, headers: dict[str, str] | None = None) -> Any:
    return await client.post("/oauth/token", data=data, headers=headers or FORM)


async def _assert_oauth_error(resp: Any, status: int, error: str) -> None:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["error"] == error and body["code"] == error and body["error_description"]


async def test_client_secret_is_shown_once_and_stored_hashed(client: Any) -> None:
    token = await admin_token(client)
    issued = await _new_client(client, token)
    secret, cid = issued["client_secret"], issued["client"]["client_id"]
    assert issued["client"]["scopes"] == ["cases:read", "stations:read"]
    assert issued["client"]["rate_limit_per_minute"] == 600
    shown = await (await client.get(f"/api/v1/clients/{cid}", headers=bearer(token))).text()
    assert secret not in shown and "secret" not in shown
    doc = await client.app[CTX].db["api_clients"].find_one({"_id": cid})
    assert secret not in str(doc)


async def test_client_credentials_with_basic_auth(client: Any) -> None:
    issued = await _new_client(client, await admin_token(client))
    cid, secret = issued["client"]["client_id"], issued["client_secret"]
    resp = await _token(client, "grant_type=client_credentials", _basic(cid, secret))
    assert resp.status == 200, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer" and body["scope"] == "cases:read stations:read"
    me = await (await client.get("/api/v1/me", headers=bearer(body["access_token"]))).json()
    assert me["role"] == "client" and me["client_id"] == cid and me["name"] == "皖事通 Wanshitong"
    assert me["scopes"] == ["cases:read", "stations:read"]


async def test_client_credentials_in_the_body_with_a_narrower_scope(client: Any) -> None:
    issued = await _new_client(client, await admin_token(client))
    cid, secret = issued["client"]["client_id"], issued["client_secret"]
    data = f"grant_type=client_credentials&client_id={cid}&client_secret={quote(secret)}&scope=cases%3Aread"
    resp = await _token(client, data)
    assert resp.status == 200
    assert (await resp.json())["scope"] == "cases:read"


async def test_token_endpoint_errors_follow_rfc_6749(client: Any) -> None:
    issued = await _new_client(client, await admin_token(client))
    cid, secret = issued["client"]["client_id"], issued["client_secret"]
    await _assert_oauth_error(
        await _token(client, "grant_type=client_credentials", _basic(cid, "wrong")), 401, "invalid_client"
    )
    await _assert_oauth_error(
        await _token(client, "grant_type=client_credentials", _basic("hmc_unknown", secret)), 401, "invalid_client"
    )
    await _assert_oauth_error(await _token(client, "grant_type=client_credentials"), 401, "invalid_client")
    await _assert_oauth_error(
        await _token(client, "grant_type=password", _basic(cid, secret)), 400, "unsupported_grant_type"
    )
    await _assert_oauth_error(await _token(client, "scope=cases%3Aread", _basic(cid, secret)), 400, "invalid_request")
    await _assert_oauth_error(
        await _token(client, "grant_type=client_credentials&scope=cases%3Awrite", _basic(cid, secret)),
        400,
        "invalid_scope",
    )
    await _assert_oauth_error(
        await _token(client, "grant_type=client_credentials&grant_type=client_credentials", _basic(cid, secret)),
        400,
        "invalid_request",
    )
    await _assert_oauth_error(
        await _token(client, f"grant_type=client_credentials&client_id={cid}", _basic(cid, secret)),
        400,
        "invalid_request",
    )
    resp = await client.post(
        "/oauth/token",
        json={"grant_type": "client_credentials"},
        headers=_basic(cid, secret) | {"Content-Type": "application/json"},
    )
    await _assert_oauth_error(resp, 400, "invalid_request")


async def test_oversized_token_request_is_413(client: Any) -> None:
    resp = await _token(client, "grant_type=client_credentials&pad=" + "x" * 20000)
    assert resp.status == 413
    body = await resp.json()
    assert body["code"] == "payload_too_large" and body["limit"] == 8192


async def test_rotated_secret_replaces_the_old_one(client: Any) -> None:
    admin = await admin_token(client)
    issued = await _new_client(client, admin)
    cid, old = issued["client"]["client_id"], issued["client_secret"]
    resp = await client.post(f"/api/v1/clients/{cid}/rotate-secret", headers=bearer(admin))
    assert resp.status == 200
    new = (await resp.json())["client_secret"]
    assert new != old
    await _assert_oauth_error(
        await _token(client, "grant_type=client_credentials", _basic(cid, old)), 401, "invalid_client"
    )
    assert (await _token(client, "grant_type=client_credentials", _basic(cid, new))).status == 200


async def test_disabled_client_gets_no_token(client: Any) -> None:
    admin = await admin_token(client)
    issued = await _new_client(client, admin)
    cid, secret = issued["client"]["client_id"], issued["client_secret"]
    resp = await client.post(f"/api/v1/clients/{cid}/disable", headers=bearer(admin))
    assert resp.status == 200 and (await resp.json())["active"] is False
    await _assert_oauth_error(
        await _token(client, "grant_type=client_credentials", _basic(cid, secret)), 401, "invalid_client"
    )


async def test_client_list_is_paginated(client: Any) -> None:
    admin = await admin_token(client)
    ids = {(await _new_client(client, admin))["client"]["client_id"] for _ in range(3)}
    page1 = await (await client.get("/api/v1/clients?limit=2", headers=bearer(admin))).json()
    page2 = await (
        await client.get(f"/api/v1/clients?limit=2&cursor={page1['next_cursor']}", headers=bearer(admin))
    ).json()
    assert {c["client_id"] for c in page1["items"] + page2["items"]} == ids
    assert page2["next_cursor"] is None


async def test_unknown_scope_and_unknown_client_are_refused(client: Any) -> None:
    admin = await admin_token(client)
    resp = await client.post("/api/v1/clients", json={"name": "x", "scopes": ["everything"]}, headers=bearer(admin))
    assert resp.status == 422
    assert "scopes" in (await resp.json())["errors"]
    resp = await client.get("/api/v1/clients/hmc_nope", headers=bearer(admin))
    assert resp.status == 404
    assert (await resp.json())["code"] == "client_not_found"


async def test_admin_sets_and_clears_the_territory_of_a_clients_visit_events(client: Any) -> None:
    token = await admin_token(client)
    body = {"name": "省养老服务平台", "scopes": ["visits:read", "webhooks:manage"], "division_prefix": "3410"}
    resp = await client.post("/api/v1/clients", json=body, headers=bearer(token))
    assert resp.status == 201, await resp.text()
    cid = (await resp.json())["client"]["client_id"]
    url = f"/api/v1/clients/{cid}"
    assert (await (await client.get(url, headers=bearer(token))).json())["division_prefix"] == "3410"
    resp = await client.patch(url, json={"division_prefix": "34"}, headers=bearer(token))
    assert resp.status == 200 and (await resp.json())["division_prefix"] == "34"
    resp = await client.patch(url, json={"division_prefix": "34x"}, headers=bearer(token))
    assert resp.status == 422 and "division_prefix" in (await resp.json())["errors"]
    resp = await client.patch(url, json={"division_prefix": None}, headers=bearer(token))
    assert resp.status == 200 and (await resp.json())["division_prefix"] is None
