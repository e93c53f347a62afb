"""Case rules through the API: personal data in every copy, urgent clocks, the service area,
and a routing record that stays true after a dispatch by hand.

Staff, residents and integrator clients are made through the real API (accounts created by
the service, log-in by password, SMS code and client credentials), never with hand-made ids.
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest

from handlers.keys import CTX
from run import create_app
from service.catalog.models import FormField
from service.catalog.service import example_answers, get_service, seed_catalog, update_service
from service.common.models import SYSTEM
from service.identity import tokens
from service.notify import service as notify
from service.notify.outbox import events_by_ids
from tests.factories import bearer, elder_body, login, make_staff, seed_stations
from tests.fakes.sms import FakeSms

CST = timezone(timedelta(hours=8))
TOWNSHIP = "340102001"  # 明光路街道 (瑶海区, 合肥)
OTHER_TOWNSHIP = "340102002"  # 三里街街道, same county
RESIDENT_PHONE = "13912345678"
ANSWER_PHONE = "13687654321"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclasses.dataclass
class World:
    client: Any
    ctx: Any
    sms: FakeSms
    stations: dict[str, str]
    admin: dict[str, str]
    supervisor: dict[str, str]
    head: dict[str, str]
    head_id: str
    worker: dict[str, str]
    worker_id: str
    resident: dict[str, str]

    async def submit(self, code: str, *, headers: dict[str, str] | None = None, expect: int = 201, **extra: Any) -> Any:
        service = await get_service(ctx=self.ctx, code=code)
        answers = example_answers(service)
        for f in service.fields:
            if f.type == "phone":
                answers[f.code] = ANSWER_PHONE
        body: dict[str, Any] = {
            "service_code": code,
            "answers": answers,
            "division_code": TOWNSHIP,
            "address": "合肥市瑶海区明光路1号",
            "contact": {"name": "王芳", "phone": RESIDENT_PHONE},
        }
        if service.booking:
            body["preferred_window"] = {"start": "2026-12-02T09:00:00+08:00", "end": "2026-12-02T11:00:00+08:00"}
        body.update(extra)
        resp = await self.client.post("/api/v1/cases", json=body, headers=headers or self.resident)
        payload = await resp.json()
        assert resp.status == expect, payload
        return payload

    async def read(self, case_id: str, headers: dict[str, str]) -> dict[str, Any]:
        resp = await self.client.get(f"/api/v1/cases/{case_id}", headers=headers)
        payload = await resp.json()
        assert resp.status == 200, payload
        return dict(payload)

    async def act(self, case_id: str, action: str, headers: dict[str, str], **body: Any) -> dict[str, Any]:
        resp = await self.client.post(f"/api/v1/cases/{case_id}/{action}", json=body, headers=headers)
        payload = await resp.json()
        assert resp.status == 200, payload
        return dict(payload)


async def _resident(client: Any, sms: FakeSms, phone: str) -> dict[str, str]:
    assert (await client.post("/api/v1/auth/otp", json={"phone": phone})).status == 202
    resp = await client.post("/api/v1/auth/otp/verify", json={"phone": phone, "code": sms.last_code(phone)})
    assert resp.status == 200, await resp.text()
    return bearer((await resp.json())["access_token"])


async def _staff(client: Any, username: str, role: str, **kw: Any) -> tuple[dict[str, str], str]:
    member = await make_staff(client.app[CTX], username=username, role=role, **kw)
    return bearer((await login(client, username))["access_token"]), member.id


@pytest.fixture
async def world(aiohttp_client: Any, settings: Any, sms: FakeSms) -> World:
    client = await aiohttp_client(create_app(settings.replace(sms_sender="http", sms_api_base=sms.url)))
    ctx = client.app[CTX]
    await seed_catalog(ctx)
    stations = await seed_stations(ctx)
    admin, _ = await _staff(client, "root", "admin")
    supervisor, _ = await _staff(client, "sup.hefei", "supervisor", division_prefix="3401")
    head, head_id = await _staff(client, "head.a", "station_head", station_id=stations[TOWNSHIP])
    worker, worker_id = await _staff(client, "worker.a", "worker", station_id=stations[TOWNSHIP])
    resident = await _resident(client, sms, RESIDENT_PHONE)
    return World(client, ctx, sms, stations, admin, supervisor, head, head_id, worker, worker_id, resident)


# ---------------------------------------------------------------- personal data: one rule for every copy


async def test_a_phone_in_the_answers_is_masked_wherever_the_contact_phone_is(world: World) -> None:
    # 社会组织投诉举报 still asks a phone of its own on the form (reporter_phone), besides the contact.
    case = await world.submit("org_complaint")
    cid = case["id"]
    assert case["answers"]["reporter_phone"] == ANSWER_PHONE  # the resident who filed sees their own
    assert case["contact"]["phone"] == RESIDENT_PHONE
    for who in (world.head, world.worker, world.supervisor, world.admin):
        seen = await world.read(cid, who)
        assert seen["contact"]["phone"] == "139****5678"
        assert seen["answers"]["reporter_phone"] == "136****4321"
        assert seen["answers"]["org_name"] == case["answers"]["org_name"]  # the rest is for helping
    listed = await (await world.client.get("/api/v1/cases", headers=world.supervisor)).json()
    assert [item["answers"]["reporter_phone"] for item in listed["items"]] == ["136****4321"]
    await world.act(cid, "accept", world.worker)
    as_assignee = await world.read(cid, world.worker)
    assert (as_assignee["answers"]["reporter_phone"], as_assignee["contact"]["phone"]) == (ANSWER_PHONE, RESIDENT_PHONE)
    audit = await world.ctx.db["audit_log"].find_one({"target.id": cid, "actor.subject": world.worker_id})
    assert {"contact.phone", "answers.reporter_phone"} <= set(audit["fields"])
    assert (await world.read(cid, world.head))["answers"]["reporter_phone"] == "136****4321"


async def test_a_revoked_token_reads_no_case_and_leaves_no_audit_entry_though_the_read_overlaps_the_check(
    world: World,
) -> None:
    # Case reads start reading while the token's revocation is checked; the answer waits for the check.
    case = await world.submit("org_complaint")
    cid = case["id"]
    await world.act(cid, "accept", world.worker)
    assert (await world.read(cid, world.worker))["contact"]["phone"] == RESIDENT_PHONE  # shown in clear: audited
    audited = {"target.id": cid, "actor.subject": world.worker_id}
    entries = await world.ctx.db["audit_log"].count_documents(audited)
    assert entries >= 1
    await tokens.revoke_subject(ctx=world.ctx, subject=world.worker_id)
    for path in (f"/api/v1/cases/{cid}", "/api/v1/cases/6b0d2c8bf22ef523a798a35d", "/api/v1/cases?limit=5"):
        resp = await world.client.get(path, headers=world.worker)
        assert resp.status == 401 and (await resp.json())["code"] == "token_revoked", path
    assert await world.ctx.db["audit_log"].count_documents(audited) == entries
    resp = await world.client.get("/api/v1/cases/not-an-id?coord_system=mars", headers=world.worker)
    assert resp.status == 401 and (await resp.json())["code"] == "token_revoked"  # not 422: the token comes first


async def test_a_revoked_token_changes_no_case_though_the_actions_read_overlaps_the_check(world: World) -> None:
    # An action reads the case while the token's revocation is checked and writes only after it.
    case = await world.submit("org_complaint")
    cid = case["id"]
    stored = await world.ctx.db["cases"].find_one({"_id": cid})
    events = await world.ctx.db["events"].count_documents({"case_id": cid})
    await tokens.revoke_subject(ctx=world.ctx, subject=world.worker_id)
    for path, body in (
        (f"/api/v1/cases/{cid}/accept", {}),
        (f"/api/v1/cases/{cid}/accept", {"expected_version": 99}),  # would be 409
        (f"/api/v1/cases/{cid}/resolve", {}),  # would be 409 or 422
        ("/api/v1/cases/6b0d2c8bf22ef523a798a35d/accept", {}),  # would be 404
    ):
        resp = await world.client.post(path, json=body, headers=world.worker)
        assert resp.status == 401 and (await resp.json())["code"] == "token_revoked", path
    assert await world.ctx.db["cases"].find_one({"_id": cid}) == stored
    assert await world.ctx.db["events"].count_documents({"case_id": cid}) == events
    # A token that is not revoked acts as before.
    assert (await world.act(cid, "accept", world.head))["status"] == "accepted"


async def test_a_confidential_report_hides_the_reporters_answers_from_station_staff(world: World) -> None:
    case = await world.submit("child_protection_report", anonymous=False)
    cid = case["id"]
    await world.act(cid, "accept", world.worker)
    for who in (world.worker, world.head):
        seen = await world.read(cid, who)
        assert seen["contact"] is None
        assert "reporter_phone" not in seen["answers"]
        assert seen["answers"]["where"] and seen["answers"]["details"]  # what happened is the station's to know
        assert ANSWER_PHONE[-4:] not in str(seen)
    supervisor_view = await world.read(cid, world.supervisor)
    assert supervisor_view["answers"]["reporter_phone"] == "136****4321"
    assert (await world.read(cid, world.resident))["answers"]["reporter_phone"] == ANSWER_PHONE


async def test_an_anonymous_report_stores_no_reporter_phone_at_all(world: World) -> None:
    case = await world.submit("child_protection_report", anonymous=True)
    stored = await world.ctx.db["cases"].find_one({"_id": case["id"]})
    assert "reporter_phone" not in stored["answers"] and stored["contact"] is None
    assert ANSWER_PHONE not in str(stored) and RESIDENT_PHONE not in str(stored)
    assert stored["answers"]["details"]
    assert "reporter_phone" not in case["answers"]
    for who in (world.admin, world.supervisor, world.worker):
        assert ANSWER_PHONE[-4:] not in str(await world.read(case["id"], who))


async def test_a_staff_entered_anonymous_report_is_not_linked_to_the_callers_account(world: World) -> None:
    case = await world.submit("child_protection_report", headers=world.worker, anonymous=True)
    stored = await world.ctx.db["cases"].find_one({"_id": case["id"]})
    assert stored["owner"] is None and stored["contact"] is None


async def test_a_webhook_payload_masks_phones_in_the_answers(world: World) -> None:
    body = {"name": "皖事通 Wanshitong", "scopes": ["cases:read", "cases:write"]}
    issued = await (await world.client.post("/api/v1/clients", json=body, headers=world.admin)).json()
    client_id, secret = issued["client"]["client_id"], issued["client_secret"]
    basic = base64.b64encode(f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()
    resp = await world.client.post(
        "/oauth/token", data="grant_type=client_credentials", headers={"Authorization": f"Basic {basic}", **FORM}
    )
    assert resp.status == 200, await resp.text()
    token = bearer((await resp.json())["access_token"])
    case = await world.submit("org_complaint", headers=token)
    assert world.ctx.case_views is not None
    payload = await world.ctx.case_views.case_for_client(world.ctx, case["id"], client_id)
    assert payload is not None
    assert payload["answers"]["reporter_phone"] == "136****4321"
    assert payload["contact"]["phone"] == "139****5678"


async def test_a_case_opened_from_a_visit_masks_the_register_phone_in_its_contact(world: World) -> None:
    resp = await world.client.post("/api/v1/elders", json=elder_body(TOWNSHIP, flags=["disabled"]), headers=world.admin)
    elder = await resp.json()
    assert resp.status == 201, elder
    visit = {
        "elder_id": elder["id"],
        "method": "phone",
        "visited_at": (datetime.now(CST) - timedelta(minutes=5)).isoformat(),
        "reached": True,
        "needs": [{"service_code": "elderly_home_visit", "note": "希望社工每周上门"}],
    }
    resp = await world.client.post("/api/v1/visits", json=visit, headers=world.admin)
    recorded = await resp.json()
    assert resp.status == 201, recorded
    [case_id] = recorded["case_ids"]
    register_phone = elder_body(TOWNSHIP)["phone"]
    stored = await world.ctx.db["cases"].find_one({"_id": case_id})
    assert (stored["contact"]["phone"], stored["address"]) == (register_phone, elder_body(TOWNSHIP)["address"])
    assert "contact_phone" not in stored["answers"] and "address" not in stored["answers"]  # asked once
    for who in (world.supervisor, world.head, world.worker):
        seen = await world.read(case_id, who)
        assert seen["contact"]["phone"] == register_phone[:3] + "****" + register_phone[-4:]
        assert register_phone not in str(seen)


async def test_the_service_definition_marks_personal_fields(world: World) -> None:
    resp = await world.client.get("/api/v1/services/child_protection_report", headers=world.resident)
    fields = {f["code"]: f for f in (await resp.json())["fields"]}
    assert (fields["reporter_phone"]["personal"], fields["reporter_phone"]["reporter"]) == ("phone", True)
    assert (fields["where"]["personal"], fields["where"]["reporter"]) == ("address", False)
    assert fields["details"]["personal"] is None
    bad = {"fields": [{"code": "tel", "type": "phone", "label_zh": "电话", "label_en": "Tel", "personal": "name"}]}
    resp = await world.client.patch("/api/v1/services/org_complaint", json=bad, headers=world.admin)
    problem = await resp.json()
    assert resp.status == 422 and problem["code"] == "invalid_service", problem


# ---------------------------------------------------------------- urgent services run on calendar time


FRIDAY_EVENING = datetime(2026, 12, 4, 18, 0, tzinfo=CST)  # a Friday, after office hours


async def test_an_emergency_filed_on_friday_evening_is_due_that_evening_not_on_monday(world: World) -> None:
    world.ctx.clock = lambda: FRIDAY_EVENING
    emergency = await world.submit("elderly_emergency")
    assert emergency["service"]["clock"] == "calendar"
    assert datetime.fromisoformat(emergency["sign_due_at"]) == FRIDAY_EVENING + timedelta(hours=1)
    assert datetime.fromisoformat(emergency["resolve_due_at"]) == FRIDAY_EVENING + timedelta(days=1)
    report = await world.submit("child_protection_report")
    assert datetime.fromisoformat(report["sign_due_at"]) == FRIDAY_EVENING + timedelta(hours=2)
    ordinary = await world.submit("elderly_home_visit")
    assert ordinary["service"]["clock"] == "working"
    assert datetime.fromisoformat(ordinary["sign_due_at"]) > datetime(2026, 12, 7, 8, 30, tzinfo=CST)


async def test_notices_of_an_urgent_service_are_flagged_to_skip_sms_quiet_hours(world: World) -> None:
    late = datetime(2026, 12, 4, 23, 0, tzinfo=CST)  # inside the default 21:00-08:00 quiet hours
    world.ctx.clock = lambda: late
    for code, urgent in (("elderly_emergency", True), ("elderly_home_visit", False)):
        case = await world.submit(code)
        await world.act(case["id"], "accept", world.worker)
        accepted = await world.ctx.db["events"].find_one({"case_id": case["id"], "type": "case.accepted"})
        [event] = (await events_by_ids(ctx=world.ctx, event_ids=[accepted["_id"]])).values()
        notices = await notify.notifications_for(ctx=world.ctx, event=event)
        assert notices, code
        assert {n.urgent for n in notices} == {urgent}, code
        # An urgent SMS may leave now; another waits for the end of quiet hours.
        held_until = late if urgent else datetime(2026, 12, 5, 8, 0, tzinfo=CST)
        [sms] = [n for n in notices if n.channel == "sms"]  # the resident logged in by phone
        assert (sms.urgent, sms.not_before) == (urgent, held_until), code


# ---------------------------------------------------------------- where a case could vanish


BEIJING = {"lon": 116.397, "lat": 39.909, "coord_system": "wgs84"}


async def test_a_location_outside_the_service_area_is_refused_at_filing_and_writes_nothing(world: World) -> None:
    resp = await world.client.post(
        "/api/v1/routing/preview",
        json={"service_code": "elderly_home_visit", "location": BEIJING},
        headers=world.supervisor,
    )
    preview = await resp.json()
    assert resp.status == 200 and preview["in_service_area"] is False, preview
    assert "不在服务范围" in preview["reason"]
    problem = await world.submit("elderly_home_visit", division_code=None, location=BEIJING, expect=422)
    assert problem["code"] == "outside_service_area"
    assert "location" in problem["errors"]
    assert await world.ctx.db["cases"].count_documents({}) == 0
    assert await world.ctx.db["events"].count_documents({}) == 0


async def test_a_manual_dispatch_keeps_the_system_decision_and_names_the_new_station(world: World) -> None:
    case = await world.submit("elderly_home_visit")
    first = case["routing"]
    target = world.stations[OTHER_TOWNSHIP]
    dispatched = await world.act(case["id"], "dispatch", world.supervisor, station_id=target)
    routing = dispatched["routing"]
    assert routing["method"] == "manual"
    assert (routing["station_id"], dispatched["station_id"]) == (target, target)
    assert routing["station_name"] == dispatched["station_name"] == "三里街街道社工站"
    assert routing["dispatched_by"] == {"role": "supervisor"} and routing["dispatched_at"]
    assert routing["system"]["method"] == first["method"] == "division"
    assert routing["system"]["station_id"] == world.stations[TOWNSHIP]
    again = await world.act(case["id"], "dispatch", world.supervisor, station_id=world.stations[TOWNSHIP])
    assert again["routing"]["system"] == routing["system"]  # the system's own decision is kept once


async def test_a_station_head_who_signs_for_a_case_becomes_its_assignee(world: World) -> None:
    case = await world.submit("elderly_home_visit")
    accepted = await world.act(case["id"], "accept", world.head)
    assert accepted["assignee_id"] == world.head_id
    assert accepted["contact"]["phone"] == RESIDENT_PHONE  # the assignee may call
    assert "resolve" in accepted["allowed_actions"]


async def test_seeding_again_upgrades_built_in_services_stored_before_clocks(world: World) -> None:
    # A catalogue stored by an earlier release: no clock, no personal-field marks.
    await world.ctx.db["service_types"].update_many(
        {}, {"$unset": {"clock": "", "fields.$[].personal": "", "fields.$[].reporter": ""}}
    )
    assert (await get_service(ctx=world.ctx, code="elderly_emergency")).clock == "working"
    report = await seed_catalog(world.ctx)
    assert "upgraded" in report
    emergency = await get_service(ctx=world.ctx, code="elderly_emergency")
    assert (emergency.clock, emergency.version) == ("calendar", 2)
    guardian = next(
        f
        for f in (await get_service(ctx=world.ctx, code="child_unsupported_support")).fields
        if f.code == "guardian_name"
    )
    assert (guardian.personal, guardian.reporter) == ("name", True)
    await seed_catalog(world.ctx)  # idempotent: nothing more to upgrade
    assert (await get_service(ctx=world.ctx, code="elderly_emergency")).version == 2


async def test_seeding_again_gives_built_in_services_stored_before_service_pages_their_texts(world: World) -> None:
    # A catalogue stored by an earlier release: no icon, conditions, materials or hints.
    await world.ctx.db["service_types"].update_many(
        {},
        {
            "$unset": {
                "icon": "",
                "conditions_zh": "",
                "conditions_en": "",
                "materials_zh": "",
                "materials_en": "",
                "time_limit_zh": "",
                "time_limit_en": "",
                "fields.$[].help_zh": "",
            }
        },
    )
    before = await get_service(ctx=world.ctx, code="dibao_application")
    assert (before.icon, before.materials_zh, before.version) == ("", (), 1)
    assert "upgraded" in await seed_catalog(world.ctx)
    after = await get_service(ctx=world.ctx, code="dibao_application")
    assert (after.icon, after.version) == ("dibao", 2)
    assert "户口簿" in after.materials_zh and after.time_limit_zh.endswith("30 个工作日内办结")
    assert next(f for f in after.fields if f.code == "applicant_id_card").help_zh == "18 位，最后一位可能是 X"
    await seed_catalog(world.ctx)  # idempotent: nothing more to upgrade
    assert (await get_service(ctx=world.ctx, code="dibao_application")).version == 2


async def test_seeding_again_moves_address_and_contact_phone_out_of_built_in_forms(world: World) -> None:
    # A catalogue stored by an earlier release asked address and contact phone on the form too.
    old = await get_service(ctx=world.ctx, code="elderly_home_visit")
    asked_twice = (
        FormField("address", "string", "详细地址", "Street address", required=True, max_length=200, personal="address"),
        FormField("contact_phone", "phone", "联系电话", "Contact phone", required=True),
    )
    await update_service(
        ctx=world.ctx, principal=SYSTEM, code=old.code, changes={"fields": old.fields + asked_twice}
    )
    await world.ctx.db["service_types"].update_many({}, {"$unset": {"address_required": ""}})
    before = await get_service(ctx=world.ctx, code="elderly_home_visit")
    assert (before.address_required, before.version) == (False, 2)
    assert {"address", "contact_phone"} <= {f.code for f in before.fields}
    report = await seed_catalog(world.ctx)
    assert "upgraded" in report
    after = await get_service(ctx=world.ctx, code="elderly_home_visit")
    assert (after.address_required, after.version) == (True, 3)
    assert [f.code for f in after.fields] == [f.code for f in old.fields]
    allowance = await get_service(ctx=world.ctx, code="elderly_age_allowance")
    assert (allowance.address_required, allowance.version) == (False, 2)
    await seed_catalog(world.ctx)  # idempotent: nothing more to upgrade
    assert (await get_service(ctx=world.ctx, code="elderly_home_visit")).version == 3
    problem = await world.submit("elderly_home_visit", address=None, expect=422)
    assert problem["code"] == "address_required" and "address" in problem["errors"], problem
    assert await world.ctx.db["cases"].count_documents({}) == 0
