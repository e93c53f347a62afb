"""Notifications from the events outbox: WeChat subscription messages, SMS, the inbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from config import Settings
from handlers.keys import CTX
from run import create_app
from service.models import Principal
from service.notify import deliver_due, process_events
from service.notify_models import CHANNEL_INBOX, CHANNEL_SMS, CHANNEL_WECHAT
from service.storage.notifications import NotificationsRepository
from tests.fakes.sms import FakeSms
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.helpers_notify import (
    add_case,
    add_event,
    add_resident,
    add_staff,
    bearer,
    notify_settings,
    resident,
    worker,
)

TEMPLATE_IDS = {"accepted": "AcCePt-Tmpl-01", "scheduled": "ScHeD-Tmpl-02", "resolved": "ReSoLv-Tmpl-03"}


@pytest.fixture
async def wechat_api() -> AsyncIterator[FakeWeChatAPI]:
    fake = await FakeWeChatAPI().start()
    yield fake
    await fake.close()


@pytest.fixture
async def sms_gateway() -> AsyncIterator[FakeSms]:
    fake = FakeSms()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
def nsettings(settings: Settings, wechat_api: FakeWeChatAPI) -> Settings:
    import json

    return notify_settings(settings, wechat_api, wechat_templates=json.dumps(TEMPLATE_IDS))


@pytest.fixture
async def app_client(aiohttp_client: Any, nsettings: Settings) -> Any:
    return await aiohttp_client(create_app(nsettings))


async def grant(client: Any, settings: Settings, template_id: str, result: str = "accept", rid: str = "r-1") -> Any:
    resp = await client.post(
        "/api/v1/me/subscriptions",
        json={"template_id": template_id, "result": result},
        headers=bearer(settings, resident(rid)),
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def run_once(ctx: Any) -> None:
    await process_events(ctx=ctx)
    await deliver_due(ctx=ctx)


async def remaining(client: Any, settings: Settings) -> dict[str, int]:
    resp = await client.get("/api/v1/me/subscriptions", headers=bearer(settings, resident()))
    assert resp.status == 200
    return {i["template_key"]: i["remaining"] for i in (await resp.json())["items"]}


async def test_case_life_sends_each_configured_message_once_spending_one_grant_each(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    await add_resident(ctx.db)
    await add_case(ctx.db)
    for key in ("accepted", "scheduled", "resolved"):
        await grant(app_client, nsettings, TEMPLATE_IDS[key])
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"])  # a second grant stays unused
    await add_event(ctx.db, "case.created", actor=("r-1", "resident"))
    await add_event(ctx.db, "case.accepted")
    await add_event(ctx.db, "case.scheduled", data={"scheduled_at": datetime(2026, 12, 1, 1, 30, tzinfo=UTC)})
    await add_event(
        ctx.db, "case.resolved", data={"result": "已上门探访，老人身体状况良好，已协助联系家属安排后续照料"}
    )
    for _ in range(3):  # repeated passes must not send anything twice
        await run_once(ctx)

    assert [s["template_id"] for s in wechat_api.sends] == [
        TEMPLATE_IDS["accepted"],
        TEMPLATE_IDS["scheduled"],
        TEMPLATE_IDS["resolved"],
    ]
    first = wechat_api.sends[0]
    assert first["touser"] == "openid-r-1"
    assert first["page"] == "pages/cases/detail?id=c-1"
    assert first["miniprogram_state"] == "formal" and first["lang"] == "zh_CN"
    assert first["data"]["character_string2"]["value"] == "HM202611280c-1"
    assert first["data"]["phrase5"]["value"] == "已受理"
    assert wechat_api.sends[1]["data"]["time3"]["value"] == "2026年12月01日 09:30"
    resolved = wechat_api.sends[2]["data"]
    assert len(resolved["thing3"]["value"]) <= 20
    assert "评价" in resolved["thing5"]["value"]
    assert await remaining(app_client, nsettings) == {
        "accepted": 1,
        "scheduled": 0,
        "resolved": 0,
        "returned": 0,
        "visit_followup": 0,
    }
    assert wechat_api.token_fetches == 1

    inbox = await (await app_client.get("/api/v1/me/notifications", headers=bearer(nsettings, resident()))).json()
    assert [i["event_type"] for i in inbox["items"]] == ["case.resolved", "case.scheduled", "case.accepted"]
    assert inbox["unread_count"] == 3
    assert inbox["items"][0]["title_zh"] == "已办结" and inbox["items"][0]["title_en"] == "Request resolved"


async def test_without_a_grant_nothing_is_sent_and_the_inbox_still_has_it(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    await add_resident(ctx.db)
    await add_case(ctx.db)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"], result="reject")
    eid = await add_event(ctx.db, "case.accepted")
    await run_once(ctx)

    assert wechat_api.sends == []
    records = {n.channel: n for n in await NotificationsRepository(ctx.db).for_event(eid)}
    assert records[CHANNEL_WECHAT].status == "skipped" and records[CHANNEL_WECHAT].reason == "no_grant"
    inbox = await (await app_client.get("/api/v1/me/notifications", headers=bearer(nsettings, resident()))).json()
    assert [i["event_type"] for i in inbox["items"]] == ["case.accepted"]
    assert "受理" in inbox["items"][0]["body_zh"]


async def test_banned_template_is_never_sent(app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI) -> None:
    ctx = app_client.app[CTX]
    await add_resident(ctx.db)
    await add_case(ctx.db)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"])
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"], result="ban")
    eid = await add_event(ctx.db, "case.accepted")
    await run_once(ctx)
    assert wechat_api.sends == []
    records = {n.channel: n for n in await NotificationsRepository(ctx.db).for_event(eid)}
    assert records[CHANNEL_WECHAT].reason == "template_banned"


async def test_expired_access_token_is_refreshed_once_and_the_send_succeeds(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    await add_resident(ctx.db)
    await add_case(ctx.db)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"])
    await grant(app_client, nsettings, TEMPLATE_IDS["resolved"])
    await add_event(ctx.db, "case.accepted")
    await run_once(ctx)
    assert wechat_api.token_fetches == 1
    wechat_api.expire_tokens()  # WeChat now answers 42001 for the cached token
    eid = await add_event(ctx.db, "case.resolved")
    await run_once(ctx)

    assert wechat_api.token_fetches == 2
    assert [s["template_id"] for s in wechat_api.sends] == [TEMPLATE_IDS["accepted"], TEMPLATE_IDS["resolved"]]
    records = {n.channel: n for n in await NotificationsRepository(ctx.db).for_event(eid)}
    assert records[CHANNEL_WECHAT].status == "sent"
    assert (await remaining(app_client, nsettings))["resolved"] == 0


async def test_two_app_instances_share_one_access_token(
    aiohttp_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    a = await aiohttp_client(create_app(nsettings))
    b = await aiohttp_client(create_app(nsettings))
    db = a.app[CTX].db
    for i in range(6):
        await add_resident(db, f"r-{i}", openid=f"openid-{i}")
        await add_case(db, f"c-{i}", owner=f"r-{i}")
        await grant(a, nsettings, TEMPLATE_IDS["accepted"], rid=f"r-{i}")
        await add_event(db, "case.accepted", case_id=f"c-{i}")
    await process_events(ctx=a.app[CTX])
    # Both processes send at the same moment, each needing a token it has not got.
    await asyncio.gather(deliver_due(ctx=a.app[CTX]), deliver_due(ctx=b.app[CTX]))

    assert wechat_api.token_fetches == 1
    assert sorted(s["touser"] for s in wechat_api.sends) == [f"openid-{i}" for i in range(6)]


async def test_user_refusal_43101_spends_the_grant_and_is_recorded(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    await add_resident(ctx.db)
    await add_case(ctx.db)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"])
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"])
    wechat_api.fail_next_sends((43101, "user refuse to accept the msg"))
    eid = await add_event(ctx.db, "case.accepted")
    await run_once(ctx)
    records = {n.channel: n for n in await NotificationsRepository(ctx.db).for_event(eid)}
    assert records[CHANNEL_WECHAT].status == "failed"
    assert "43101" in str(records[CHANNEL_WECHAT].reason)
    assert (await remaining(app_client, nsettings))["accepted"] == 0


async def test_busy_answers_are_retried_with_backoff_then_sent(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    await add_resident(ctx.db)
    await add_case(ctx.db)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"])
    wechat_api.fail_next_sends((-1, "system error"), (45009, "reach max api daily quota limit"))
    eid = await add_event(ctx.db, "case.accepted")
    for _ in range(20):
        await run_once(ctx)
        if wechat_api.sends:
            break
        await asyncio.sleep(0.02)
    assert len(wechat_api.sends) == 1
    records = {n.channel: n for n in await NotificationsRepository(ctx.db).for_event(eid)}
    assert records[CHANNEL_WECHAT].status == "sent" and records[CHANNEL_WECHAT].attempts == 3
    assert (await remaining(app_client, nsettings))["accepted"] == 0


async def test_persistent_busy_gives_up_records_why_and_returns_the_grant(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    await add_resident(ctx.db)
    await add_case(ctx.db)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"])
    wechat_api.fail_next_sends(*[(-1, "system error")] * 10)
    eid = await add_event(ctx.db, "case.accepted")
    for _ in range(30):
        await run_once(ctx)
        await asyncio.sleep(0.02)
    records = {n.channel: n for n in await NotificationsRepository(ctx.db).for_event(eid)}
    assert records[CHANNEL_WECHAT].status == "failed"
    assert "gave up after 4 attempts" in str(records[CHANNEL_WECHAT].reason)
    assert wechat_api.send_attempts == 4
    assert (await remaining(app_client, nsettings))["accepted"] == 1


async def test_bad_template_data_47003_gives_up_at_once(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    await add_resident(ctx.db)
    await add_case(ctx.db)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"])
    wechat_api.fail_next_sends((47003, "argument invalid! data.thing1.value invalid"))
    eid = await add_event(ctx.db, "case.accepted")
    await run_once(ctx)
    await run_once(ctx)
    records = {n.channel: n for n in await NotificationsRepository(ctx.db).for_event(eid)}
    assert records[CHANNEL_WECHAT].status == "failed" and "47003" in str(records[CHANNEL_WECHAT].reason)
    assert wechat_api.send_attempts == 1


async def test_rejection_uses_the_returned_template_but_own_cancellation_is_silent(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    await add_resident(ctx.db)
    await add_case(ctx.db)
    await add_case(ctx.db, "c-2")
    await grant(app_client, nsettings, "tmpl-case-returned")
    await grant(app_client, nsettings, "tmpl-case-returned")
    await add_event(ctx.db, "case.cancelled", case_id="c-2", actor=("r-1", "resident"))
    await add_event(
        ctx.db, "case.rejected", actor=("h-1", "station_head"), data={"reason": "不符合高龄津贴申领年龄条件"}
    )
    await run_once(ctx)
    assert len(wechat_api.sends) == 1
    data = wechat_api.sends[0]["data"]
    assert data["phrase3"]["value"] == "不予受理"
    assert data["thing4"]["value"].startswith("不符合")


async def test_visit_linked_case_tells_the_resident(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    await add_resident(ctx.db)
    await add_case(ctx.db, source={"channel": "visit", "visit_id": "v-1:need:0", "elder_id": "e-1"})
    await grant(app_client, nsettings, "tmpl-visit-followup")
    await add_event(ctx.db, "case.created", actor=("w-1", "worker"))
    await run_once(ctx)
    assert [s["template_id"] for s in wechat_api.sends] == ["tmpl-visit-followup"]


async def test_phone_resident_gets_an_sms_delayed_past_quiet_hours(
    aiohttp_client: Any, nsettings: Settings, sms_gateway: FakeSms, wechat_api: FakeWeChatAPI
) -> None:
    client = await aiohttp_client(
        create_app(nsettings.replace(sms_sender="http", sms_api_base=sms_gateway.url, quiet_hours="21:00-08:00"))
    )
    ctx = client.app[CTX]
    night = datetime(2026, 11, 28, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai
    ctx.clock = lambda: night
    await add_resident(ctx.db, openid=None, phone="13800001234")
    await add_case(ctx.db)
    eid = await add_event(ctx.db, "case.accepted")
    await run_once(ctx)
    assert sms_gateway.messages == []
    records = {n.channel: n for n in await NotificationsRepository(ctx.db).for_event(eid)}
    assert CHANNEL_WECHAT not in records
    assert records[CHANNEL_SMS].status == "pending"
    assert records[CHANNEL_SMS].not_before == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)  # 08:00 Shanghai

    ctx.clock = lambda: datetime(2026, 11, 29, 0, 1, tzinfo=UTC)
    await run_once(ctx)
    assert len(sms_gateway.messages) == 1
    msg = sms_gateway.messages[0]
    assert msg["phone"] == "13800001234" and msg["template"] == "huimin_accepted"
    assert msg["params"]["status"] == "已受理"
    assert records[CHANNEL_INBOX].status == "delivered"


async def test_urged_case_sms_to_staff_ignores_quiet_hours_when_chosen(
    aiohttp_client: Any, nsettings: Settings, sms_gateway: FakeSms
) -> None:
    client = await aiohttp_client(create_app(nsettings.replace(sms_sender="http", sms_api_base=sms_gateway.url)))
    ctx = client.app[CTX]
    ctx.clock = lambda: datetime(2026, 11, 28, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    await add_staff(ctx.db, "h-1", role="station_head", phone="13900005678")
    await add_case(ctx.db)
    head = Principal(subject="h-1", role="station_head", station_id="st-1")
    resp = await client.put(
        "/api/v1/me/preferences",
        json={"events": {"case.urged": {"sms": True}, "case.dispatched": {"sms": True}}},
        headers=bearer(nsettings, head),
    )
    assert resp.status == 200, await resp.text()
    await add_event(ctx.db, "case.urged", actor=("sup-1", "supervisor"), data={"note": "请尽快办理"})
    await add_event(ctx.db, "case.dispatched", actor=("system", "admin"))
    await run_once(ctx)
    assert [m["params"]["title"] for m in sms_gateway.messages] == ["工单催办"]


async def test_staff_inbox_follows_preferences(app_client: Any, nsettings: Settings) -> None:
    ctx = app_client.app[CTX]
    await add_staff(ctx.db, "w-1")
    await add_staff(ctx.db, "w-2")
    await add_case(ctx.db)
    resp = await app_client.put(
        "/api/v1/me/preferences",
        json={"events": {"case.dispatched": {"inbox": False}}},
        headers=bearer(nsettings, worker("w-2")),
    )
    assert resp.status == 200
    assert (await resp.json())["events"]["case.dispatched"] == {"inbox": False, "sms": False, "stream": True}
    await add_event(ctx.db, "case.dispatched", actor=("system", "admin"))
    await add_event(ctx.db, "case.assigned", actor=("h-1", "station_head"), data={"assignee_id": "w-2"})
    await run_once(ctx)
    w1 = await (await app_client.get("/api/v1/me/notifications", headers=bearer(nsettings, worker("w-1")))).json()
    w2 = await (await app_client.get("/api/v1/me/notifications", headers=bearer(nsettings, worker("w-2")))).json()
    assert [i["event_type"] for i in w1["items"]] == ["case.dispatched"]
    assert [i["event_type"] for i in w2["items"]] == ["case.assigned"]
    assert w2["items"][0]["title_zh"] == "工单指派给您"


async def test_access_token_is_refreshed_before_it_expires(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    await add_resident(ctx.db)
    await add_case(ctx.db)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"])
    await grant(app_client, nsettings, TEMPLATE_IDS["resolved"])
    await add_event(ctx.db, "case.accepted")
    await run_once(ctx)
    start = datetime.now(UTC)
    ctx.clock = lambda: start + timedelta(seconds=7200 * 0.9 + 1)  # 90 % of its life has passed
    await add_event(ctx.db, "case.resolved")
    await run_once(ctx)
    assert wechat_api.token_fetches == 2
    assert wechat_api.send_attempts == 2  # no send was refused for an old token
    assert len(wechat_api.sends) == 2


async def test_several_processes_handle_and_publish_each_event_once(
    aiohttp_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    apps = [await aiohttp_client(create_app(nsettings)) for _ in range(3)]
    db = apps[0].app[CTX].db
    await add_staff(db, "w-1")
    ids = []
    for i in range(8):
        await add_case(db, f"c-{i}", owner=None)
        ids.append(await add_event(db, "case.dispatched", case_id=f"c-{i}", actor=("system", "admin")))
    handled = await asyncio.gather(*(process_events(ctx=a.app[CTX]) for a in apps))
    assert sum(handled) == 8
    claims = [d async for d in db["notify_claims"].find({})]
    assert sorted(c["_id"] for c in claims) == sorted(ids)
    assert sorted(c["feed_seq"] for c in claims) == list(range(1, 9))
    inbox = [d async for d in db["notifications"].find({"recipient": "staff:w-1"})]
    assert len(inbox) == 8


async def test_an_event_whose_handler_died_is_taken_over_without_sending_twice(
    app_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    ctx = app_client.app[CTX]
    await add_resident(ctx.db)
    await add_case(ctx.db)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"])
    eid = await add_event(ctx.db, "case.accepted")
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
    from bson import ObjectId

    ctx = app_client.app[CTX]
    await add_resident(ctx.db)
    await add_case(ctx.db)
    await grant(app_client, nsettings, TEMPLATE_IDS["accepted"])
    old = await add_event(ctx.db, "case.accepted")
    # Rewrite its id as if written two hours ago (ids are ObjectIds, time first).
    doc = await ctx.db["events"].find_one({"_id": old})
    await ctx.db["events"].delete_one({"_id": old})
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    doc["_id"] = str(ObjectId.from_datetime(two_hours_ago))[:8] + old[8:]
    await ctx.db["events"].insert_one(doc)
    await run_once(ctx)
    assert wechat_api.sends == []
    assert await ctx.db["notifications"].count_documents({}) == 0


async def test_wechat_not_configured_skips_without_spending(aiohttp_client: Any, nsettings: Settings) -> None:
    client = await aiohttp_client(create_app(nsettings.replace(wechat_appid="")))
    ctx = client.app[CTX]
    await add_resident(ctx.db)
    await add_case(ctx.db)
    await grant(client, nsettings, TEMPLATE_IDS["accepted"])
    eid = await add_event(ctx.db, "case.accepted")
    await run_once(ctx)
    records = {n.channel: n for n in await NotificationsRepository(ctx.db).for_event(eid)}
    assert records[CHANNEL_WECHAT].reason == "wechat_not_configured"
    assert (await remaining(client, nsettings))["accepted"] == 1


async def test_returned_case_reaches_the_next_station_and_the_supervisor(app_client: Any, nsettings: Settings) -> None:
    ctx = app_client.app[CTX]
    await add_staff(ctx.db, "w-1", station="st-1")
    await add_staff(ctx.db, "w-2", station="st-2")
    await add_staff(ctx.db, "sup-1", role="supervisor", station=None, division_prefix="3410")
    await add_staff(ctx.db, "sup-9", role="supervisor", station=None, division_prefix="3401")
    await add_case(ctx.db, owner=None, station="st-2")
    await add_event(
        ctx.db,
        "case.returned",
        station="st-2",
        actor=("w-1", "worker"),
        data={"reason": "不属本站辖区", "returned_by_station": "st-1", "next_station": "st-2"},
    )
    await process_events(ctx=ctx)
    recipients = sorted([d["recipient"] async for d in ctx.db["notifications"].find({})])
    assert recipients == ["staff:sup-1", "staff:w-2"]
