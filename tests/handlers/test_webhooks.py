"""Webhook subscription API: who may manage what, URL validation, ping, log, redelivery."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from handlers.keys import CTX
from run import create_app
from service.webhooks.delivery import deliver_once
from tests.factories import bearer_for, make_case, make_staff, make_station, make_wechat_resident
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers_webhooks import Clock, integrator, subscribe, verify


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = await WebhookReceiver().start()
    yield r
    await r.close()


async def test_client_creates_webhook_and_secret_is_shown_only_once(client: Any, settings: Any) -> None:
    client_a, headers = await integrator(client, settings)
    created = await subscribe(client, headers, "https://hooks.example.gov.cn/huimin", ["case.created", "case.resolved"])
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["case.created", "case.resolved"]
    assert created["client_id"] == client_a.client_id
    assert created["active"] is True
    resp = await client.get(f"/api/v1/webhooks/{created['id']}", headers=headers)
    assert resp.status == 200
    body = await resp.json()
    assert "secret" not in body
    assert body["url"] == "https://hooks.example.gov.cn/huimin"
    listed = await (await client.get("/api/v1/webhooks", headers=headers)).json()
    assert [s["id"] for s in listed["items"]] == [created["id"]]
    assert "secret" not in listed["items"][0]
    stored = await client.app[CTX].db["webhook_subscriptions"].find_one({"_id": created["id"]})
    assert created["secret"] not in str(stored)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.gov.cn/x",
        "https:///no-host",
        "https://user:pass@hooks.example.gov.cn/x",
        "javascript:alert(1)",
        "https://hooks.example.gov.cn/" + "a" * 2100,
        "not a url",
    ],
)
async def test_invalid_webhook_url_is_422_and_nothing_is_stored(client: Any, settings: Any, url: str) -> None:
    _, headers = await integrator(client, settings)
    resp = await client.post("/api/v1/webhooks", json={"url": url, "event_types": ["*"]}, headers=headers)
    assert resp.status == 422
    body = await resp.json()
    assert body["code"] == "invalid_webhook_url"
    assert "url" in body["errors"]
    assert await client.app[CTX].db["webhook_subscriptions"].count_documents({}) == 0


async def test_bad_event_types_are_422(client: Any, settings: Any) -> None:
    _, headers = await integrator(client, settings)
    resp = await client.post(
        "/api/v1/webhooks", json={"url": "https://h.example.cn/x", "event_types": ["Case Created"]}, headers=headers
    )
    assert resp.status == 422
    assert (await resp.json())["code"] == "invalid_event_types"


async def test_host_outside_the_allow_list_is_refused(aiohttp_client: Any, settings: Any) -> None:
    client = await aiohttp_client(
        create_app(settings.replace(webhook_allowed_hosts="*.ahzwfw.gov.cn, hooks.example.cn"))
    )
    _, headers = await integrator(client, settings)
    bad = await client.post(
        "/api/v1/webhooks", json={"url": "http://169.254.169.254/", "event_types": ["*"]}, headers=headers
    )
    assert bad.status == 422
    assert (await bad.json())["code"] == "webhook_host_not_allowed"
    for url in ("https://hooks.example.cn/in", "https://sub.ahzwfw.gov.cn/hook"):
        ok = await client.post("/api/v1/webhooks", json={"url": url, "event_types": ["*"]}, headers=headers)
        assert ok.status == 201, await ok.text()


async def test_client_without_manage_scope_is_forbidden(client: Any, settings: Any) -> None:
    _, headers = await integrator(client, settings, scopes=("cases:read",))
    resp = await client.post(
        "/api/v1/webhooks", json={"url": "https://h.example.cn/x", "event_types": ["*"]}, headers=headers
    )
    assert resp.status == 403
    assert (await resp.json())["code"] == "insufficient_scope"


async def test_resident_cannot_subscribe(client: Any, settings: Any) -> None:
    resident = await make_wechat_resident(client.app[CTX])
    resp = await client.post(
        "/api/v1/webhooks",
        json={"url": "https://h.example.cn/x", "event_types": ["*"]},
        headers=bearer_for(settings, resident),
    )
    assert resp.status == 403
    assert (await resp.json())["code"] == "role_not_allowed"


async def test_other_client_cannot_see_or_change_a_subscription(client: Any, settings: Any) -> None:
    created = await subscribe(client, (await integrator(client, settings))[1], "https://h.example.cn/a")
    _, other = await integrator(client, settings)
    path = f"/api/v1/webhooks/{created['id']}"
    for method, url, kwargs in (
        ("GET", path, {}),
        ("PATCH", path, {"json": {"active": False}}),
        ("DELETE", path, {}),
        ("POST", path + "/ping", {}),
        ("POST", path + "/rotate-secret", {}),
        ("GET", path + "/deliveries", {}),
    ):
        resp = await client.request(method, url, headers=other, **kwargs)
        assert resp.status == 404, (method, url)
        assert (await resp.json())["code"] == "webhook_not_found"
    listed = await (await client.get("/api/v1/webhooks", headers=other)).json()
    assert listed["items"] == []


async def test_admin_lists_every_clients_subscriptions(client: Any, settings: Any) -> None:
    a = await subscribe(client, (await integrator(client, settings))[1], "https://h.example.cn/a")
    client_b, b_headers = await integrator(client, settings)
    b = await subscribe(client, b_headers, "https://h.example.cn/b")
    admin = bearer_for(settings, await make_staff(client.app[CTX], role="admin"))
    listed = await (await client.get("/api/v1/webhooks", headers=admin)).json()
    assert {s["id"] for s in listed["items"]} == {a["id"], b["id"]}
    only_b = await (await client.get(f"/api/v1/webhooks?client_id={client_b.client_id}", headers=admin)).json()
    assert [s["id"] for s in only_b["items"]] == [b["id"]]
    assert (await client.get(f"/api/v1/webhooks/{a['id']}", headers=admin)).status == 200


async def test_subscription_list_pages_with_a_cursor(client: Any, settings: Any) -> None:
    _, headers = await integrator(client, settings)
    ids = [(await subscribe(client, headers, f"https://h.example.cn/{i}"))["id"] for i in range(3)]
    first = await (await client.get("/api/v1/webhooks?limit=2", headers=headers)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = await (await client.get(f"/api/v1/webhooks?limit=2&cursor={first['next_cursor']}", headers=headers)).json()
    assert [s["id"] for s in first["items"] + second["items"]] == ids[::-1]  # newest first
    assert second["next_cursor"] is None
    bad = await client.get("/api/v1/webhooks?cursor=garbage", headers=headers)
    assert bad.status == 400
    assert (await bad.json())["code"] == "invalid_cursor"


async def test_patch_changes_fields_and_delete_removes(client: Any, settings: Any) -> None:
    _, headers = await integrator(client, settings)
    created = await subscribe(client, headers, "https://h.example.cn/a")
    path = f"/api/v1/webhooks/{created['id']}"
    resp = await client.patch(
        path, json={"url": "https://h.example.cn/new", "event_types": ["case.closed"], "active": False}, headers=headers
    )
    assert resp.status == 200
    body = await resp.json()
    assert (body["url"], body["event_types"], body["active"]) == ("https://h.example.cn/new", ["case.closed"], False)
    bad = await client.patch(path, json={"url": "file:///etc/passwd"}, headers=headers)
    assert bad.status == 422
    assert (await bad.json())["code"] == "invalid_webhook_url"
    unknown = await client.patch(path, json={"secret": "x"}, headers=headers)
    assert unknown.status == 422
    assert (await unknown.json())["code"] == "unknown_field"
    assert (await client.delete(path, headers=headers)).status == 204
    gone = await client.get(path, headers=headers)
    assert gone.status == 404
    assert (await gone.json())["code"] == "webhook_not_found"


async def test_ping_reports_the_receivers_answer_with_a_valid_signature(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    _, headers = await integrator(client, settings)
    created = await subscribe(client, headers, receiver.url("a"))
    resp = await client.post(f"/api/v1/webhooks/{created['id']}/ping", headers=headers)
    assert resp.status == 200
    body = await resp.json()
    assert (body["status"], body["last_status_code"], body["attempts"]) == ("delivered", 200, 1)
    (req,) = receiver.received("a")
    assert req.headers["Huimin-Event-Type"] == "webhook.ping"
    assert req.json["type"] == "webhook.ping" and req.json["data"]["subscription_id"] == created["id"]
    assert verify(created["secret"], req.headers["Huimin-Signature"], req.body, int(time.time()))
    receiver.always("a", 503)
    failed = await (await client.post(f"/api/v1/webhooks/{created['id']}/ping", headers=headers)).json()
    assert (failed["status"], failed["last_status_code"]) == ("dead", 503)
    assert failed["last_error"].startswith("HTTP 503")


async def test_rotated_secret_signs_the_next_delivery(client: Any, settings: Any, receiver: WebhookReceiver) -> None:
    _, headers = await integrator(client, settings)
    created = await subscribe(client, headers, receiver.url("a"))
    rotated = await (await client.post(f"/api/v1/webhooks/{created['id']}/rotate-secret", headers=headers)).json()
    assert rotated["secret"] != created["secret"]
    await client.post(f"/api/v1/webhooks/{created['id']}/ping", headers=headers)
    (req,) = receiver.received("a")
    now = int(time.time())
    assert verify(rotated["secret"], req.headers["Huimin-Signature"], req.body, now)
    assert not verify(created["secret"], req.headers["Huimin-Signature"], req.body, now)


async def test_delivery_log_shows_attempts_and_dead_delivery_can_be_redelivered(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    client_a, headers = await integrator(client, settings)
    created = await subscribe(client, headers, receiver.url("a"))
    ctx = dataclasses.replace(client.app[CTX], clock=Clock(), settings=settings.replace(webhook_retry_hours=0.01))
    await make_station(ctx)  # the case is routed: one event (case.created), one delivery
    await make_case(ctx, client_a)
    receiver.always("a", 500)
    assert await deliver_once(ctx=ctx, worker_id="w1") == 1
    ctx.clock.advance(hours=1)  # type: ignore[attr-defined]
    assert await deliver_once(ctx=ctx, worker_id="w1") == 1
    log_path = f"/api/v1/webhooks/{created['id']}/deliveries"
    dead = await (await client.get(log_path + "?status=dead", headers=headers)).json()
    (item,) = dead["items"]
    assert (item["status"], item["attempts"], item["last_status_code"], item["next_attempt_at"]) == (
        "dead",
        2,
        500,
        None,
    )
    assert item["last_latency_ms"] >= 0 and len(item["attempt_log"]) == 2
    assert (await (await client.get(log_path + "?status=pending", headers=headers)).json())["items"] == []
    bad = await client.get(log_path + "?status=lost", headers=headers)
    assert bad.status == 422
    receiver.always("a", 200)
    resp = await client.post(f"{log_path}/{item['id']}/redeliver", headers=headers)
    assert resp.status == 202
    assert (await resp.json())["status"] == "pending"
    assert await deliver_once(ctx=ctx, worker_id="w1") == 1
    done = await (await client.get(log_path, headers=headers)).json()
    assert done["items"][0]["status"] == "delivered" and done["items"][0]["attempts"] == 3
    assert len(receiver.delivered("a")) == 1
    missing = await client.post(f"{log_path}/dlv_nope/redeliver", headers=headers)
    assert missing.status == 404
    assert (await missing.json())["code"] == "delivery_not_found"
