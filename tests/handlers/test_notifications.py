"""Subscriptions, templates, the inbox and preferences over HTTP, including bad input."""

from __future__ import annotations

from typing import Any

from handlers.keys import CTX
from service.notify.service import process_events
from tests.factories import bearer_for, make_case, make_wechat_resident
from tests.helpers_notify import happen, station_worker


async def test_templates_are_listed_publicly_with_their_fields(client: Any) -> None:
    resp = await client.get("/api/v1/notification-templates")
    assert resp.status == 200
    items = {t["key"]: t for t in (await resp.json())["items"]}
    assert set(items) == {"accepted", "scheduled", "resolved", "returned", "visit_followup"}
    assert items["resolved"]["title_zh"] == "已办结"
    assert [f["key"] for f in items["accepted"]["fields"]][:2] == ["thing1", "character_string2"]
    assert items["returned"]["event_types"] == ["case.rejected", "case.cancelled"]


async def test_accept_adds_one_grant_each_time(client: Any, settings: Any) -> None:
    h = bearer_for(settings, await make_wechat_resident(client.app[CTX]))
    for _ in range(2):
        resp = await client.post(
            "/api/v1/me/subscriptions", json={"template_id": "tmpl-case-accepted", "result": "accept"}, headers=h
        )
        assert resp.status == 201
    body = await resp.json()
    assert body["remaining"] == 2 and body["template_key"] == "accepted" and body["last_result"] == "accept"
    listed = await (await client.get("/api/v1/me/subscriptions", headers=h)).json()
    assert {i["template_key"]: i["remaining"] for i in listed["items"]}["accepted"] == 2


async def test_unknown_template_is_422_unknown_template(client: Any, settings: Any) -> None:
    resp = await client.post(
        "/api/v1/me/subscriptions",
        json={"template_id": "someone-elses-template", "result": "accept"},
        headers=bearer_for(settings, await make_wechat_resident(client.app[CTX])),
    )
    assert resp.status == 422
    body = await resp.json()
    assert body["code"] == "unknown_template"
    assert "template_id" in body["errors"]


async def test_subscription_result_outside_the_four_values_is_422(client: Any, settings: Any) -> None:
    resp = await client.post(
        "/api/v1/me/subscriptions",
        json={"template_id": "tmpl-case-accepted", "result": "maybe"},
        headers=bearer_for(settings, await make_wechat_resident(client.app[CTX])),
    )
    assert resp.status == 422
    body = await resp.json()
    assert body["code"] == "validation_failed"
    assert "result" in body["errors"]


async def test_staff_cannot_record_subscriptions(client: Any, settings: Any) -> None:
    resp = await client.post(
        "/api/v1/me/subscriptions",
        json={"template_id": "tmpl-case-accepted", "result": "accept"},
        headers=bearer_for(settings, await station_worker(client.app[CTX])),
    )
    assert resp.status == 403
    assert (await resp.json())["code"] == "role_not_allowed"


async def test_inbox_pages_counts_unread_and_marks_read(client: Any, settings: Any) -> None:
    ctx = client.app[CTX]
    worker = await station_worker(ctx)
    resident = await make_wechat_resident(ctx)
    for _ in range(5):
        await make_case(ctx, resident)  # each case.created reaches the station's inbox
    await process_events(ctx=ctx)
    h = bearer_for(settings, worker)
    page1 = await (await client.get("/api/v1/me/notifications", params={"limit": "2"}, headers=h)).json()
    assert len(page1["items"]) == 2 and page1["unread_count"] == 5 and page1["next_cursor"]
    page2 = await (
        await client.get("/api/v1/me/notifications", params={"limit": "2", "cursor": page1["next_cursor"]}, headers=h)
    ).json()
    page3 = await (
        await client.get("/api/v1/me/notifications", params={"limit": "2", "cursor": page2["next_cursor"]}, headers=h)
    ).json()
    numbers = [i["case_number"] for p in (page1, page2, page3) for i in p["items"]]
    assert len(numbers) == 5 and len(set(numbers)) == 5 and page3["next_cursor"] is None

    first_id = page1["items"][0]["id"]
    resp = await client.post(f"/api/v1/me/notifications/{first_id}/read", headers=h)
    assert resp.status == 200 and (await resp.json())["read"] is True
    unread = await (await client.get("/api/v1/me/notifications", params={"unread": "true"}, headers=h)).json()
    assert unread["unread_count"] == 4 and first_id not in [i["id"] for i in unread["items"]]
    resp = await client.post("/api/v1/me/notifications/read-all", headers=h)
    assert (await resp.json())["marked"] == 4
    after = await (await client.get("/api/v1/me/notifications", headers=h)).json()
    assert after["unread_count"] == 0


