"""Volunteer service against the real servers: from publication to certificate, codes, hours, corrections."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from pypdf.generic import ContentStream

from config import Settings
from handlers.keys import CTX
from service.common.context import Context
from service.volunteers.models import Activity
from service.webhooks.delivery import deliver_once
from tests.factories import (
    TOWNSHIP,
    bearer_for,
    events_about,
    id_card,
    make_activity,
    make_case,
    make_client,
    make_confirmed_volunteer,
    make_phone_resident,
    make_staff,
    make_station,
    make_volunteer,
)
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers_webhooks import subscribe

LOCAL = ZoneInfo("Asia/Shanghai")
UNKNOWN_ID = "65a0c0ffee0000000000beef"


@dataclasses.dataclass
class World:
    client: Any
    settings: Settings
    ctx: Context
    station: Any
    worker: Any
    other_station: Any
    other_worker: Any

    def auth(self, who: Any) -> dict[str, str]:
        return bearer_for(self.settings, who)

    async def call(self, method: str, path: str, who: Any = None, **kw: Any) -> tuple[int, Any]:
        headers = {**(self.auth(who) if who is not None else {}), **kw.pop("headers", {})}
        resp = await self.client.request(method, path, headers=headers, **kw)
        if resp.content_type.endswith("json"):
            return resp.status, await resp.json()
        return resp.status, await resp.read()

    def shift_clock(self, delta: timedelta) -> None:
        fixed = datetime.now(UTC) + delta
        self.ctx.clock = lambda: fixed

    async def code(self, activity_id: str, purpose: str = "in") -> str:
        status, body = await self.call(
            "GET", f"/api/v1/volunteer-activities/{activity_id}/checkin-code?purpose={purpose}", self.worker
        )
        assert status == 200, body
        return str(body["code"])

    async def scan(self, resident: Any, code: str) -> tuple[int, Any]:
        return await self.call("POST", "/api/v1/volunteer-checkins", resident, json={"code": code})


@pytest.fixture
async def world(client: Any, settings: Settings) -> World:
    ctx = client.app[CTX]
    station = await make_station(ctx)
    other = await make_station(ctx, code="341002002", name="老街街道社工站", point=(118.33, 29.71))
    return World(
        client=client,
        settings=settings,
        ctx=ctx,
        station=station,
        worker=await make_staff(ctx, station_id=station.id),
        other_station=other,
        other_worker=await make_staff(ctx, station_id=other.id),
    )


def _pdf_text(data: bytes) -> str:
    """The text a viewer copies out of the PDF: every shown string decoded through its font's ToUnicode map.

    The certificate's font is a CID-keyed CFF font with an embedded encoding CMap (2-byte codes),
    which pypdf's ``extract_text`` reads as 1-byte codes; the ToUnicode map is what viewers use for
    copying and search, so the test reads the strings through it. Whitespace is dropped.
    """
    reader = PdfReader(io.BytesIO(data))
    out: list[str] = []
    for page in reader.pages:
        maps: dict[str, dict[int, str]] = {}
        for name, font in page["/Resources"]["/Font"].items():
            cmap = font.get_object()["/ToUnicode"].get_object().get_data().decode("latin-1")
            maps[name] = {
                int(code, 16): bytes.fromhex(uni).decode("utf-16-be")
                for code, uni in re.findall(r"<([0-9A-Fa-f]{4})>\s*<([0-9A-Fa-f]+)>", cmap)
            }
        current: dict[int, str] = {}
        for operands, operator in ContentStream(page.get_contents(), reader).operations:
            if operator == b"Tf":
                current = maps[str(operands[0])]
            elif operator in (b"Tj", b"TJ"):
                strings = operands[0] if operator == b"TJ" else [operands[0]]
                for item in strings:
                    if not isinstance(item, bytes | str):
                        continue  # a TJ kerning number
                    raw = item if isinstance(item, bytes) else item.get_original_bytes()  # type: ignore[attr-defined]
                    out.extend(current.get(int.from_bytes(raw[i : i + 2], "big"), "") for i in range(0, len(raw), 2))
    return re.sub(r"\s+", "", "".join(out))


def _embedded_fonts(data: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(data))
    found = []
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            for desc in font.get("/DescendantFonts", []):
                descriptor = desc.get_object()["/FontDescriptor"]
                if any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                    found.append(str(descriptor["/FontName"]))
    return found


async def test_an_activity_from_publication_to_a_revoked_certificate(world: World) -> None:
    w = world
    resident = await make_phone_resident(w.ctx)
    status, volunteer = await w.call(
        "POST",
        "/api/v1/volunteers",
        resident,
        json={
            "name": "李志愿",
            "id_card": id_card("19900101", 11, region="341002"),
            "phone": "13712345678",
            "skills": ["companionship", "errands"],
            "availability": "周末",
            "township": TOWNSHIP,
        },
    )
    assert status == 201, volunteer
    assert volunteer["id_card_masked"] == "3410**********" + id_card("19900101", 11, region="341002")[-4:]
    assert "id_card" not in volunteer and volunteer["station_id"] == w.station.id

    now = datetime.now(UTC)
    status, activity = await w.call(
        "POST",
        "/api/v1/volunteer-activities",
        w.worker,
        json={
            "title": "重阳节敬老院陪伴",
            "scenario": "elderly",
            "content": "陪老人聊天、读报",
            "location": "昱东街道敬老院",
            "start_at": (now - timedelta(minutes=30)).isoformat(),
            "end_at": (now + timedelta(hours=2, minutes=30)).isoformat(),
            "slots": 5,
        },
    )
    assert status == 201, activity
    status, signup = await w.call("POST", f"/api/v1/volunteer-activities/{activity['id']}/signups", resident)
    assert (status, signup["status"]) == (201, "pending")
    status, signup = await w.call(
        "POST", f"/api/v1/volunteer-signups/{signup['id']}/decision", w.worker, json={"decision": "confirm"}
    )
    assert (status, signup["status"]) == (200, "confirmed")

    status, attendance = await w.scan(resident, await w.code(activity["id"], "in"))
    assert (status, attendance["status"]) == (200, "checked_in"), attendance

    w.shift_clock(timedelta(hours=2))  # two hours later, at the same place
    status, attendance = await w.scan(resident, await w.code(activity["id"], "out"))
    assert (status, attendance["status"], attendance["hours"]) == (200, "checked_out", 2.0), attendance

    status, attendance = await w.call("POST", f"/api/v1/volunteer-attendance/{attendance['id']}/confirm", w.worker)
    assert (status, attendance["status"], attendance["hours"]) == (200, "confirmed", 2.0), attendance

    today = w.ctx.now().astimezone(LOCAL).date()
    status, cert = await w.call(
        "POST",
        f"/api/v1/volunteers/{volunteer['id']}/certificates",
        w.worker,
        json={"period_from": (today - timedelta(days=30)).isoformat(), "period_to": today.isoformat()},
    )
    assert status == 201, cert
    assert re.fullmatch(r"ZYZM-341002001-\d{4}-000001", cert["number"])
    assert cert["total_hours"] == 2.0 and cert["status"] == "valid"
    assert cert["organisation"] == w.station.name

    status, pdf = await w.call("GET", f"/api/v1/volunteer-certificates/{cert['id']}/pdf", resident)
    assert status == 200 and pdf[:5] == b"%PDF-"
    text = _pdf_text(pdf)
    for required in (
        "志愿服务记录证明",
        cert["number"],
        cert["verification_code"],
        "李志愿",
        volunteer["id_card_masked"],
        "重阳节敬老院陪伴",
        "陪老人聊天、读报",
        "昱东街道敬老院",
        "服务时长合计",
        "2小时",
        w.station.name,
        f"{cert['period_from']}至{cert['period_to']}",
        f"/verify/{cert['verification_code']}",
    ):
        assert required in text, required
    assert any("NotoSansSC" in name for name in _embedded_fonts(pdf)), "the CJK font is embedded"
    assert len(PdfReader(io.BytesIO(pdf)).pages[0].images) >= 1, "the QR code is on the page"

    verify = f"/verify/{cert['verification_code']}"
    status, seen = await w.call("GET", verify, headers={"Accept": "application/json"})
    assert status == 200, seen
    assert seen["valid"] is True and seen["status"] == "valid"
    assert seen["name_masked"] == "李**" and seen["total_hours"] == 2.0
    assert seen["organisation"] == w.station.name
    assert not {"id_card_masked", "volunteer_id", "services", "phone", "volunteer_name"} & set(seen)
    status, page = await w.call("GET", verify)
    assert status == 200 and "有效".encode() in page and "李志愿".encode() not in page

    status, revoked = await w.call(
        "POST", f"/api/v1/volunteer-certificates/{cert['id']}/revoke", w.worker, json={"reason": "记录有误，重新出具"}
    )
    assert (status, revoked["status"]) == (200, "revoked")
    status, seen = await w.call("GET", verify + "?format=json")
    assert status == 200 and seen["valid"] is False and seen["status"] == "revoked"
    assert seen["revoked_reason"] == "记录有误，重新出具"
    status, page = await w.call("GET", verify)
    assert "已撤销".encode() in page
    status, again = await w.call(
        "POST", f"/api/v1/volunteer-certificates/{cert['id']}/revoke", w.worker, json={"reason": "again"}
    )
    assert (status, again["code"]) == (409, "certificate_revoked")

    assert [e.type for e in await events_about(w.ctx, "certificate", cert["id"])] == [
        "certificate.issued",
        "certificate.revoked",
    ]
    assert [e.type for e in await events_about(w.ctx, "attendance", attendance["id"])] == ["volunteer.hours_confirmed"]
    status, missing = await w.call("GET", "/verify/ABCDEFGHJKMN")
    assert (status, missing["code"]) == (404, "certificate_not_found")


async def test_a_replayed_expired_or_forged_check_in_code_is_refused(world: World) -> None:
    w = world
    activity = await make_activity(w.ctx, w.worker)
    resident, _ = await make_confirmed_volunteer(w.ctx, activity, w.worker)
    code = await w.code(activity.id)
    assert (await w.scan(resident, code))[0] == 200
    status, body = await w.scan(resident, code)
    assert (status, body["code"]) == (409, "checkin_code_used")

    stale = await w.code(activity.id, "out")
    w.shift_clock(timedelta(seconds=w.settings.volunteer_checkin_code_seconds + 1))
    status, body = await w.scan(resident, stale)
    assert (status, body["code"]) == (409, "checkin_code_expired")

    head, payload, sig = (await w.code(activity.id, "out")).split(".")
    status, body = await w.scan(resident, f"{head}.{payload}.{sig[::-1]}")
    assert (status, body["code"]) == (422, "checkin_code_invalid")

    stranger, _ = await make_volunteer(w.ctx)  # a friend sent a photo of the screen
    status, body = await w.scan(stranger, await w.code(activity.id))
    assert (status, body["code"]) == (403, "not_confirmed")
    status, listed = await w.call("GET", f"/api/v1/volunteer-activities/{activity.id}/attendance", w.worker)
    assert [a["status"] for a in listed["items"]] == ["checked_in"]


async def test_fifty_concurrent_check_ins_lose_none_and_double_none(world: World) -> None:
    w = world
    activity = await make_activity(w.ctx, w.worker, slots=60)
    people = [await make_confirmed_volunteer(w.ctx, activity, w.worker) for _ in range(50)]
    code = await w.code(activity.id)
    first = await asyncio.gather(*(w.scan(resident, code) for resident, _ in people))
    assert [s for s, _ in first] == [200] * 50, [b for s, b in first if s != 200][:3]
    # Everyone scans again at once, with the same code and with a fresh one: nobody is counted twice.
    fresh = await w.code(activity.id)
    again = await asyncio.gather(*(w.scan(resident, c) for resident, _ in people for c in (code, fresh)))
    assert sorted({b["code"] for _, b in again}) == ["already_checked_in", "checkin_code_used"]
    _, listed = await w.call("GET", f"/api/v1/volunteer-activities/{activity.id}/attendance", w.worker)
    ids = [a["volunteer_id"] for a in listed["items"]]
    assert len(ids) == 50 and set(ids) == {v.id for _, v in people}


async def _checked_out(w: World, activity: Activity, hours: float = 2.0) -> tuple[Any, Any, dict[str, Any]]:
    resident, volunteer = await make_confirmed_volunteer(w.ctx, activity, w.worker)
    assert (await w.scan(resident, await w.code(activity.id)))[0] == 200
    w.shift_clock(timedelta(hours=hours))
    status, attendance = await w.scan(resident, await w.code(activity.id, "out"))
    assert status == 200, attendance
    return resident, volunteer, attendance


def service_day(attendance: dict[str, Any]) -> str:
    """The local day a certificate counts this service on: the day of its check-in in China's time
    (not the test's clock now, which the check-out moved on, maybe past midnight)."""
    return datetime.fromisoformat(attendance["check_in_at"]).astimezone(LOCAL).date().isoformat()


async def test_a_volunteer_cannot_change_hours(world: World) -> None:
    w = world
    activity = await make_activity(w.ctx, w.worker)
    resident, _, attendance = await _checked_out(w, activity)
    path = f"/api/v1/volunteer-attendance/{attendance['id']}"
    status, body = await w.call("POST", path + "/confirm", resident, json={"hours": 2.5})
    assert (status, body["code"]) == (403, "not_organiser")
    status, body = await w.call("POST", path + "/corrections", resident, json={"hours": 2.5, "reason": "我多干了"})
    assert (status, body["code"]) == (403, "not_organiser")
    status, body = await w.call("PATCH", path, resident, json={"hours": 2.5})
    assert status == 405
    status, body = await w.call("POST", f"/api/v1/volunteer-activities/{activity.id}/attendance", resident, json={
        "volunteer_id": attendance["volunteer_id"],
        "check_in_at": activity.start_at.isoformat(),
        "check_out_at": activity.end_at.isoformat(),
    })  # fmt: skip
    assert (status, body["code"]) == (403, "not_organiser")
    status, seen = await w.call("GET", path, resident)
    assert (seen["hours"], seen["status"], seen["version"]) == (
        attendance["hours"],
        "checked_out",
        attendance["version"],
    )


async def test_a_correction_keeps_the_old_value_in_the_history(world: World) -> None:
    w = world
    activity = await make_activity(w.ctx, w.worker)
    resident, _, attendance = await _checked_out(w, activity)
    path = f"/api/v1/volunteer-attendance/{attendance['id']}"
    status, confirmed = await w.call("POST", path + "/confirm", w.worker)
    assert (status, confirmed["hours"]) == (200, 2.0)

    status, asked = await w.call(
        "POST", path + "/correction-requests", resident, json={"reason": "我提前离开了半小时", "proposed_hours": 1.5}
    )
    assert status == 200 and asked["hours"] == 2.0, "a request changes nothing by itself"
    status, corrected = await w.call(
        "POST", path + "/corrections", w.worker, json={"hours": 1.5, "reason": "志愿者申请更正：提前离开"}
    )
    assert (status, corrected["hours"]) == (200, 1.5), corrected
    history = corrected["history"]
    assert [h["action"] for h in history] == [
        "check_in",
        "check_out",
        "confirmed",
        "correction_requested",
        "corrected",
    ]
    assert history[:4] == asked["history"], "earlier entries are never edited"
    last = history[-1]
    assert last["changes"]["hours"] == {"old": 2.0, "new": 1.5}
    assert last["reason"] == "志愿者申请更正：提前离开" and last["by"]["role"] == "worker"
    events = await events_about(w.ctx, "attendance", attendance["id"])
    assert [e.type for e in events] == [
        "volunteer.hours_confirmed",
        "volunteer.correction_requested",
        "volunteer.hours_corrected",
    ]
    assert events[-1].data["old_hours"] == 2.0 and events[-1].data["hours"] == 1.5


async def test_bad_input_gets_problems_and_writes_nothing(world: World) -> None:
    w = world
    activity = await make_activity(w.ctx, w.worker)
    resident, volunteer, attendance = await _checked_out(w, activity)
    path = f"/api/v1/volunteer-attendance/{attendance['id']}"

    # Hours beyond the activity's length (3 hours).
    status, body = await w.call("POST", path + "/confirm", w.worker, json={"hours": 3.5})
    assert (status, body["code"]) == (422, "hours_exceed_activity") and "hours" in body["errors"]
    status, seen = await w.call("GET", path, w.worker)
    assert (seen["status"], seen["hours"], seen["version"]) == ("checked_out", 2.0, attendance["version"])

    # Overlapping attendance: the same volunteer at another activity at the same time.
    other = await make_activity(w.ctx, w.worker, title="社区清洁")
    await make_signup_confirmed(w, other, resident)
    status, body = await w.call(
        "POST",
        f"/api/v1/volunteer-activities/{other.id}/attendance",
        w.worker,
        json={
            "volunteer_id": volunteer.id,
            "check_in_at": (other.start_at + timedelta(minutes=40)).isoformat(),
            "check_out_at": (other.start_at + timedelta(hours=2)).isoformat(),
        },
    )
    assert (status, body["code"]) == (409, "attendance_overlap"), body
    status, listed = await w.call("GET", f"/api/v1/volunteer-activities/{other.id}/attendance", w.worker)
    assert listed["items"] == []

    # Unknown team.
    status, before = await w.call("GET", "/api/v1/volunteer-activities?limit=100", w.worker)
    body_json = {
        "title": "助老",
        "scenario": "elderly",
        "content": "探访",
        "start_at": activity.start_at.isoformat(),
        "end_at": activity.end_at.isoformat(),
        "slots": 3,
        "team_id": UNKNOWN_ID,
    }
    status, body = await w.call("POST", "/api/v1/volunteer-activities", w.worker, json=body_json)
    assert (status, body["code"]) == (422, "unknown_team") and "team_id" in body["errors"]
    for bad, code in (
        ({"end_at": activity.start_at.isoformat(), "team_id": None}, "invalid_activity"),
        ({"slots": 0, "team_id": None}, "validation_failed"),
        ({"team_id": None, "budget": 5}, "unknown_field"),
    ):
        status, body = await w.call("POST", "/api/v1/volunteer-activities", w.worker, json={**body_json, **bad})
        assert (status, body["code"]) == (422, code), body
    status, after = await w.call("GET", "/api/v1/volunteer-activities?limit=100", w.worker)
    assert [a["id"] for a in after["items"]] == [a["id"] for a in before["items"]]

    # Wrong organisation certifying: another station did not record this service.
    await w.call("POST", path + "/confirm", w.worker)
    day = service_day(attendance)
    period = {"period_from": day, "period_to": day}
    status, body = await w.call(
        "POST",
        f"/api/v1/volunteers/{volunteer.id}/certificates",
        w.other_worker,
        json={**period, "station_id": w.station.id},
    )
    assert (status, body["code"]) == (403, "not_recording_organisation")
    status, body = await w.call("POST", f"/api/v1/volunteers/{volunteer.id}/certificates", w.other_worker, json=period)
    assert (status, body["code"]) == (422, "no_records_in_period")
    status, body = await w.call("POST", f"/api/v1/volunteers/{volunteer.id}/certificates", resident, json=period)
    assert (status, body["code"]) == (403, "role_not_allowed")
    status, record = await w.call("GET", f"/api/v1/volunteers/{volunteer.id}/record", resident)
    assert status == 200 and record["certificates"] == [] and record["total_hours"] == 2.0

    # A second registration of the same person, a bad ID number.
    status, body = await w.call("POST", "/api/v1/volunteers", resident, json={
        "name": "李志愿", "id_card": id_card("19900101", 999, region="341002"), "phone": "13700000000",
        "township": TOWNSHIP,
    })  # fmt: skip
    assert (status, body["code"]) == (409, "volunteer_exists")
    newcomer = await make_phone_resident(w.ctx)
    status, body = await w.call("POST", "/api/v1/volunteers", newcomer, json={
        "name": "王五", "id_card": "341002199001010000", "phone": "13700000001", "township": TOWNSHIP,
    })  # fmt: skip
    assert (status, body["code"]) == (422, "invalid_id_card")
    status, body = await w.call("GET", "/api/v1/volunteers/me", newcomer)
    assert (status, body["code"]) == (403, "not_a_volunteer")


async def make_signup_confirmed(w: World, activity: Activity, resident: Any) -> None:
    status, signup = await w.call("POST", f"/api/v1/volunteer-activities/{activity.id}/signups", resident)
    assert status == 201, signup
    status, body = await w.call(
        "POST", f"/api/v1/volunteer-signups/{signup['id']}/decision", w.worker, json={"decision": "confirm"}
    )
    assert status == 200, body


async def test_a_full_activity_puts_sign_ups_on_the_waiting_list(world: World) -> None:
    w = world
    activity = await make_activity(w.ctx, w.worker, slots=1, start_at=datetime.now(UTC) + timedelta(days=2),
                                   end_at=datetime.now(UTC) + timedelta(days=2, hours=2))  # fmt: skip
    first, _ = await make_confirmed_volunteer(w.ctx, activity, w.worker)
    late, _ = await make_volunteer(w.ctx)
    status, waiting = await w.call("POST", f"/api/v1/volunteer-activities/{activity.id}/signups", late)
    assert (status, waiting["status"]) == (201, "waitlisted")
    status, body = await w.call(
        "POST", f"/api/v1/volunteer-signups/{waiting['id']}/decision", w.worker, json={"decision": "confirm"}
    )
    assert (status, body["code"]) == (409, "activity_full")
    status, mine = await w.call("GET", f"/api/v1/volunteer-activities/{activity.id}/signups", first)
    status, cancelled = await w.call("POST", f"/api/v1/volunteer-signups/{mine['items'][0]['id']}/cancel", first)
    assert (status, cancelled["status"]) == (200, "cancelled")
    status, listed = await w.call("GET", f"/api/v1/volunteer-activities/{activity.id}/signups", w.worker)
    assert {s["id"]: s["status"] for s in listed["items"]}[waiting["id"]] == "pending"
    status, body = await w.call(
        "POST", f"/api/v1/volunteer-signups/{waiting['id']}/decision", w.worker, json={"decision": "confirm"}
    )
    assert (status, body["status"]) == (200, "confirmed")


async def test_a_case_becomes_a_volunteer_task_and_its_history_says_so(world: World) -> None:
    w = world
    resident = await make_phone_resident(w.ctx)
    case = await make_case(w.ctx, resident)
    now = datetime.now(UTC)
    status, activity = await w.call(
        "POST",
        "/api/v1/volunteer-activities/from-case",
        w.worker,
        json={
            "case_id": case["id"],
            "title": "为独居老人代买药品",
            "start_at": (now + timedelta(hours=1)).isoformat(),
            "end_at": (now + timedelta(hours=2)).isoformat(),
        },
    )
    assert status == 201, activity
    assert activity["case_id"] == case["id"] and activity["station_id"] == w.station.id
    assert activity["scenario"] == "elderly"
    status, seen = await w.call("GET", f"/api/v1/cases/{case['id']}", w.worker)
    notes = [h for h in seen["history"] if h["action"] == "note"]
    assert notes and "志愿服务任务" in notes[-1]["note"] and activity["id"] in notes[-1]["note"]
    later = (now + timedelta(hours=1)).isoformat()
    status, body = await w.call("POST", "/api/v1/volunteer-activities/from-case", w.other_worker, json={
        "case_id": case["id"], "title": "x", "start_at": now.isoformat(), "end_at": later,
    })  # fmt: skip
    assert status in (403, 404) and body["code"] in ("other_station", "case_not_found")


async def test_kpis_and_csv_export_count_confirmed_hours(world: World) -> None:
    w = world
    activity = await make_activity(w.ctx, w.worker)
    _, volunteer, attendance = await _checked_out(w, activity, hours=1.5)
    await w.call("POST", f"/api/v1/volunteer-attendance/{attendance['id']}/confirm", w.worker)
    await make_volunteer(w.ctx)  # registered, never served
    status, kpis = await w.call("GET", "/api/v1/volunteer-kpis", w.worker)
    assert status == 200, kpis
    assert (kpis["registered_volunteers"], kpis["active_volunteers"], kpis["hours"]) == (2, 1, 1.5)
    assert kpis["activities_held"] == 1
    supervisor = await make_staff(w.ctx, role="supervisor")
    status, county = await w.call("GET", "/api/v1/volunteer-kpis?county=341002", supervisor)
    assert (status, county["hours"]) == (200, 1.5)
    status, body = await w.call("GET", "/api/v1/volunteer-kpis?county=340102", supervisor)
    assert (status, body["code"]) == (403, "outside_division")
    status, seen = await w.call("GET", f"/api/v1/volunteers/{volunteer.id}", supervisor)
    assert status == 200 and seen["phone"] == volunteer.phone[:3] + "****" + volunteer.phone[-4:]
    status, seen = await w.call("GET", f"/api/v1/volunteers/{volunteer.id}", w.worker)
    assert seen["phone"] == volunteer.phone, "the volunteer's station calls them"

    status, raw = await w.call("GET", "/api/v1/volunteer-records.csv", w.worker)
    assert status == 200
    text = raw.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert len(rows) == 1
    assert rows[0]["volunteer_id"] == volunteer.id and rows[0]["hours"] == "1.5"
    assert rows[0]["organisation"] == w.station.name and rows[0]["activity_title"] == "重阳节敬老院陪伴"
    status, nothing = await w.call("GET", "/api/v1/volunteer-records.csv", w.other_worker)
    assert len(nothing.decode("utf-8").strip().splitlines()) == 1


async def test_an_integrator_with_volunteers_read_receives_certificate_events_of_its_territory(world: World) -> None:
    w = world
    receiver = await WebhookReceiver().start()
    scopes = ("volunteers:read", "webhooks:manage")
    try:
        reader = await make_client(w.ctx, scopes=scopes, division_prefix=w.station.code[:4])
        elsewhere = await make_client(w.ctx, scopes=scopes, division_prefix="340102")
        no_territory = await make_client(w.ctx, scopes=scopes)
        cases_only = await make_client(w.ctx, scopes=("cases:read", "webhooks:manage"), division_prefix="34")
        await subscribe(w.client, bearer_for(w.settings, reader), receiver.url("reader"), ["certificate.issued"])
        await subscribe(w.client, bearer_for(w.settings, elsewhere), receiver.url("elsewhere"), ["*"])
        await subscribe(w.client, bearer_for(w.settings, no_territory), receiver.url("none"), ["*"])
        await subscribe(w.client, bearer_for(w.settings, cases_only), receiver.url("cases"), ["*"])
        activity = await make_activity(w.ctx, w.worker)
        _, volunteer, attendance = await _checked_out(w, activity)
        await w.call("POST", f"/api/v1/volunteer-attendance/{attendance['id']}/confirm", w.worker)
        day = service_day(attendance)
        status, cert = await w.call(
            "POST", f"/api/v1/volunteers/{volunteer.id}/certificates", w.worker,
            json={"period_from": day, "period_to": day},
        )  # fmt: skip
        assert status == 201, cert
        while await deliver_once(ctx=w.ctx, worker_id="w1"):
            pass
    finally:
        await receiver.close()
    (got,) = receiver.delivered("reader")
    assert got.json["type"] == "certificate.issued" and got.json["case_id"] == f"certificate:{cert['id']}"
    assert got.json["data"]["number"] == cert["number"] and got.json["data"]["total_hours"] == 2.0
    assert "case" not in got.json and "actor" not in got.json
    assert receiver.delivered("cases") == [], "without volunteers:read a client gets none of the area's events"
    assert receiver.delivered("elsewhere") == [], "another city's platform gets none of this station's volunteers"
    assert receiver.delivered("none") == [], "a client with no territory gets no volunteer events"


async def test_a_team_organiser_runs_the_teams_activity_but_not_another_stations(world: World) -> None:
    w = world
    leader, leader_volunteer = await make_volunteer(w.ctx)
    status, team = await w.call(
        "POST",
        "/api/v1/volunteer-teams",
        w.worker,
        json={"name": "昱东助老志愿服务队", "organiser_ids": [leader_volunteer.id]},
    )
    assert (status, team["station_id"]) == (201, w.station.id), team
    status, body = await w.call(
        "POST", "/api/v1/volunteer-teams", w.worker, json={"name": "x", "organiser_ids": [UNKNOWN_ID]}
    )
    assert (status, body["code"]) == (422, "unknown_volunteer")
    now = datetime.now(UTC)
    body_json = {
        "title": "社区助老理发",
        "scenario": "community",
        "content": "为高龄老人理发",
        "start_at": (now + timedelta(days=1)).isoformat(),
        "end_at": (now + timedelta(days=1, hours=2)).isoformat(),
        "slots": 2,
        "team_id": team["id"],
    }
    status, activity = await w.call("POST", "/api/v1/volunteer-activities", leader, json=body_json)
    assert (status, activity["station_id"], activity["team_id"]) == (201, w.station.id, team["id"]), activity
    member, _ = await make_volunteer(w.ctx)
    status, signup = await w.call("POST", f"/api/v1/volunteer-activities/{activity['id']}/signups", member)
    assert status == 201
    status, body = await w.call(
        "POST", f"/api/v1/volunteer-signups/{signup['id']}/decision", member, json={"decision": "confirm"}
    )
    assert (status, body["code"]) == (403, "not_organiser")
    status, body = await w.call(
        "POST", f"/api/v1/volunteer-signups/{signup['id']}/decision", leader, json={"decision": "confirm"}
    )
    assert (status, body["status"]) == (200, "confirmed")
    status, body = await w.call(
        "POST", f"/api/v1/volunteer-signups/{signup['id']}/decision", w.other_worker, json={"decision": "decline"}
    )
    assert (status, body["code"]) == (403, "not_organiser")
    status, body = await w.call("POST", "/api/v1/volunteer-activities", member, json=body_json)
    assert (status, body["code"]) == (403, "not_organiser")


async def test_publishing_again_with_the_same_idempotency_key_creates_one_activity(world: World) -> None:
    w = world
    now = datetime.now(UTC)
    body = {
        "title": "社区义诊",
        "scenario": "community",
        "content": "量血压",
        "start_at": (now + timedelta(days=3)).isoformat(),
        "end_at": (now + timedelta(days=3, hours=3)).isoformat(),
        "slots": 4,
    }
    headers = {"Idempotency-Key": "publish-yidong-clinic"}
    answers = await asyncio.gather(
        *(w.call("POST", "/api/v1/volunteer-activities", w.worker, json=body, headers=headers) for _ in range(3))
    )
    assert {status for status, _ in answers} == {201}
    assert len({a["id"] for _, a in answers}) == 1
    _, listed = await w.call("GET", "/api/v1/volunteer-activities", w.worker)
    assert [a["id"] for a in listed["items"]] == [answers[0][1]["id"]]


async def test_lists_page_with_opaque_cursors_and_refuse_a_forged_one(world: World) -> None:
    made = [await make_activity(world.ctx, world.worker, title=f"活动{i}") for i in range(3)]
    for _ in range(3):
        await make_volunteer(world.ctx)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, body = await world.call("GET", f"/api/v1/volunteer-activities?{query}", world.worker)
        assert status == 200, body
        seen += [a["id"] for a in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert not re.fullmatch(r"[0-9a-f]{24}", cursor)  # opaque, not a bare id
    assert seen == [a.id for a in reversed(made)]  # newest first, each once

    status, first = await world.call("GET", "/api/v1/volunteers?limit=2", world.worker)
    assert status == 200 and len(first["items"]) == 2 and first["next_cursor"], first
    status, rest = await world.call("GET", f"/api/v1/volunteers?limit=2&cursor={first['next_cursor']}", world.worker)
    assert status == 200 and rest["next_cursor"] is None, rest
    ids = [v["id"] for v in first["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == 3

    for path in ("/api/v1/volunteer-activities", "/api/v1/volunteers"):
        status, body = await world.call("GET", f"{path}?cursor={made[0].id}", world.worker)
        assert status == 400 and body["code"] == "invalid_cursor", body


async def test_a_typed_short_code_checks_in_once_and_guessing_is_stopped(world: World) -> None:
    w = world
    activity = await make_activity(w.ctx, w.worker)
    resident, _ = await make_confirmed_volunteer(w.ctx, activity, w.worker)
    status, shown = await w.call("GET", f"/api/v1/volunteer-activities/{activity.id}/checkin-code", w.worker)
    assert status == 200 and len(shown["short_code"]) == 6
    typed = shown["short_code"].lower()
    status, body = await w.call("POST", "/api/v1/volunteer-checkins", resident, json={"code": typed})
    assert (status, body["code"]) == (422, "checkin_code_invalid") and "activity_id" in body["errors"]
    checkin = {"code": typed, "activity_id": activity.id}
    status, att = await w.call("POST", "/api/v1/volunteer-checkins", resident, json=checkin)
    assert (status, att["status"], att["method"]) == (200, "checked_in", "code"), att
    status, body = await w.call("POST", "/api/v1/volunteer-checkins", resident, json=checkin)
    assert (status, body["code"]) == (409, "checkin_code_used")
    # The long code of another activity cannot be sent as this one's.
    other = await make_activity(w.ctx, w.worker)
    status, body = await w.call(
        "POST",
        "/api/v1/volunteer-checkins",
        resident,
        json={"code": await w.code(other.id), "activity_id": activity.id},
    )
    assert (status, body["code"]) == (422, "checkin_code_invalid")

    status, out = await w.call("GET", f"/api/v1/volunteer-activities/{activity.id}/checkin-code?purpose=out", w.worker)
    w.shift_clock(timedelta(seconds=2 * w.settings.volunteer_checkin_code_seconds + 1))
    status, body = await w.call(
        "POST", "/api/v1/volunteer-checkins", resident, json={"code": out["short_code"], "activity_id": activity.id}
    )
    assert (status, body["code"]) == (409, "checkin_code_expired")

    guesser, _ = await make_confirmed_volunteer(w.ctx, activity, w.worker)
    wrong = {"code": "222222" if shown["short_code"] != "222222" else "333333", "activity_id": activity.id}
    answers = [await w.call("POST", "/api/v1/volunteer-checkins", guesser, json=wrong) for _ in range(11)]
    assert [s for s, _ in answers] == [422] * 10 + [429]
    assert answers[-1][1]["code"] == "checkin_code_tries"
    status, listed = await w.call("GET", f"/api/v1/volunteer-activities/{activity.id}/attendance", w.worker)
    assert len(listed["items"]) == 1  # neither the expired code nor the guesses wrote anything


async def test_my_signups_show_the_activity_my_attendance_and_my_place_in_the_queue(world: World) -> None:
    w = world
    later = datetime.now(UTC) + timedelta(days=2)
    full = await make_activity(w.ctx, w.worker, slots=1, start_at=later, end_at=later + timedelta(hours=2))
    await make_confirmed_volunteer(w.ctx, full, w.worker)
    running = await make_activity(w.ctx, w.worker, title="社区清扫")
    resident, _ = await make_confirmed_volunteer(w.ctx, running, w.worker)
    ahead, _ = await make_volunteer(w.ctx)
    assert (await w.call("POST", f"/api/v1/volunteer-activities/{full.id}/signups", ahead))[0] == 201
    status, waiting = await w.call("POST", f"/api/v1/volunteer-activities/{full.id}/signups", resident)
    assert (status, waiting["status"]) == (201, "waitlisted")
    assert (await w.scan(resident, await w.code(running.id)))[0] == 200

    status, mine = await w.call("GET", "/api/v1/volunteers/me/signups", resident)
    assert status == 200
    by_activity = {s["activity_id"]: s for s in mine["items"]}
    assert by_activity[full.id]["status"] == "waitlisted" and by_activity[full.id]["waiting_position"] == 2
    assert by_activity[full.id]["attendance"] is None and by_activity[full.id]["activity"]["slots"] == 1
    assert by_activity[running.id]["status"] == "confirmed" and by_activity[running.id]["waiting_position"] is None
    assert by_activity[running.id]["attendance"]["status"] == "checked_in"
    assert by_activity[running.id]["activity"]["title"] == "社区清扫"
    assert [s["activity_id"] for s in mine["items"]] == [full.id, running.id]  # newest sign-up first

    stranger = await make_phone_resident(w.ctx)
    status, body = await w.call("GET", "/api/v1/volunteers/me/signups", stranger)
    assert (status, body["code"]) == (403, "not_a_volunteer")
    status, body = await w.call("GET", "/api/v1/volunteers/me/signups", w.worker)
    assert status == 403


async def test_volunteers_browse_upcoming_activities_by_county_or_township(world: World) -> None:
    w = world
    now = datetime.now(UTC)
    here = await make_activity(w.ctx, w.worker, title="本街道活动")
    there = await make_activity(w.ctx, w.other_worker, title="老街活动")
    over = await make_activity(w.ctx, w.worker, title="已结束", start_at=now - timedelta(days=3),
                               end_at=now - timedelta(days=3) + timedelta(hours=2))  # fmt: skip
    resident, _ = await make_volunteer(w.ctx)

    async def titles(**params: str) -> list[str]:
        status, body = await w.call("GET", "/api/v1/volunteer-activities", resident, params=params)
        assert status == 200, body
        return [a["title"] for a in body["items"]]

    county = w.station.code[:6]
    assert set(await titles(county=county)) == {here.title, there.title, over.title}
    assert set(await titles(county=county, upcoming="true")) == {here.title, there.title}
    assert await titles(township=w.other_station.code, upcoming="true") == [there.title]
    assert await titles(county="340000") == []
    status, body = await w.call("GET", "/api/v1/volunteer-activities", resident, params={"county": "34100"})
    assert (status, body["code"]) == (422, "validation_failed")


# ---------------------------------------------------------------- requests to record missing service (补录申请)


async def _ended_with_absent_record(w: World) -> tuple[Activity, Any, Any]:
    """An activity that has ended, and a confirmed volunteer who took part but never checked in."""
    activity = await make_activity(w.ctx, w.worker)
    resident, volunteer = await make_confirmed_volunteer(w.ctx, activity, w.worker)
    w.shift_clock(activity.end_at - datetime.now(UTC) + timedelta(minutes=10))
    return activity, resident, volunteer


async def test_a_missing_record_is_asked_for_recorded_by_the_organiser_and_shows_on_the_record(world: World) -> None:
    w = world
    activity, resident, volunteer = await _ended_with_absent_record(w)
    path = f"/api/v1/volunteer-activities/{activity.id}/record-requests"
    start = activity.start_at
    status, asked = await w.call("POST", path, resident, json={
        "reason": "我参加了活动，但手机没电没能签到",
        "proposed_check_in_at": start.isoformat(),
        "proposed_check_out_at": (start + timedelta(hours=2)).isoformat(),
    })  # fmt: skip
    assert status == 201, asked
    assert (asked["status"], asked["proposed_hours"], asked["volunteer_id"]) == ("open", 2.0, volunteer.id)
    assert [h["action"] for h in asked["history"]] == ["requested"]

    # It reaches the organiser: an event for notifications and webhooks, and the activity's open requests.
    events = await events_about(w.ctx, "record_request", asked["id"])
    assert [e.type for e in events] == ["volunteer.record_requested"]
    assert events[0].station_id == w.station.id and events[0].data["activity_id"] == activity.id
    status, listed = await w.call("GET", path + "?status=open", w.worker)
    assert status == 200 and [(r["id"], r["reason"]) for r in listed["items"]] == [
        (asked["id"], "我参加了活动，但手机没电没能签到")
    ]
    # The resident app shows it next to the sign-up.
    status, mine = await w.call("GET", "/api/v1/volunteers/me/signups", resident)
    assert status == 200 and mine["items"][0]["record_request"]["status"] == "open"
    assert mine["items"][0]["attendance"] is None

    # The organiser records the attendance the ordinary way; that closes the request.
    status, attendance = await w.call("POST", f"/api/v1/volunteer-activities/{activity.id}/attendance", w.worker, json={
        "volunteer_id": volunteer.id,
        "check_in_at": start.isoformat(),
        "check_out_at": (start + timedelta(hours=2)).isoformat(),
    })  # fmt: skip
    assert status == 201, attendance
    status, confirmed = await w.call("POST", f"/api/v1/volunteer-attendance/{attendance['id']}/confirm", w.worker)
    assert (status, confirmed["hours"]) == (200, 2.0), confirmed

    status, closed = await w.call("GET", f"/api/v1/volunteer-record-requests/{asked['id']}", resident)
    assert status == 200
    assert (closed["status"], closed["attendance_id"]) == ("recorded", attendance["id"])
    assert [h["action"] for h in closed["history"]] == ["requested", "recorded"]
    assert closed["history"][0] == asked["history"][0], "earlier entries are never edited"
    assert closed["history"][1]["by"]["role"] == "worker"
    status, record = await w.call("GET", f"/api/v1/volunteers/{volunteer.id}/record", resident)
    assert status == 200 and record["total_hours"] == 2.0
    assert [s["attendance_id"] for s in record["services"]] == [attendance["id"]]
    status, listed = await w.call("GET", path + "?status=open", w.worker)
    assert listed["items"] == []
    events = await events_about(w.ctx, "record_request", asked["id"])
    assert [e.type for e in events] == ["volunteer.record_requested", "volunteer.record_request_recorded"]

    # Now there is a record: a new request is refused and points at the correction of that record.
    status, body = await w.call("POST", path, resident, json={"reason": "再申请一次"})
    assert (status, body["code"], body["attendance_id"]) == (409, "record_exists", attendance["id"])
    assert f"/api/v1/volunteer-attendance/{attendance['id']}/correction-requests" in body["detail"]


async def test_a_record_request_is_refused_when_it_cannot_be_true(world: World) -> None:
    w = world
    activity = await make_activity(w.ctx, w.worker)
    resident, _ = await make_confirmed_volunteer(w.ctx, activity, w.worker)
    present, present_volunteer = await make_confirmed_volunteer(w.ctx, activity, w.worker)
    path = f"/api/v1/volunteer-activities/{activity.id}/record-requests"

    # The activity has not ended.
    status, body = await w.call("POST", path, resident, json={"reason": "忘记签到"})
    assert (status, body["code"]) == (409, "activity_not_ended"), body

    w.shift_clock(activity.end_at - datetime.now(UTC) + timedelta(minutes=10))
    # Never signed up.
    stranger, _ = await make_volunteer(w.ctx)
    status, body = await w.call("POST", path, stranger, json={"reason": "我也去了"})
    assert (status, body["code"]) == (403, "not_signed_up")
    # Hours beyond the activity's length (3 hours), times outside it, one time without the other.
    status, body = await w.call("POST", path, resident, json={"reason": "忘记签到", "proposed_hours": 3.5})
    assert (status, body["code"]) == (422, "hours_exceed_activity") and "proposed_hours" in body["errors"]
    late = activity.end_at + timedelta(hours=2)
    status, body = await w.call("POST", path, resident, json={
        "reason": "忘记签到",
        "proposed_check_in_at": activity.end_at.isoformat(),
        "proposed_check_out_at": late.isoformat(),
    })  # fmt: skip
    assert (status, body["code"]) == (422, "invalid_attendance_time") and "proposed_check_out_at" in body["errors"]
    status, body = await w.call(
        "POST", path, resident, json={"reason": "忘记签到", "proposed_check_in_at": activity.start_at.isoformat()}
    )
    assert (status, body["code"]) == (422, "invalid_attendance_time") and "proposed_check_out_at" in body["errors"]
    status, body = await w.call("POST", path, resident, json={"reason": "  "})
    assert (status, body["code"]) == (422, "validation_failed") and "reason" in body["errors"]
    status, body = await w.call("POST", path, resident, json={"reason": "x", "hours": 2})
    assert (status, body["code"]) == (422, "unknown_field")
    status, body = await w.call("POST", path, w.worker, json={"reason": "代申请"})
    assert status == 403
    status, listed = await w.call("GET", path, w.worker)
    assert listed["items"] == [], "refused requests write nothing"

    # One open request at a time.
    status, first = await w.call("POST", path, resident, json={"reason": "忘记签到", "proposed_hours": 1.5})
    assert status == 201, first
    status, body = await w.call("POST", path, resident, json={"reason": "再问一次"})
    assert (status, body["code"], body["request_id"]) == (409, "record_request_open", first["id"])
    assert len(await events_about(w.ctx, "record_request", first["id"])) == 1

    # Someone with a record is pointed at the correction of that record.
    attendance = await _recorded(w, activity, present_volunteer.id)
    status, body = await w.call("POST", path, present, json={"reason": "忘记签到"})
    assert (status, body["code"], body["attendance_id"]) == (409, "record_exists", attendance["id"])


async def _recorded(w: World, activity: Activity, volunteer_id: str) -> dict[str, Any]:
    """The organiser records an hour of ``volunteer_id``'s attendance at ``activity``."""
    status, attendance = await w.call("POST", f"/api/v1/volunteer-activities/{activity.id}/attendance", w.worker, json={
        "volunteer_id": volunteer_id,
        "check_in_at": activity.start_at.isoformat(),
        "check_out_at": (activity.start_at + timedelta(hours=1)).isoformat(),
    })  # fmt: skip
    assert status == 201, attendance
    return attendance


async def test_another_volunteer_or_station_cannot_see_or_settle_a_record_request(world: World) -> None:
    w = world
    activity = await make_activity(w.ctx, w.worker)
    resident, volunteer = await make_confirmed_volunteer(w.ctx, activity, w.worker)
    other, other_volunteer = await make_confirmed_volunteer(w.ctx, activity, w.worker)  # at the same activity
    w.shift_clock(activity.end_at - datetime.now(UTC) + timedelta(minutes=10))
    status, asked = await w.call(
        "POST", f"/api/v1/volunteer-activities/{activity.id}/record-requests", resident, json={"reason": "忘记签到"}
    )
    assert status == 201, asked
    one = f"/api/v1/volunteer-record-requests/{asked['id']}"

    status, body = await w.call("GET", one, other)
    assert (status, body["code"]) == (404, "record_request_not_found")
    status, body = await w.call("POST", one + "/decline", other, json={"reason": "不是我的"})
    assert (status, body["code"]) == (404, "record_request_not_found")
    status, body = await w.call("GET", f"/api/v1/volunteer-activities/{activity.id}/record-requests", other)
    assert (status, body["code"]) == (403, "not_organiser")
    status, mine = await w.call("GET", "/api/v1/volunteers/me/record-requests", other)
    assert (status, mine["items"]) == (200, [])
    status, body = await w.call("GET", one, w.other_worker)
    assert (status, body["code"]) == (404, "record_request_not_found")
    status, body = await w.call("POST", one + "/decline", w.other_worker, json={"reason": "不归我们"})
    assert (status, body["code"]) == (403, "not_organiser")
    # Nor can the volunteer decline (or settle) their own request.
    status, body = await w.call("POST", one + "/decline", resident, json={"reason": "算了"})
    assert (status, body["code"]) == (404, "record_request_not_found")

    status, seen = await w.call("GET", one, resident)
    assert (status, seen["status"], seen["version"]) == (200, "open", 1)
    status, mine = await w.call("GET", "/api/v1/volunteers/me/record-requests", resident)
    assert [r["id"] for r in mine["items"]] == [asked["id"]]
    assert other_volunteer.id != volunteer.id


async def test_the_organiser_declines_a_record_request_with_a_reason(world: World) -> None:
    w = world
    activity, resident, volunteer = await _ended_with_absent_record(w)
    path = f"/api/v1/volunteer-activities/{activity.id}/record-requests"
    status, asked = await w.call("POST", path, resident, json={"reason": "忘记签到", "proposed_hours": 2})
    assert status == 201, asked
    one = f"/api/v1/volunteer-record-requests/{asked['id']}"

    status, body = await w.call("POST", one + "/decline", w.worker, json={"reason": ""})
    assert (status, body["code"]) == (422, "validation_failed") and "reason" in body["errors"]
    status, declined = await w.call("POST", one + "/decline", w.worker, json={"reason": "签到表上没有你的签名"})
    assert status == 200, declined
    assert (declined["status"], declined["decline_reason"], declined["attendance_id"]) == (
        "declined",
        "签到表上没有你的签名",
        None,
    )
    assert [h["action"] for h in declined["history"]] == ["requested", "declined"]
    assert declined["history"][1]["reason"] == "签到表上没有你的签名"
    status, body = await w.call("POST", one + "/decline", w.worker, json={"reason": "again"})
    assert (status, body["code"]) == (409, "record_request_settled")

    status, mine = await w.call("GET", "/api/v1/volunteers/me/signups", resident)
    assert mine["items"][0]["record_request"]["status"] == "declined"
    assert mine["items"][0]["attendance"] is None, "a declined request records nothing"
    status, record = await w.call("GET", f"/api/v1/volunteers/{volunteer.id}/record", resident)
    assert record["total_hours"] == 0
    events = await events_about(w.ctx, "record_request", asked["id"])
    assert [e.type for e in events] == ["volunteer.record_requested", "volunteer.record_request_declined"]
    # Declined is settled: the volunteer may ask again, with more to go on.
    status, again = await w.call("POST", path, resident, json={"reason": "附上了队长的证明"})
    assert (status, again["status"]) == (201, "open")


async def test_a_volunteer_who_asked_may_be_recorded_without_a_confirmed_signup(world: World) -> None:
    w = world
    activity = await make_activity(w.ctx, w.worker, slots=1)
    await make_confirmed_volunteer(w.ctx, activity, w.worker)
    resident, volunteer = await make_volunteer(w.ctx)
    status, signup = await w.call("POST", f"/api/v1/volunteer-activities/{activity.id}/signups", resident)
    assert (status, signup["status"]) == (201, "waitlisted")
    body = {
        "volunteer_id": volunteer.id,
        "check_in_at": activity.start_at.isoformat(),
        "check_out_at": (activity.start_at + timedelta(hours=1)).isoformat(),
    }
    w.shift_clock(activity.end_at - datetime.now(UTC) + timedelta(minutes=10))
    attend = f"/api/v1/volunteer-activities/{activity.id}/attendance"
    status, refused = await w.call("POST", attend, w.worker, json=body)
    assert (status, refused["code"]) == (422, "unknown_volunteer")
    asks = f"/api/v1/volunteer-activities/{activity.id}/record-requests"
    status, asked = await w.call("POST", asks, resident, json={"reason": "候补也来帮忙了"})
    assert status == 201, asked
    status, attendance = await w.call("POST", attend, w.worker, json=body)
    assert (status, attendance["hours"]) == (201, 1.0), attendance
    status, closed = await w.call("GET", f"/api/v1/volunteer-record-requests/{asked['id']}", w.worker)
    assert (closed["status"], closed["attendance_id"]) == ("recorded", attendance["id"])


async def test_certificates_issued_at_once_are_numbered_without_gaps_or_duplicates(world: World) -> None:
    w = world
    activity = await make_activity(w.ctx, w.worker)
    _, volunteer = await make_confirmed_volunteer(w.ctx, activity, w.worker)
    status, attendance = await w.call(
        "POST",
        f"/api/v1/volunteer-activities/{activity.id}/attendance",
        w.worker,
        json={
            "volunteer_id": volunteer.id,
            "check_in_at": (activity.start_at + timedelta(minutes=5)).isoformat(),
            "check_out_at": (activity.start_at + timedelta(minutes=25)).isoformat(),
        },
    )
    assert status == 201, attendance
    status, body = await w.call("POST", f"/api/v1/volunteer-attendance/{attendance['id']}/confirm", w.worker)
    assert status == 200, body
    day = service_day(attendance)
    path = f"/api/v1/volunteers/{volunteer.id}/certificates"
    answers = await asyncio.gather(
        *(w.call("POST", path, w.worker, json={"period_from": day, "period_to": day}) for _ in range(20))
    )
    assert [status for status, _ in answers] == [201] * 20, answers
    serials = sorted(int(cert["number"].rsplit("-", 1)[1]) for _, cert in answers)
    assert serials == list(range(1, 21))
    # Numbered under the issuing station (organisation) and year.
    assert all(cert["number"].startswith(f"ZYZM-{w.station.code}-") for _, cert in answers)
