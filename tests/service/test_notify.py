"""Notifications from the events outbox: WeChat subscription messages, SMS, the inbox.

Every event here comes from a real case action (filing, accepting, ...) by accounts made
through the factories; times that matter are set with the injectable clock ``ctx.clock``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from config import Settings
from handlers.keys import CTX
from run import create_app
from service.common.context import Context
from service.identity.accounts import Resident, StaffMember
from service.notify.delivery import deliver_due
from service.notify.models import CHANNEL_INBOX, CHANNEL_SMS, CHANNEL_WECHAT
from service.notify.repository.notifications import NotificationsRepository
from service.notify.service import process_events
from service.notify.templates import cut_character_string
from service.visits.inputs import VisitInput
from service.visits.records import record_visit
from tests.factories import (
    bearer_for,
    make_case,
    make_elder,
    make_phone_resident,
    make_staff,
    make_station,
    make_wechat_resident,
    principal_of,
)
from tests.fakes.sms import FakeSms
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.helpers_notify import created_event, happen, notify_settings

TEMPLATE_IDS = {"accepted": "AcCePt-Tmpl-01", "scheduled": "ScHeD-Tmpl-02", "resolved": "ReSoLv-Tmpl-03"}


@pytest.fixture
def nsettings(settings: Settings, wechat_api: FakeWeChatAPI) -> Settings:
    import json

    return notify_settings(settings, wechat_api, wechat_templates=json.dumps(TEMPLATE_IDS))


@pytest.fixture
async def app_client(aiohttp_client: Any, nsettings: Settings) -> Any:
    return await aiohttp_client(create_app(nsettings))


async def resident_case(ctx: Context, *, openid: str = "openid-r-1") -> tuple[Resident, StaffMember, dict[str, Any]]:
    """A station with a worker, a WeChat resident, and a case the resident filed there."""
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    resident = await make_wechat_resident(ctx, openid=openid)
    return resident, worker, await make_case(ctx, resident)


async def grant(client: Any, settings: Settings, template_id: str, who: Resident, result: str = "accept") -> Any:
    resp = await client.post(
        "/api/v1/me/subscriptions",
        json={"template_id": template_id, "result": result},
        headers=bearer_for(settings, who),
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def run_once(ctx: Any) -> None:
    await process_events(ctx=ctx)
    await deliver_due(ctx=ctx)


async def remaining(client: Any, settings: Settings, who: Resident) -> dict[str, int]:
    resp = await client.get("/api/v1/me/subscriptions", headers=bearer_for(settings, who))
    assert resp.status == 200
    return {i["template_key"]: i["remaining"] for i in (await resp.json())["items"]}


async def inbox(client: Any, settings: Settings, who: Resident | StaffMember) -> dict[str, Any]:
    resp = await client.get("/api/v1/me/notifications", headers=bearer_for(settings, who))
    assert resp.status == 200
    return dict(await resp.json())


async def channels(ctx: Context, event_id: str) -> dict[str, Any]:
    return {n.channel: n for n in await NotificationsRepository(ctx.db).for_event(event_id)}


async def test_case_life_sends_each_configured_message_once_spending_one_grant_each(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    resident, worker, case = await resident_case(ctx)
    for key in ("accepted", "scheduled", "resolved"):
        await grant(app_client, nsettings, TEMPLATE_IDS[key], resident)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"], resident)  # a second grant stays unused
    await happen(ctx, worker, case["id"], "accept")
    await happen(ctx, worker, case["id"], "schedule", scheduled_at=datetime(2026, 12, 1, 1, 30, tzinfo=UTC))
    await happen(ctx, worker, case["id"], "resolve", result="已上门探访，老人身体状况良好，已协助联系家属安排后续照料")
    for _ in range(3):  # repeated passes must not send anything twice
        await run_once(ctx)

    assert [s["template_id"] for s in wechat_api.sends] == [
        TEMPLATE_IDS["accepted"],
        TEMPLATE_IDS["scheduled"],
        TEMPLATE_IDS["resolved"],
    ]
    first = wechat_api.sends[0]
    assert first["touser"] == "openid-r-1"
    assert first["page"] == f"pages/cases/detail?id={case['id']}"
    assert first["miniprogram_state"] == "formal" and first["lang"] == "zh_CN"
    assert first["data"]["character_string2"]["value"] == cut_character_string(case["number"])
    assert first["data"]["phrase5"]["value"] == "已受理"
    assert wechat_api.sends[1]["data"]["time3"]["value"] == "2026年12月01日 09:30"
    resolved = wechat_api.sends[2]["data"]
    assert len(resolved["thing3"]["value"]) <= 20
    assert "评价" in resolved["thing5"]["value"]
    assert await remaining(app_client, nsettings, resident) == {
        "accepted": 1,
        "scheduled": 0,
        "resolved": 0,
        "returned": 0,
        "visit_followup": 0,
    }
    assert wechat_api.token_fetches == 1

    box = await inbox(app_client, nsettings, resident)
    assert [i["event_type"] for i in box["items"]] == ["case.resolved", "case.scheduled", "case.accepted"]
    assert box["unread_count"] == 3
    assert box["items"][0]["title_zh"] == "已办结" and box["items"][0]["title_en"] == "Request resolved"


async def test_without_a_grant_nothing_is_sent_and_the_inbox_still_has_it(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    resident, worker, case = await resident_case(ctx)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"], resident, result="reject")
    eid = await happen(ctx, worker, case["id"], "accept")
    await run_once(ctx)

    assert wechat_api.sends == []
    records = await channels(ctx, eid)
    assert records[CHANNEL_WECHAT].status == "skipped" and records[CHANNEL_WECHAT].reason == "no_grant"
    box = await inbox(app_client, nsettings, resident)
    assert [i["event_type"] for i in box["items"]] == ["case.accepted"]
    assert "受理" in box["items"][0]["body_zh"]


async def test_banned_template_is_never_sent(app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI) -> None:
    ctx = app_client.app[CTX]
    resident, worker, case = await resident_case(ctx)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"], resident)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"], resident, result="ban")
    eid = await happen(ctx, worker, case["id"], "accept")
    await run_once(ctx)
    assert wechat_api.sends == []
    assert (await channels(ctx, eid))[CHANNEL_WECHAT].reason == "template_banned"


async def test_expired_access_token_is_refreshed_once_and_the_send_succeeds(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    resident, worker, case = await resident_case(ctx)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"], resident)
    await grant(app_client, nsettings, TEMPLATE_IDS["resolved"], resident)
    await happen(ctx, worker, case["id"], "accept")
    await run_once(ctx)
    assert wechat_api.token_fetches == 1
    wechat_api.expire_tokens()  # WeChat now answers 42001 for the cached token
    eid = await happen(ctx, worker, case["id"], "resolve", result="已办结")
    await run_once(ctx)

    assert wechat_api.token_fetches == 2
    assert [s["template_id"] for s in wechat_api.sends] == [TEMPLATE_IDS["accepted"], TEMPLATE_IDS["resolved"]]
    assert (await channels(ctx, eid))[CHANNEL_WECHAT].status == "sent"
    assert (await remaining(app_client, nsettings, resident))["resolved"] == 0


async def test_two_app_instances_share_one_access_token(
    aiohttp_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    a = await aiohttp_client(create_app(nsettings))
    b = await aiohttp_client(create_app(nsettings))
    ctx = a.app[CTX]
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    for i in range(6):
        resident = await make_wechat_resident(ctx, openid=f"openid-{i}")
        case = await make_case(ctx, resident)
        await grant(a, nsettings, TEMPLATE_IDS["accepted"], resident)
        await happen(ctx, worker, case["id"], "accept")
    await process_events(ctx=ctx)
    # Both processes send at the same moment, each needing a token it has not got.
    await asyncio.gather(deliver_due(ctx=a.app[CTX]), deliver_due(ctx=b.app[CTX]))

    assert wechat_api.token_fetches == 1
    assert sorted(s["touser"] for s in wechat_api.sends) == [f"openid-{i}" for i in range(6)]


async def test_user_refusal_43101_spends_the_grant_and_is_recorded(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    resident, worker, case = await resident_case(ctx)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"], resident)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"], resident)
    wechat_api.fail_next_sends((43101, "user refuse to accept the msg"))
    eid = await happen(ctx, worker, case["id"], "accept")
    await run_once(ctx)
    records = await channels(ctx, eid)
    assert records[CHANNEL_WECHAT].status == "failed"
    assert "43101" in str(records[CHANNEL_WECHAT].reason)
    assert (await remaining(app_client, nsettings, resident))["accepted"] == 0


async def test_busy_answers_are_retried_with_backoff_then_sent(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    resident, worker, case = await resident_case(ctx)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"], resident)
    wechat_api.fail_next_sends((-1, "system error"), (45009, "reach max api daily quota limit"))
    eid = await happen(ctx, worker, case["id"], "accept")
    for _ in range(20):
        await run_once(ctx)
        if wechat_api.sends:
            break
        await asyncio.sleep(0.02)
    assert len(wechat_api.sends) == 1
    records = await channels(ctx, eid)
    assert records[CHANNEL_WECHAT].status == "sent" and records[CHANNEL_WECHAT].attempts == 3
    assert (await remaining(app_client, nsettings, resident))["accepted"] == 0


async def test_persistent_busy_gives_up_records_why_and_returns_the_grant(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    resident, worker, case = await resident_case(ctx)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"], resident)
    wechat_api.fail_next_sends(*[(-1, "system error")] * 10)
    eid = await happen(ctx, worker, case["id"], "accept")
    for _ in range(30):
        await run_once(ctx)
        await asyncio.sleep(0.02)
    records = await channels(ctx, eid)
    assert records[CHANNEL_WECHAT].status == "failed"
    assert "gave up after 4 attempts" in str(records[CHANNEL_WECHAT].reason)
    assert wechat_api.send_attempts == 4
    assert (await remaining(app_client, nsettings, resident))["accepted"] == 1


async def test_bad_template_data_47003_gives_up_at_once(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    resident, worker, case = await resident_case(ctx)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"], resident)
    wechat_api.fail_next_sends((47003, "argument invalid! data.thing1.value invalid"))
    eid = await happen(ctx, worker, case["id"], "accept")
    await run_once(ctx)
    await run_once(ctx)
    records = await channels(ctx, eid)
    assert records[CHANNEL_WECHAT].status == "failed" and "47003" in str(records[CHANNEL_WECHAT].reason)
    assert wechat_api.send_attempts == 1


async def test_rejection_uses_the_returned_template_but_own_cancellation_is_silent(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    resident, _worker, case = await resident_case(ctx)
    head = await make_staff(ctx, role="station_head", station_id=case["station_id"])
    withdrawn = await make_case(ctx, resident)
    await grant(app_client, nsettings, "tmpl-case-returned", resident)
    await grant(app_client, nsettings, "tmpl-case-returned", resident)
    await happen(ctx, resident, withdrawn["id"], "cancel")
    await happen(ctx, head, case["id"], "reject", reason="不符合高龄津贴申领年龄条件")
    await run_once(ctx)
    assert len(wechat_api.sends) == 1
    data = wechat_api.sends[0]["data"]
    assert data["phrase3"]["value"] == "不予受理"
    assert data["thing4"]["value"].startswith("不符合")


async def test_visit_linked_case_tells_the_resident(aiohttp_client: Any, nsettings: Settings, sms: FakeSms) -> None:
    # A case opened from a home visit belongs to the resident whose phone the person on the
    # register gave; the resident hears of it although they did not file it.
    client = await aiohttp_client(
        create_app(nsettings.replace(sms_sender="http", sms_api_base=sms.url, quiet_hours=""))
    )
    ctx = client.app[CTX]
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    elder = await make_elder(ctx, phone="13800001234")
    resident = await make_phone_resident(ctx, phone="13800001234")
    visit = await record_visit(
        ctx=ctx,
        principal=principal_of(worker),
        data=VisitInput(
            elder_id=elder.id,
            method="home",
            visited_at=ctx.now() - timedelta(minutes=30),
            reached=True,
            needs=({"service_code": "elderly_home_visit", "note": "希望社工每周上门"},),
        ),
    )
    [referral] = visit["referrals"]
    await run_once(ctx)
    assert [(m["phone"], m["template"]) for m in sms.messages] == [("13800001234", "huimin_visit_followup")]
    box = await inbox(client, nsettings, resident)
    assert [(i["event_type"], i["case_id"]) for i in box["items"]] == [("case.created", referral["case_id"])]


async def test_visit_followup_reaches_a_wechat_resident_who_added_their_phone(
    aiohttp_client: Any, nsettings: Settings, sms: FakeSms, wechat_api: FakeWeChatAPI
) -> None:
    # The referral case's owner is found by the register's phone number; a WeChat resident
    # becomes findable by adding that number (verified by a texted code), and then hears of
    # the case through the visit_followup subscription message.
    client = await aiohttp_client(
        create_app(nsettings.replace(sms_sender="http", sms_api_base=sms.url, quiet_hours=""))
    )
    ctx = client.app[CTX]
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    elder = await make_elder(ctx, phone="13800005678")
    daughter = await make_wechat_resident(ctx, openid="openid-daughter")
    assert (await client.post("/api/v1/auth/otp", json={"phone": "13800005678"})).status == 202
    code = sms.last_code("13800005678")
    resp = await client.post(
        "/api/v1/me/phone", json={"phone": "138 0000 5678", "code": code}, headers=bearer_for(nsettings, daughter)
    )
    me = await resp.json()
    assert resp.status == 200, me
    assert me["has_wechat"] and me["has_phone"] and me["phone_masked"] == "138****5678"
    await grant(client, nsettings, "tmpl-visit-followup", daughter)
    visit = await record_visit(
        ctx=ctx,
        principal=principal_of(worker),
        data=VisitInput(
            elder_id=elder.id,
            method="phone",
            visited_at=ctx.now() - timedelta(minutes=30),
            reached=True,
            needs=({"service_code": "elderly_home_visit", "note": "希望社工每周上门"},),
        ),
    )
    [referral] = visit["referrals"]
    await run_once(ctx)
    assert [(s["touser"], s["template_id"]) for s in wechat_api.sends] == [("openid-daughter", "tmpl-visit-followup")]
    assert wechat_api.sends[0]["data"]["phrase5"]["value"] == "已登记"
    assert [m for m in sms.messages if m["template"] != "login_code"] == []
    box = await inbox(client, nsettings, daughter)
    assert [(i["event_type"], i["case_id"]) for i in box["items"]] == [("case.created", referral["case_id"])]


async def test_a_phone_number_another_account_logs_in_with_cannot_be_added(
    aiohttp_client: Any, nsettings: Settings, sms: FakeSms
) -> None:
    client = await aiohttp_client(create_app(nsettings.replace(sms_sender="http", sms_api_base=sms.url)))
    ctx = client.app[CTX]
    await make_phone_resident(ctx, phone="13800009999")
    other = await make_wechat_resident(ctx)
    assert (await client.post("/api/v1/auth/otp", json={"phone": "13800009999"})).status == 202
    body = {"phone": "13800009999", "code": sms.last_code("13800009999")}
    resp = await client.post("/api/v1/me/phone", json=body, headers=bearer_for(nsettings, other))
    assert resp.status == 409 and (await resp.json())["code"] == "phone_in_use"
    assert await ctx.db["residents"].count_documents({"phone": "13800009999"}) == 1
    worker = await make_staff(ctx, station_id=(await make_station(ctx)).id)
    resp = await client.post("/api/v1/me/phone", json=body, headers=bearer_for(nsettings, worker))
    assert resp.status == 403


async def test_phone_resident_gets_an_sms_delayed_past_quiet_hours(
    aiohttp_client: Any, nsettings: Settings, sms: FakeSms, wechat_api: FakeWeChatAPI
) -> None:
    client = await aiohttp_client(
        create_app(nsettings.replace(sms_sender="http", sms_api_base=sms.url, quiet_hours="21:00-08:00"))
    )
    ctx = client.app[CTX]
    night = datetime(2026, 11, 28, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai
    ctx.clock = lambda: night
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    resident = await make_phone_resident(ctx, phone="13800001234")
    case = await make_case(ctx, resident)
    eid = await happen(ctx, worker, case["id"], "accept")
    await run_once(ctx)
    assert sms.messages == []
    records = await channels(ctx, eid)
    assert CHANNEL_WECHAT not in records
    assert records[CHANNEL_SMS].status == "pending"
    assert records[CHANNEL_SMS].not_before == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)  # 08:00 Shanghai

    ctx.clock = lambda: datetime(2026, 11, 29, 0, 1, tzinfo=UTC)
    await run_once(ctx)
    assert len(sms.messages) == 1
    msg = sms.messages[0]
    assert msg["phone"] == "13800001234" and msg["template"] == "huimin_accepted"
    assert msg["params"]["status"] == "已受理"
    assert records[CHANNEL_INBOX].status == "delivered"


async def test_urged_case_sms_to_staff_ignores_quiet_hours_when_chosen(
    aiohttp_client: Any, nsettings: Settings, sms: FakeSms
) -> None:
    client = await aiohttp_client(create_app(nsettings.replace(sms_sender="http", sms_api_base=sms.url)))
    ctx = client.app[CTX]
    ctx.clock = lambda: datetime(2026, 11, 28, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    station = await make_station(ctx)
    head = await make_staff(ctx, role="station_head", station_id=station.id, phone="13900005678")
    supervisor = await make_staff(ctx, role="supervisor")
    admin = await make_staff(ctx, role="admin")
    case = await make_case(ctx, await make_wechat_resident(ctx))
    resp = await client.put(
        "/api/v1/me/preferences",
        json={"events": {"case.urged": {"sms": True}, "case.dispatched": {"sms": True}}},
        headers=bearer_for(nsettings, head),
    )
    assert resp.status == 200, await resp.text()
    await happen(ctx, supervisor, case["id"], "urge", note="请尽快办理")
    await happen(ctx, admin, case["id"], "dispatch", station_id=station.id)
    await run_once(ctx)
    assert [m["params"]["title"] for m in sms.messages] == ["工单催办"]
    assert {m["phone"] for m in sms.messages} == {"13900005678"}


async def test_staff_inbox_follows_preferences(app_client: Any, nsettings: Settings) -> None:
    ctx = app_client.app[CTX]
    station = await make_station(ctx)
    w1 = await make_staff(ctx, station_id=station.id)
    w2 = await make_staff(ctx, station_id=station.id)
    head = await make_staff(ctx, role="station_head", station_id=station.id)
    admin = await make_staff(ctx, role="admin")
    case = await make_case(ctx, await make_wechat_resident(ctx))
    resp = await app_client.put(
        "/api/v1/me/preferences",
        json={"events": {"case.dispatched": {"inbox": False}}},
        headers=bearer_for(nsettings, w2),
    )
    assert resp.status == 200
    assert (await resp.json())["events"]["case.dispatched"] == {"inbox": False, "sms": False, "stream": True}
    await happen(ctx, admin, case["id"], "dispatch", station_id=station.id)
    await happen(ctx, head, case["id"], "accept")
    await happen(ctx, head, case["id"], "assign", assignee_id=w2.id)
    await run_once(ctx)
    one = await inbox(app_client, nsettings, w1)
    two = await inbox(app_client, nsettings, w2)
    assert [i["event_type"] for i in one["items"]] == ["case.dispatched", "case.created"]
    assert [i["event_type"] for i in two["items"]] == ["case.assigned", "case.created"]
    assert two["items"][0]["title_zh"] == "工单指派给您"


async def test_access_token_is_refreshed_before_it_expires(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    resident, worker, case = await resident_case(ctx)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"], resident)
    await grant(app_client, nsettings, TEMPLATE_IDS["resolved"], resident)
    await happen(ctx, worker, case["id"], "accept")
    await run_once(ctx)
    start = datetime.now(UTC)
    ctx.clock = lambda: start + timedelta(seconds=7200 * 0.9 + 1)  # 90 % of its life has passed
    await happen(ctx, worker, case["id"], "resolve", result="已办结")
    await run_once(ctx)
    assert wechat_api.token_fetches == 2
    assert wechat_api.send_attempts == 2  # no send was refused for an old token
    assert len(wechat_api.sends) == 2


async def test_several_processes_handle_and_publish_each_event_once(
    aiohttp_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    apps = [await aiohttp_client(create_app(nsettings)) for _ in range(3)]
    ctx = apps[0].app[CTX]
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    resident = await make_wechat_resident(ctx)
    ids = [created_event(await make_case(ctx, resident)) for _ in range(8)]
    handled = await asyncio.gather(*(process_events(ctx=a.app[CTX]) for a in apps))
    assert sum(handled) == 8
    claims = [d async for d in ctx.db["notify_claims"].find({})]
    assert sorted(c["_id"] for c in claims) == sorted(ids)
    assert sorted(c["feed_seq"] for c in claims) == list(range(1, 9))
    box = [d async for d in ctx.db["notifications"].find({"recipient": f"staff:{worker.id}"})]
    assert len(box) == 8


async def test_an_event_whose_handler_died_is_taken_over_without_sending_twice(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    resident, worker, case = await resident_case(ctx)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"], resident)
    eid = await happen(ctx, worker, case["id"], "accept")
    await process_events(ctx=ctx)
    # Simulate a process that died mid-way: the claim is unfinished and old, and the WeChat
    # record had already been handed to WeChat (state "sending").
    await ctx.db["notify_claims"].update_one(
        {"_id": eid}, {"$set": {"done": False, "claimed_at": datetime(2020, 1, 1, tzinfo=UTC)}}
    )
    await ctx.db["notifications"].update_one({"event_id": eid, "channel": "wechat"}, {"$set": {"status": "sending"}})
    await run_once(ctx)
    claim = await ctx.db["notify_claims"].find_one({"_id": eid})
    assert claim["done"] is True and claim.get("takeovers") == 1
    assert wechat_api.sends == []  # "sending" may have reached WeChat: never sent again
    assert await ctx.db["notifications"].count_documents({"event_id": eid}) == 2  # inbox + wechat, no duplicates


async def test_first_pass_ignores_events_older_than_an_hour(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    resident, worker, case = await resident_case(ctx)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"], resident)
    await happen(ctx, worker, case["id"], "accept")
    # Notifications are switched on two hours later: the first pass starts an hour back.
    later = datetime.now(UTC) + timedelta(hours=2)
    ctx.clock = lambda: later
    await run_once(ctx)
    assert wechat_api.sends == []
    assert await ctx.db["notifications"].count_documents({}) == 0


async def test_first_pass_takes_events_of_the_last_hour(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    resident, worker, case = await resident_case(ctx)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"], resident)
    eid = await happen(ctx, worker, case["id"], "accept")
    later = datetime.now(UTC) + timedelta(minutes=50)
    ctx.clock = lambda: later
    await run_once(ctx)
    assert [s["template_id"] for s in wechat_api.sends] == [TEMPLATE_IDS["accepted"]]
    assert (await channels(ctx, eid))[CHANNEL_WECHAT].status == "sent"


async def test_wechat_not_configured_skips_without_spending(aiohttp_client: Any, nsettings: Settings) -> None:
    client = await aiohttp_client(create_app(nsettings.replace(wechat_appid="")))
    ctx = client.app[CTX]
    resident, worker, case = await resident_case(ctx)
    await grant(client, nsettings, TEMPLATE_IDS["accepted"], resident)
    eid = await happen(ctx, worker, case["id"], "accept")
    await run_once(ctx)
    assert (await channels(ctx, eid))[CHANNEL_WECHAT].reason == "wechat_not_configured"
    assert (await remaining(client, nsettings, resident))["accepted"] == 1


async def test_returned_case_reaches_the_next_station_and_the_supervisor(app_client: Any, nsettings: Settings) -> None:
    ctx = app_client.app[CTX]
    first = await make_station(ctx)
    second = await make_station(ctx, code="341002002", name="老街街道社工站", point=(118.33, 29.71))
    w1 = await make_staff(ctx, station_id=first.id)
    w2 = await make_staff(ctx, station_id=second.id)
    near = await make_staff(ctx, role="supervisor", division_prefix="3410")
    await make_staff(ctx, role="supervisor", division_prefix="3401")
    case = await make_case(ctx, await make_wechat_resident(ctx))
    assert case["station_id"] == first.id
    eid = await happen(ctx, w1, case["id"], "return", reason="不属本站辖区")
    await process_events(ctx=ctx)
    recipients = sorted([d["recipient"] async for d in ctx.db["notifications"].find({"event_id": eid})])
    assert recipients == sorted([f"staff:{near.id}", f"staff:{w2.id}"])