async def test_someone_elses_notification_is_404(client: Any, settings: Any) -> None:
    ctx = client.app[CTX]
    worker = await station_worker(ctx)
    owner = await make_wechat_resident(ctx)
    case = await make_case(ctx, owner)
    await happen(ctx, worker, case["id"], "accept")
    await process_events(ctx=ctx)
    mine = await (await client.get("/api/v1/me/notifications", headers=bearer_for(settings, owner))).json()
    nid = mine["items"][0]["id"]
    someone_else = await make_wechat_resident(ctx)
    resp = await client.post(f"/api/v1/me/notifications/{nid}/read", headers=bearer_for(settings, someone_else))
    assert resp.status == 404
    assert (await resp.json())["code"] == "notification_not_found"
    resp = await client.post(f"/api/v1/me/notifications/{nid}/read", headers=bearer_for(settings, owner))
    assert resp.status == 200  # the same id is readable by its recipient


async def test_bad_cursor_is_400(client: Any, settings: Any) -> None:
    worker = await station_worker(client.app[CTX])
    resp = await client.get("/api/v1/me/notifications", params={"cursor": "!!"}, headers=bearer_for(settings, worker))
    assert resp.status == 400
    assert (await resp.json())["code"] == "invalid_cursor"


async def test_inbox_needs_a_token(client: Any) -> None:
    resp = await client.get("/api/v1/me/notifications")
    assert resp.status == 401
    assert (await resp.json())["code"] == "authentication_required"


async def test_preferences_default_and_update(client: Any, settings: Any) -> None:
    h = bearer_for(settings, await station_worker(client.app[CTX]))
    prefs = await (await client.get("/api/v1/me/preferences", headers=h)).json()
    assert prefs["events"]["case.assigned"] == {"inbox": True, "sms": False, "stream": True}
    assert prefs["quiet_hours"] == "21:00-08:00" and prefs["timezone"] == "Asia/Shanghai"
    resp = await client.put(
        "/api/v1/me/preferences",
        json={"events": {"case.overdue": {"sms": True}}, "quiet_hours": "22:30-07:00"},
        headers=h,
    )
    assert resp.status == 200
    again = await (await client.get("/api/v1/me/preferences", headers=h)).json()
    assert again["events"]["case.overdue"] == {"inbox": True, "sms": True, "stream": True}
    assert again["quiet_hours"] == "22:30-07:00"


async def test_preferences_refuse_unknown_event_types_and_channels(client: Any, settings: Any) -> None:
    worker = bearer_for(settings, await station_worker(client.app[CTX]))
    resp = await client.put(
        "/api/v1/me/preferences",
        json={"events": {"case.teleported": {"inbox": True}, "case.scheduled": {"stream": True}}},
        headers=worker,
    )
    assert resp.status == 422
    body = await resp.json()
    assert body["code"] == "invalid_preferences"
    assert len(body["errors"]["events"]) == 2
    resp = await client.put("/api/v1/me/preferences", json={"quiet_hours": "25:00-08:00"}, headers=worker)
    assert resp.status == 422
    assert "quiet_hours" in (await resp.json())["errors"]
    resp = await client.put(
        "/api/v1/me/preferences",
        json={"events": {"case.accepted": {"stream": True}}},
        headers=bearer_for(settings, await make_wechat_resident(client.app[CTX])),
    )
    assert resp.status == 422
