"""What docs/integrators.md, docs/webhooks.md and docs/errors.md promise integrators, through the API.

Clients, staff and cases are made through the real code paths: clients by the admin API and
the OAuth2 token endpoint, staff by the staff service and the login API, cases by the API.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from handlers.keys import CTX
from service.identity import tokens
from service.webhooks.delivery import deliver_once
from tests.factories import admin_token, bearer, login, make_staff
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.handlers.test_cases import World, world  # noqa: F401 - the shared case-world fixture
from tests.helpers_webhooks import subscribe

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ALL_SCOPES = ["cases:read", "cases:write", "stations:read", "webhooks:manage"]


async def _register(client: Any, admin: str, scopes: list[str]) -> tuple[str, str]:
    resp = await client.post(
        "/api/v1/clients", json={"name": "皖事通 Wanshitong", "scopes": scopes}, headers=bearer(admin)
    )
    assert resp.status == 201, await resp.text()
    issued = await resp.json()
    return issued["client"]["client_id"], issued["client_secret"]


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode(), **FORM}


async def _client_token(client: Any, client_id: str, secret: str) -> dict[str, str]:
    resp = await client.post("/oauth/token", data="grant_type=client_credentials", headers=_basic(client_id, secret))
    assert resp.status == 200, await resp.text()
    return bearer((await resp.json())["access_token"])


# ---------------------------------------------------------------- disabling a client


async def test_disabling_a_client_ends_its_bearer_tokens_at_once(client: Any) -> None:
    admin = await admin_token(client)
    cid, secret = await _register(client, admin, ["cases:read"])
    other_cid, other_secret = await _register(client, admin, ["cases:read"])
    token = await _client_token(client, cid, secret)
    other = await _client_token(client, other_cid, other_secret)
    assert (await client.get("/api/v1/cases", headers=token)).status == 200

    resp = await client.post(f"/api/v1/clients/{cid}/disable", headers=bearer(admin))
    assert resp.status == 200

    resp = await client.get("/api/v1/cases", headers=token)
    assert resp.status == 401
    assert (await resp.json())["code"] == "token_revoked"
    # Only that client: another client's token keeps working.
    assert (await client.get("/api/v1/cases", headers=other)).status == 200


async def test_a_disabled_clients_tokens_stay_refused_when_redis_lost_its_revocations(client: Any) -> None:
    admin = await admin_token(client)
    cid, secret = await _register(client, admin, ["cases:read"])
    token = await _client_token(client, cid, secret)
    assert (await client.post(f"/api/v1/clients/{cid}/disable", headers=bearer(admin))).status == 200
    ctx = client.app[CTX]
    # As after a Redis restart without persistence: MongoDB decides (and refills Redis).
    await ctx.redis.delete(ctx.key("revoked", tokens.subject_marker(cid)), ctx.key("revoked", tokens.LOADED_MARKER))
    resp = await client.get("/api/v1/cases", headers=token)
    assert resp.status == 401 and (await resp.json())["code"] == "token_revoked"
    assert await ctx.redis.get(ctx.key("revoked", tokens.subject_marker(cid))) is not None


# ---------------------------------------------------------------- the token endpoint's challenge


async def test_a_401_to_a_client_that_used_basic_challenges_with_basic(client: Any) -> None:
    admin = await admin_token(client)
    cid, _ = await _register(client, admin, ["cases:read"])
    resp = await client.post("/oauth/token", data="grant_type=client_credentials", headers=_basic(cid, "wrong"))
    assert resp.status == 401
    assert (await resp.json())["code"] == "invalid_client"
    assert resp.headers["WWW-Authenticate"].startswith("Basic ")
    # The API proper still challenges with Bearer.
    resp = await client.get("/api/v1/cases")
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer ")


# ---------------------------------------------------------------- scopes


async def test_stations_read_scope_grants_routing_previews(world: World) -> None:  # noqa: F811
    admin = await admin_token(world.client)
    body = {"service_code": "elderly_home_visit", "division_code": world.station_a.code}
    cid, secret = await _register(world.client, admin, ["stations:read"])
    resp = await world.client.post(
        "/api/v1/routing/preview", json=body, headers=await _client_token(world.client, cid, secret)
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["station_id"] == world.station_a.id
    cid, secret = await _register(world.client, admin, ["cases:read", "cases:write"])
    resp = await world.client.post(
        "/api/v1/routing/preview", json=body, headers=await _client_token(world.client, cid, secret)
    )
    assert resp.status == 403 and (await resp.json())["code"] == "insufficient_scope"


# ---------------------------------------------------------------- 413


async def test_a_413_names_its_limit(client: Any, settings: Any) -> None:
    resp = await client.post("/oauth/token", data="grant_type=client_credentials&pad=" + "x" * 20000, headers=FORM)
    assert resp.status == 413
    problem = await resp.json()
    assert problem["code"] == "payload_too_large" and problem["limit"] == 8192
    admin = await admin_token(client)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: cut off while reading
        yield b'{"service_code": "'
        for _ in range(settings.max_json_bytes // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'

    resp = await client.post(
        "/api/v1/cases", data=chunks(), headers={**bearer(admin), "Content-Type": "application/json"}
    )
    assert resp.status == 413
    problem = await resp.json()
    assert problem["code"] == "payload_too_large" and problem["limit"] == settings.max_json_bytes


# ---------------------------------------------------------------- webhooks


async def _staff_of(w: World, username: str, role: str) -> tuple[str, dict[str, str]]:
    member = await make_staff(w.client.app[CTX], username=username, role=role, station_id=w.station_a.id)
    return str(member.id), bearer((await login(w.client, username))["access_token"])


async def _patch(w: World, headers: dict[str, str], sub_id: str, active: bool) -> None:
    resp = await w.client.patch(f"/api/v1/webhooks/{sub_id}", json={"active": active}, headers=headers)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["active"] is active


async def _deliver_all(w: World) -> None:
    while await deliver_once(ctx=w.ctx, worker_id="w1"):
        pass


async def test_events_committed_while_a_subscription_is_inactive_are_never_delivered(world: World) -> None:  # noqa: F811
    admin = await admin_token(world.client)
    cid, secret = await _register(world.client, admin, ALL_SCOPES)
    integrator = await _client_token(world.client, cid, secret)
    _, head = await _staff_of(world, "head-zhang", "station_head")
    receiver = await WebhookReceiver().start()
    try:
        sub = await subscribe(world.client, integrator, receiver.url("a"))
        case = await world.submit(headers=integrator)
        await _deliver_all(world)
        await _patch(world, integrator, sub["id"], False)
        await world.act(case["id"], "accept", head)  # while inactive
        await world.act(case["id"], "note", head, text="已电话联系 called")  # while inactive
        await _deliver_all(world)
        await _patch(world, integrator, sub["id"], True)
        await world.act(case["id"], "start", head)  # active again
        await _deliver_all(world)
    finally:
        await receiver.close()
    assert [r.json["type"] for r in receiver.delivered("a")] == ["case.created", "case.started"]


async def test_webhook_payloads_carry_no_staff_account_ids(world: World) -> None:  # noqa: F811
    admin = await admin_token(world.client)
    cid, secret = await _register(world.client, admin, ALL_SCOPES)
    integrator = await _client_token(world.client, cid, secret)
    worker_id, worker = await _staff_of(world, "worker-li", "worker")
    head_id, head = await _staff_of(world, "head-wang", "station_head")
    supervisor = await make_staff(
        world.client.app[CTX], username="sup-xi", role="supervisor", division_prefix=world.station_a.code[:6]
    )
    sup = bearer((await login(world.client, "sup-xi"))["access_token"])
    receiver = await WebhookReceiver().start()
    try:
        await subscribe(world.client, integrator, receiver.url("a"))
        case = await world.submit(headers=integrator)
        await world.act(case["id"], "accept", head)
        await world.act(case["id"], "assign", head, assignee_id=worker_id)
        await world.act(case["id"], "request_extension", head, extra_days=2, reason="需要上门核实")
        await world.act(case["id"], "approve_extension", sup)
        await world.act(case["id"], "urge", sup, note="请尽快办理")
        await world.act(case["id"], "start", worker)
        await _deliver_all(world)
    finally:
        await receiver.close()
    got = receiver.delivered("a")
    assert [r.json["type"] for r in got] == [
        "case.created",
        "case.accepted",
        "case.assigned",
        "case.extension_requested",
        "case.extension_approved",
        "case.urged",
        "case.started",
    ]
    staff_ids = {worker_id, head_id, str(supervisor.id)}
    for received in got:
        text = received.body.decode()
        assert not any(staff_id in text for staff_id in staff_ids), received.json["type"]
        payload = received.json
        assert "assignee_id" not in payload["data"]
        view = payload["case"]
        assert "assignee_id" not in view
        assert "requested_by" not in (view.get("extension") or {})
        assert all(set(h["actor"]) == {"role"} for h in view["history"])
    # The API still tells staff who holds the case.
    seen = await (await world.client.get(f"/api/v1/cases/{case['id']}", headers=head)).json()
    assert seen["assignee_id"] == worker_id
