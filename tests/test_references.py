"""Every reference between stored documents finds what it points to (the id convention of service/common/ids.py).

A whole small world is made through the API and the real code paths (no hand-made ids or
documents): stations, staff of every role, a WeChat and a phone resident, an upload, cases
through their lifecycle, a visit register entry with a visit that opens a referral case, an
integrator with a webhook subscription and deliveries, notifications of every channel, audit
entries, refresh tokens. Then every document of every collection is walked:

- no value anywhere is a BSON ObjectId (ids are strings, stored the same in their own
  ``_id`` and wherever they are referred to);
- every field holding an id (a 24-hex string, or ``resident:<id>`` / ``staff:<id>``) is
  declared in ``REFERENCES`` below, so a new reference field fails this test until it is
  declared (and so covered);
- every declared reference resolves: a document with that ``_id`` exists in its target;
- every declared reference was seen, so the world really exercises it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from bson import ObjectId

from config import Settings
from handlers.keys import CTX
from run import create_app
from service.catalog import service as catalog
from service.catalog.service import example_answers
from service.notify import delivery
from service.notify import service as notify
from service.visits.schedules import schedule_period
from service.webhooks.fanout import fan_out_events
from service.webhooks.sending import drain_subscription
from tests.factories import (
    STAFF_PASSWORD,
    act,
    bearer_for,
    case_body,
    elder_body,
    id_card,
    make_phone_resident,
    make_staff,
    make_station,
    make_wechat_resident,
)
from tests.fakes.sms import FakeSms
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.handlers.test_uploads import png

ID = re.compile(r"^[0-9a-f]{24}$")
PERSON = re.compile(r"^(resident|staff):([0-9a-f]{24})$")
PERSON_TARGETS = {"resident": "residents", "staff": "staff"}

# (collection, dotted path with [] for list items) -> collection(s) the id points into.
# "person" means a "resident:<id>" / "staff:<id>" key. Keys whose ``_id`` embeds another
# id are listed with the path "_id" and the part that refers.
REFERENCES: dict[tuple[str, str], str] = {
    ("staff", "station_id"): "stations",
    ("api_clients", "created_by"): "staff",
    ("cases", "owner"): "residents",
    ("cases", "created_by.subject"): "person-or-client",
    ("cases", "station_id"): "stations",
    ("cases", "assignee_id"): "staff",
    ("cases", "photos[]"): "uploads.files",
    ("cases", "result_photos[]"): "uploads.files",
    ("cases", "history[].data.photos[]"): "uploads.files",
    ("cases", "routing.station_id"): "stations",
    ("cases", "routing.candidates[].station_id"): "stations",
    ("cases", "history[].actor.subject"): "person-or-client",
    ("cases", "history[].data.assignee_id"): "staff",
    ("cases", "history[].event_id"): "events",
    ("cases", "source.visit_record_id"): "visits",
    ("cases", "source.elder_id"): "elders",
    ("events", "case_id"): "cases",
    ("events", "subject.id"): "event-subject",
    ("events", "station_id"): "stations",
    ("events", "actor.subject"): "person-or-client",
    ("events", "data.assignee_id"): "staff",
    ("events", "data.photos[]"): "uploads.files",
    ("notify_claims", "_id"): "events",
    ("notify_checkpoints", "last_id"): "events",
    ("notifications", "event_id"): "events",
    ("notifications", "case_id"): "cases",
    ("notifications", "recipient"): "person",
    ("notification_preferences", "_id"): "person",
    ("wechat_subscriptions", "resident_id"): "residents",
    ("elders", "station_id"): "stations",
    ("elders", "created_by.subject"): "person-or-client",
    ("elders", "consent.recorded_by"): "staff",
    ("visit_schedules", "elder_id"): "elders",
    ("visit_schedules", "station_id"): "stations",
    ("visit_schedules", "visit_id"): "visits",
    ("visits", "elder_id"): "elders",
    ("visits", "station_id"): "stations",
    ("visits", "visitor"): "staff",
    ("visits", "recorded_by.subject"): "person-or-client",
    ("visits", "recorded_by.station_id"): "stations",
    ("visits", "referrals[].case_id"): "cases",
    ("audit_log", "actor.subject"): "person-or-client",
    ("audit_log", "target.id"): "audit-target",
    ("audit_log", "elder_id"): "elders",
    ("refresh_tokens", "subject"): "person-or-client",
    ("idempotency_keys", "subject"): "person-or-client",
    ("idempotency_keys", "resource_id"): "cases",  # the one keyed create the world makes is a case
    ("uploads.files", "metadata.owner"): "person-or-client",
    ("uploads.chunks", "files_id"): "uploads.files",
    ("station_network", "_id"): "stations",
    ("station_network", "site.photos[]"): "uploads.files",
    ("station_network", "workflows[].uploads[]"): "uploads.files",
    ("station_network", "rules[].uploads[]"): "uploads.files",
    ("station_network", "updated_by.subject"): "staff",
    ("station_network_verifications", "station_id"): "stations",
    ("station_network_verifications", "by.subject"): "staff",
    ("webhook_deliveries", "event_id"): "events",
    ("webhook_deliveries", "case_id"): "cases",
    ("volunteers", "station_id"): "stations",
    ("volunteers", "resident_id"): "residents",
    ("volunteers", "registered_by.subject"): "person-or-client",
    ("volunteers", "records[].station_id"): "stations",
    ("volunteers", "records[].by.subject"): "person-or-client",
    ("volunteer_teams", "station_id"): "stations",
    ("volunteer_teams", "organiser_ids[]"): "volunteers",
    ("volunteer_teams", "created_by.subject"): "person-or-client",
    ("volunteer_activities", "station_id"): "stations",
    ("volunteer_activities", "team_id"): "volunteer_teams",
    ("volunteer_activities", "case_id"): "cases",
    ("volunteer_activities", "organiser.subject"): "person-or-client",
    ("volunteer_signups", "activity_id"): "volunteer_activities",
    ("volunteer_signups", "volunteer_id"): "volunteers",
    ("volunteer_attendance", "activity_id"): "volunteer_activities",
    ("volunteer_attendance", "volunteer_id"): "volunteers",
    ("volunteer_attendance", "station_id"): "stations",
    ("volunteer_attendance", "history[].by.subject"): "person-or-client",
    ("volunteer_attendance", "confirmed_by.subject"): "person-or-client",
    ("volunteer_certificates", "volunteer_id"): "volunteers",
    ("volunteer_certificates", "station_id"): "stations",
    ("volunteer_certificates", "services[].activity_id"): "volunteer_activities",
    ("volunteer_certificates", "records[].station_id"): "stations",
    ("volunteer_certificates", "records[].by.subject"): "person-or-client",
    ("volunteer_certificates", "issued_by.subject"): "person-or-client",
    ("volunteer_certificates", "revoked_by.subject"): "person-or-client",
    ("events", "data.volunteer_id"): "volunteers",
    ("events", "data.activity_id"): "volunteer_activities",
    ("events", "data.attendance_id"): "volunteer_attendance",
    ("events", "data.certificate_id"): "volunteer_certificates",
    ("events", "data.case_id"): "cases",
    ("workforce_people", "employer.station_id"): "stations",
    ("workforce_people", "staff_id"): "staff",
    ("workforce_people", "created_by.subject"): "person-or-client",
    ("workforce_history", "person_id"): "workforce_people",
    ("workforce_history", "actor.subject"): "person-or-client",
    ("workforce_history", "changes.station_id.to"): "stations",
    ("workforce_history", "changes.staff_id.to"): "staff",
    ("training_programmes", "created_by.subject"): "person-or-client",
    ("training_sessions", "programme_id"): "training_programmes",
    ("training_records", "person_id"): "workforce_people",
    ("training_records", "session_id"): "training_sessions",
    ("training_records", "programme_id"): "training_programmes",
    ("reference_figures", "imported_by"): "person-or-client",
}
# GridFS's own chunk ids: made by the driver, never referred to, not ours to shape.
GRIDFS_INTERNAL = {("uploads.chunks", "_id")}
# Collections an id may be found in, for the mixed kinds above.
MIXED = {
    "person-or-client": ("residents", "staff", "api_clients"),
    "audit-target": ("elders", "cases", "residents", "staff"),
    "event-subject": (
        "cases",
        "elders",
        "alerts",
        "volunteers",
        "volunteer_activities",
        "volunteer_attendance",
        "volunteer_certificates",
    ),
}


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, f"{path}[]")
    else:
        yield path, value


def _looks_like_reference(value: Any) -> bool:
    return isinstance(value, str) and bool(ID.match(value) or PERSON.match(value))


async def _build_world(client: Any, settings: Settings, receiver: WebhookReceiver) -> None:
    ctx = client.app[CTX]
    station = await make_station(ctx, code="340102001", name="明光路街道社工站", point=(117.304, 31.86))
    admin = await make_staff(ctx, role="admin")
    as_admin = bearer_for(settings, admin)
    staff_ids = {}
    for username, role, extra in (
        ("head.one", "station_head", {"station_id": station.id, "phone": "13800000001"}),
        ("worker.one", "worker", {"station_id": station.id}),
        ("super.one", "supervisor", {"division_prefix": "3401"}),
    ):
        resp = await client.post(
            "/api/v1/staff",
            json={"username": username, "password": STAFF_PASSWORD, "role": role, **extra},
            headers=as_admin,
        )
        assert resp.status == 201, await resp.text()
        staff_ids[role] = (await resp.json())["id"]
    logins = {}
    for username in ("head.one", "worker.one", "super.one"):
        resp = await client.post("/api/v1/auth/login", json={"username": username, "password": STAFF_PASSWORD})
        assert resp.status == 200, await resp.text()
        logins[username] = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}
    head, worker, supervisor = logins["head.one"], logins["worker.one"], logins["super.one"]
    await client.put("/api/v1/me/preferences", json={"events": {"case.created": {"sms": True}}}, headers=head)

    wechat_resident = await make_wechat_resident(ctx)
    phone_resident = await make_phone_resident(ctx)
    as_wechat = bearer_for(settings, wechat_resident)
    await client.post(
        "/api/v1/me/subscriptions", json={"template_id": "T-ACCEPTED", "result": "accept"}, headers=as_wechat
    )

    # An integrator with a webhook subscription.
    resp = await client.post(
        "/api/v1/clients",
        json={"name": "12345热线", "scopes": ["cases:read", "cases:write", "webhooks:manage"]},
        headers=as_admin,
    )
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    resp = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": created["client"]["client_id"],
            "client_secret": created["client_secret"],
        },
    )
    assert resp.status == 200, await resp.text()
    as_client = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}
    resp = await client.post(
        "/api/v1/webhooks", json={"url": receiver.url("/hooks"), "event_types": ["*"]}, headers=as_client
    )
    assert resp.status == 201, await resp.text()
    subscription_id = (await resp.json())["id"]

    # Cases: one with a photo and an Idempotency-Key through its whole life, one filed by the client.
    form = aiohttp.FormData()
    form.add_field("file", png(), filename="photo.png", content_type="image/png")
    resp = await client.post("/api/v1/uploads", data=form, headers=as_wechat)
    assert resp.status == 201, await resp.text()
    photo = (await resp.json())["id"]
    body = {**await case_body(ctx, division_code="340102001"), "photos": [photo]}
    resp = await client.post("/api/v1/cases", json=body, headers={**as_wechat, "Idempotency-Key": "first-filing"})
    assert resp.status == 201, await resp.text()
    case_id = (await resp.json())["id"]
    await act(client, settings, head, case_id, "accept")
    await act(client, settings, head, case_id, "assign", {"assignee_id": staff_ids["worker"]})
    await act(client, settings, supervisor, case_id, "urge")
    form = aiohttp.FormData()
    form.add_field("file", png(), filename="result.png", content_type="image/png")
    resp = await client.post("/api/v1/uploads", data=form, headers=worker)
    assert resp.status == 201, await resp.text()
    result_photo = (await resp.json())["id"]
    await act(
        client, settings, worker, case_id, "resolve", {"result": "已上门，问题已解决。", "photos": [result_photo]}
    )
    await act(client, settings, wechat_resident, case_id, "rate", {"rating": 5, "comment": "很满意"})
    resp = await client.post("/api/v1/cases", json=await case_body(ctx, division_code="340102001"), headers=as_client)
    assert resp.status == 201, await resp.text()
    resp = await client.post(
        "/api/v1/cases",
        json=await case_body(ctx, division_code="340102001"),
        headers=bearer_for(settings, phone_resident),
    )
    assert resp.status == 201, await resp.text()
    case_id_open = (await resp.json())["id"]
    await act(client, settings, head, case_id_open, "accept")

    # The visit register: a person, this period's schedule, a visit whose need opens a case.
    resp = await client.post("/api/v1/elders", json=elder_body("340102001"), headers=worker)
    assert resp.status == 201, await resp.text()
    elder_id = (await resp.json())["id"]
    await client.get(f"/api/v1/elders/{elder_id}?reveal=true", headers=head)
    await schedule_period(ctx=ctx, at=ctx.now())
    care = await catalog.get_service(ctx=ctx, code="elderly_home_visit")
    need = {"service_code": care.code, "note": "需要助餐服务", "answers": example_answers(care)}
    resp = await client.post(
        "/api/v1/visits",
        json={
            "elder_id": elder_id,
            "method": "home",
            "visited_at": ctx.now().isoformat(),
            "reached": True,
            "needs": [need],
        },
        headers=worker,
    )
    assert resp.status == 201, await resp.text()

    # The volunteer service: a volunteer, a team, an activity from a case, attendance, hours, a certificate.
    resp = await client.post("/api/v1/volunteers", headers=bearer_for(settings, phone_resident), json={
        "name": "李志愿", "id_card": id_card("19900101", 77),
        "phone": "13712345678", "township": "340102001",
    })  # fmt: skip
    assert resp.status == 201, await resp.text()
    volunteer_id = (await resp.json())["id"]
    resp = await client.post(
        "/api/v1/volunteer-teams", json={"name": "明光路志愿服务队", "organiser_ids": [volunteer_id]}, headers=worker
    )
    assert resp.status == 201, await resp.text()
    team_id = (await resp.json())["id"]
    now = ctx.now()
    resp = await client.post("/api/v1/volunteer-activities/from-case", headers=worker, json={
        "case_id": case_id_open, "title": "代买药品", "team_id": team_id, "slots": 2,
        "start_at": (now - timedelta(hours=2)).isoformat(), "end_at": (now + timedelta(hours=1)).isoformat(),
    })  # fmt: skip
    assert resp.status == 201, await resp.text()
    activity_id = (await resp.json())["id"]
    resp = await client.post(
        f"/api/v1/volunteer-activities/{activity_id}/signups", headers=bearer_for(settings, phone_resident)
    )
    assert resp.status == 201, await resp.text()
    resp = await client.post(
        f"/api/v1/volunteer-signups/{(await resp.json())['id']}/decision", json={"decision": "confirm"}, headers=worker
    )
    assert resp.status == 200, await resp.text()
    resp = await client.post(f"/api/v1/volunteer-activities/{activity_id}/attendance", headers=worker, json={
        "volunteer_id": volunteer_id, "check_in_at": (now - timedelta(hours=2)).isoformat(),
        "check_out_at": (now - timedelta(minutes=30)).isoformat(),
    })  # fmt: skip
    assert resp.status == 201, await resp.text()
    resp = await client.post(f"/api/v1/volunteer-attendance/{(await resp.json())['id']}/confirm", headers=worker)
    assert resp.status == 200, await resp.text()
    resp = await client.post(
        f"/api/v1/volunteers/{volunteer_id}/record-entries",
        json={"kind": "training", "text": "应急救护培训", "on": now.date().isoformat()},
        headers=worker,
    )
    assert resp.status == 201, await resp.text()
    today = now.astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    resp = await client.post(
        f"/api/v1/volunteers/{volunteer_id}/certificates",
        json={"period_from": "2026-01-01", "period_to": today},
        headers=worker,
    )
    assert resp.status == 201, await resp.text()
    resp = await client.post(
        f"/api/v1/volunteer-certificates/{(await resp.json())['id']}/revoke",
        json={"reason": "重新出具"},
        headers=worker,
    )
    assert resp.status == 200, await resp.text()
    # The station network: the head's record with a site photo and dated documents, a supervisor's return.
    form = aiohttp.FormData()
    form.add_field("file", png(), filename="site.png", content_type="image/png")
    resp = await client.post("/api/v1/uploads", data=form, headers=head)
    assert resp.status == 201, await resp.text()
    site_photo = (await resp.json())["id"]
    document = {"title": "个案服务流程", "issued_on": "2024-03-01", "uploads": [site_photo]}
    resp = await client.patch(
        f"/api/v1/network/stations/{station.id}",
        json={
            "status": "built",
            "dates": {"built": "2024-03-01"},
            "site": {"address": "明光路 8 号", "floor_area_m2": 90, "photos": [site_photo]},
            "workflows": [document],
            "rules": [{**document, "title": "社工站工作制度"}],
        },
        headers=head,
    )
    assert resp.status == 200, await resp.text()
    resp = await client.post(
        f"/api/v1/network/stations/{station.id}/verifications",
        json={"outcome": "returned", "note": "请补充设备清单。"},
        headers=supervisor,
    )
    assert resp.status == 201, await resp.text()

    # The workforce register: the worker's own entry, a programme and session, an enrolment, a figure.
    resp = await client.post(
        "/api/v1/workforce/people",
        json={
            "name": "张敏",
            "id_card": id_card("19900101", 7),
            "employer_kind": "station",
            "division": "340102001",
            "role": "frontline",
            "start_date": "2024-01-01",
            "staff_id": staff_ids["worker"],
        },
        headers=as_admin,
    )
    assert resp.status == 201, await resp.text()
    person_id = (await resp.json())["id"]
    resp = await client.patch(f"/api/v1/workforce/people/{person_id}", json={"role": "manager"}, headers=as_admin)
    assert resp.status == 200, await resp.text()
    resp = await client.post(
        "/api/v1/training/programmes",
        json={"name": "持证社工初级班", "category": "certified", "tier": "beginner"},
        headers=as_admin,
    )
    assert resp.status == 201, await resp.text()
    resp = await client.post(
        f"/api/v1/training/programmes/{(await resp.json())['id']}/sessions",
        json={"starts_on": "2025-04-01", "ends_on": "2025-04-03", "place": "合肥", "hours": 24, "trainer": "王教授"},
        headers=as_admin,
    )
    assert resp.status == 201, await resp.text()
    resp = await client.post(
        f"/api/v1/training/sessions/{(await resp.json())['id']}/enrolments",
        json={"person_id": person_id, "status": "completed"},
        headers=as_admin,
    )
    assert resp.status == 201, await resp.text()
    resp = await client.post(
        "/api/v1/reference-figures/import?dry_run=false",
        data="division,year,older_population,source\n340102,2025,120000,统计年鉴\n".encode(),
        headers={**as_admin, "Content-Type": "text/csv"},
    )
    assert resp.status == 200, await resp.text()

    # The loops: notifications, their sends, webhook deliveries.
    await notify.process_events(ctx=ctx)
    await delivery.deliver_due(ctx=ctx)
    await fan_out_events(ctx=ctx)
    await drain_subscription(ctx=ctx, subscription_id=subscription_id, worker_id="test", limiter=asyncio.Semaphore(1))


async def test_every_reference_finds_the_document_it_names(aiohttp_client: Any, settings: Settings) -> None:
    wechat = await FakeWeChatAPI().start()
    sms = FakeSms()
    await sms.start()
    receiver = WebhookReceiver()
    await receiver.start()
    try:
        live = settings.replace(
            wechat_api_base=wechat.base_url,
            wechat_appid=wechat.appid,
            wechat_secret=wechat.secret,
            wechat_templates=json.dumps({"accepted": "T-ACCEPTED"}),
            sms_sender="http",
            sms_api_base=sms.url,
            quiet_hours="",
        )
        client = await aiohttp_client(create_app(live))
        await _build_world(client, live, receiver)
        db = client.app[CTX].db

        ids: dict[str, set[Any]] = {}
        problems: list[str] = []
        seen: set[tuple[str, str]] = set()
        found: list[tuple[str, str, str]] = []
        for name in sorted(await db.list_collection_names()):
            ids[name] = set()
            async for doc in db[name].find({}):
                ids[name].add(doc["_id"])
                for path, value in _walk(doc):
                    if isinstance(value, ObjectId) and (name, path) not in GRIDFS_INTERNAL:
                        problems.append(f"{name}.{path} holds an ObjectId ({value}); ids are strings")
                    elif _looks_like_reference(value):
                        if (name, path) not in REFERENCES:
                            if path != "_id":
                                problems.append(
                                    f"{name}.{path} holds an id ({value}) but is not declared in REFERENCES"
                                )
                            continue
                        seen.add((name, path))
                        found.append((name, path, value))

        for name, path, value in found:
            kind = REFERENCES[(name, path)]
            person = PERSON.match(value)
            if kind == "person" or (person and kind == "person-or-client"):
                assert person, f"{name}.{path} = {value!r} is not a person key"
                targets: tuple[str, ...] = (PERSON_TARGETS[person.group(1)],)
                value = person.group(2)
            else:
                targets = MIXED.get(kind, (kind,))
            if not any(value in ids.get(t, ()) for t in targets):
                problems.append(f"{name}.{path} = {value!r}: no document with that _id in {', '.join(targets)}")

        unseen = sorted(set(REFERENCES) - seen)
        problems += [f"{name}.{path} is declared but the world never wrote it" for name, path in unseen]
        assert not problems, "\n".join(problems)
    finally:
        await wechat.close()
        await sms.close()
        await receiver.close()
