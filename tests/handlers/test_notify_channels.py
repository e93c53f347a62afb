"""Notices end to end, with people made only through the real code paths and the real loops.

Residents, staff, stations and cases come from ``tests/factories.py`` (or the API), so their
ids are the ones production makes; WeChat and the SMS gateway are the local stand-ins of
``tests/fakes``; the notification loops run in the app as they do in a deployment.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest

from config import Settings
from handlers.keys import CTX
from run import create_app
from service.identity.accounts import Resident, StaffMember
from tests.factories import (
    STAFF_PASSWORD,
    act,
    bearer_for,
    file_case,
    make_phone_resident,
    make_staff,
    make_station,
    make_wechat_resident,
)
from tests.fakes.sms import FakeSms
from tests.fakes.wechat_api import LIMITS, FakeWeChatAPI
from tests.helpers_notify import read_sse

TEMPLATES = {"accepted": "T-ACCEPTED", "scheduled": "T-SCHEDULED", "resolved": "T-RESOLVED", "returned": "T-RETURNED"}
SHANGHAI = ZoneInfo("Asia/Shanghai")
T = TypeVar("T")


@pytest.fixture
def live_settings(settings: Settings, wechat_api: FakeWeChatAPI, sms: FakeSms) -> Settings:
    """The app as deployed: loops on, WeChat and the SMS gateway at their stand-ins, no quiet hours."""
    return settings.replace(
        background_tasks=True,
        wechat_api_base=wechat_api.base_url,
        wechat_appid=wechat_api.appid,
        wechat_secret=wechat_api.secret,
        wechat_templates=json.dumps(TEMPLATES),
        sms_sender="http",
        sms_api_base=sms.url,
        notify_poll_seconds=0.05,
        notify_retry_base_seconds=0.01,
        stream_heartbeat_seconds=0.3,
        quiet_hours="",
    )


async def eventually(probe: Callable[[], Awaitable[T]], *, within: float = 5.0, what: str = "") -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)


async def _login(client: Any, username: str) -> dict[str, str]:
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": STAFF_PASSWORD})
    assert resp.status == 200, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['access_token']}"}


async def _inbox(client: Any, headers: dict[str, str]) -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/me/notifications", headers=headers)
    assert resp.status == 200, await resp.text()
    return list((await resp.json())["items"])


async def _world(client: Any) -> tuple[str, StaffMember]:
    ctx = client.app[CTX]
    station = await make_station(ctx)
    head = await make_staff(ctx, role="station_head", station_id=station.id)
    return station.id, head


async def _grant(client: Any, settings: Settings, resident: Resident, template_key: str) -> None:
    resp = await client.post(
        "/api/v1/me/subscriptions",
        json={"template_id": TEMPLATES[template_key], "result": "accept"},
        headers=bearer_for(settings, resident),
    )
    assert resp.status == 201, await resp.text()


async def _remaining(client: Any, settings: Settings, resident: Resident, template_key: str) -> int:
    resp = await client.get("/api/v1/me/subscriptions", headers=bearer_for(settings, resident))
    items = (await resp.json())["items"]
    return int(next(i["remaining"] for i in items if i["template_key"] == template_key))


async def _records(client: Any, resident: Resident, channel: str) -> list[dict[str, Any]]:
    cursor = client.app[CTX].db["notifications"].find({"recipient": f"resident:{resident.id}", "channel": channel})
    return [d async for d in cursor]


# ---------------------------------------------------------------- staff


async def test_station_staff_created_through_the_api_hear_of_a_new_case_within_a_second(
    aiohttp_client: Any, live_settings: Settings
) -> None:
    client = await aiohttp_client(create_app(live_settings))
    ctx = client.app[CTX]
    station = await make_station(ctx)
    admin = await make_staff(ctx, role="admin")
    resp = await client.post(
        "/api/v1/staff",
        json={"username": "zhang.min", "password": STAFF_PASSWORD, "role": "worker", "station_id": station.id},
        headers=bearer_for(live_settings, admin),
    )
    assert resp.status == 201, await resp.text()
    worker = await _login(client, "zhang.min")
    resident = await make_phone_resident(ctx)

    stream = await client.get("/api/v1/stream", headers=worker)
    assert stream.status == 200
    started = asyncio.get_running_loop().time()
    case = await file_case(client, live_settings, resident)
    [message] = await read_sse(stream, count=1, timeout=1.0)
    assert message["data"]["type"] == "case.created"
    assert message["data"]["case_id"] == case["id"]

    async def inbox_has_it() -> list[dict[str, Any]]:
        return [n for n in await _inbox(client, worker) if n["case_id"] == case["id"]]

    [entry] = await eventually(inbox_has_it, within=1.0, what="case.created in the worker's inbox")
    assert entry["event_type"] == "case.created"
    assert asyncio.get_running_loop().time() - started < 1.0
    stream.close()


async def test_assignee_hears_of_assignment_and_urging(aiohttp_client: Any, live_settings: Settings) -> None:
    client = await aiohttp_client(create_app(live_settings))
    ctx = client.app[CTX]
    station_id, head = await _world(client)
    worker = await make_staff(ctx, role="worker", station_id=station_id)
    supervisor = await make_staff(ctx, role="supervisor")
    case = await file_case(client, live_settings, await make_phone_resident(ctx))
    await act(client, live_settings, head, case["id"], "accept")
    await act(client, live_settings, head, case["id"], "assign", {"assignee_id": worker.id})
    await act(client, live_settings, supervisor, case["id"], "urge", {"note": "请尽快办理"})

    async def worker_heard() -> set[str]:
        types = {n["event_type"] for n in await _inbox(client, bearer_for(live_settings, worker))}
        return types if {"case.assigned", "case.urged"} <= types else set()

    await eventually(worker_heard, what="case.assigned and case.urged in the assignee's inbox")
    head_types = {n["event_type"] for n in await _inbox(client, bearer_for(live_settings, head))}
    assert "case.urged" in head_types  # the head hears of urging too
    assert "case.assigned" not in head_types  # ... but not of the assignment they made themselves


async def test_staff_sms_reaches_the_phone_on_the_staff_account(
    aiohttp_client: Any, live_settings: Settings, sms: FakeSms
) -> None:
    client = await aiohttp_client(create_app(live_settings))
    ctx = client.app[CTX]
    station = await make_station(ctx)
    admin = await make_staff(ctx, role="admin")
    resp = await client.post(
        "/api/v1/staff",
        json={
            "username": "li.na",
            "password": STAFF_PASSWORD,
            "role": "worker",
            "station_id": station.id,
            "phone": "13800138000",
        },
        headers=bearer_for(live_settings, admin),
    )
    member = await resp.json()
    assert resp.status == 201, member
    assert member["phone"] == "138****8000"
    worker = await _login(client, "li.na")
    resp = await client.put("/api/v1/me/preferences", json={"events": {"case.created": {"sms": True}}}, headers=worker)
    assert resp.status == 200, await resp.text()

    await file_case(client, live_settings, await make_phone_resident(ctx))

    async def texted() -> list[dict[str, Any]]:
        return [m for m in sms.messages if m["phone"] == "13800138000"]

    [message] = await eventually(texted, what="an SMS to the worker's phone")
    assert message["template"] == "huimin_staff_alert"


async def test_staff_phone_is_refused_when_not_a_mobile_number(aiohttp_client: Any, live_settings: Settings) -> None:
    client = await aiohttp_client(create_app(live_settings))
    admin = await make_staff(client.app[CTX], role="admin")
    resp = await client.post(
        "/api/v1/staff",
        json={"username": "wang.wu", "password": STAFF_PASSWORD, "role": "admin", "phone": "12345"},
        headers=bearer_for(live_settings, admin),
    )
    assert resp.status == 422
    assert "phone" in (await resp.json())["errors"]


async def _accepted_wechat_case(
    client: Any, settings: Settings, *grants: str
) -> tuple[StaffMember, Resident, dict[str, Any]]:
    """A WeChat resident who granted these templates files a case, which the station head accepts."""
    _, head = await _world(client)
    resident = await make_wechat_resident(client.app[CTX])
    for key in grants:
        await _grant(client, settings, resident, key)
    case = await file_case(client, settings, resident)
    await act(client, settings, head, case["id"], "accept")
    return head, resident, case


# ---------------------------------------------------------------- residents: WeChat


async def test_wechat_resident_with_a_grant_gets_exactly_one_message_per_grant(
    aiohttp_client: Any, live_settings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    client = await aiohttp_client(create_app(live_settings))
    ctx = client.app[CTX]
    head, resident, case = await _accepted_wechat_case(client, live_settings, "accepted")

    async def sent() -> list[dict[str, Any]]:
        return wechat_api.sends

    [message] = await eventually(sent, what="one subscribe-send")
    assert message["touser"] == resident.openid
    assert message["template_id"] == TEMPLATES["accepted"]
    assert case["id"] in message["page"]
    for key, item in message["data"].items():
        kind = key.rstrip("0123456789")
        assert len(item["value"]) <= LIMITS.get(kind, 1000), (key, item)
    assert await _remaining(client, live_settings, resident, "accepted") == 0

    # No grant for "resolved": nothing is sent, the inbox still has it.
    await act(client, live_settings, head, case["id"], "resolve", {"result": "已上门探访，老人身体状况良好。"})

    async def resolved_record() -> list[dict[str, Any]]:
        return [r for r in await _records(client, resident, "wechat") if r["event_type"] == "case.resolved"]

    [record] = await eventually(resolved_record, what="the wechat record of case.resolved")

    async def finished() -> dict[str, Any] | None:
        doc = await ctx.db["notifications"].find_one({"_id": record["_id"]})
        return doc if doc and doc["status"] not in ("pending", "sending") else None

    done = await eventually(finished, what="the resolved record finished")
    assert (done["status"], done["reason"]) == ("skipped", "no_grant")
    await asyncio.sleep(0.3)
    assert len(wechat_api.sends) == 1
    inbox = {n["event_type"] for n in await _inbox(client, bearer_for(live_settings, resident))}
    assert {"case.accepted", "case.resolved"} <= inbox


@pytest.mark.parametrize(
    ("error", "status", "remaining", "sends"),
    [
        ((43101, "user refuse to accept the msg"), "failed", 0, 0),  # refused: the grant stays spent
        ((47003, "argument invalid!"), "failed", 1, 0),  # our data was bad: the grant is given back
        ((-1, "system error"), "sent", 0, 1),  # busy: retried, then sent once
        ((45009, "reach max api daily quota limit"), "sent", 0, 1),  # rate limit: retried, then sent once
    ],
)
async def test_wechat_answers_are_handled_as_documented(
    aiohttp_client: Any,
    live_settings: Settings,
    wechat_api: FakeWeChatAPI,
    error: tuple[int, str],
    status: str,
    remaining: int,
    sends: int,
) -> None:
    client = await aiohttp_client(create_app(live_settings))
    wechat_api.fail_next_sends(error)
    _, resident, _ = await _accepted_wechat_case(client, live_settings, "accepted")

    async def finished() -> list[dict[str, Any]]:
        return [r for r in await _records(client, resident, "wechat") if r["status"] not in ("pending", "sending")]

    [record] = await eventually(finished, what="the wechat record finished")
    assert record["status"] == status, record
    assert len(wechat_api.sends) == sends
    assert await _remaining(client, live_settings, resident, "accepted") == remaining


async def test_an_invalid_access_token_is_refreshed_once_and_the_message_sent(
    aiohttp_client: Any, live_settings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    client = await aiohttp_client(create_app(live_settings))
    head, _, case = await _accepted_wechat_case(client, live_settings, "accepted", "resolved")

    async def sent(n: int) -> bool:
        return len(wechat_api.sends) >= n

    await eventually(lambda: sent(1), what="the first message")
    wechat_api.valid_tokens.clear()  # WeChat forgets the token it gave us: 40001 on the next send
    await act(client, live_settings, head, case["id"], "resolve", {"result": "已办结。"})
    await eventually(lambda: sent(2), what="the second message after a token refresh")
    assert wechat_api.token_fetches == 2
    assert [m["template_id"] for m in wechat_api.sends] == [TEMPLATES["accepted"], TEMPLATES["resolved"]]


# ---------------------------------------------------------------- residents: SMS


async def test_phone_resident_sms_waits_for_quiet_hours_to_end(
    aiohttp_client: Any, live_settings: Settings, sms: FakeSms
) -> None:
    client = await aiohttp_client(create_app(live_settings.replace(quiet_hours="21:00-08:00")))
    ctx = client.app[CTX]
    # The last 23:00 in Shanghai before now (the loops read events from an hour before their clock).
    local = datetime.now(SHANGHAI)
    night = local.replace(hour=23, minute=0, second=0, microsecond=0)
    if night > local:
        night -= timedelta(days=1)
    clock = {"now": night.astimezone(UTC)}
    ctx.clock = lambda: clock["now"]
    _, head = await _world(client)
    resident = await make_phone_resident(ctx)
    case = await file_case(client, live_settings, resident)
    await act(client, live_settings, head, case["id"], "accept")

    async def held() -> list[dict[str, Any]]:
        return [
            r
            for r in await _records(client, resident, "sms")
            if r["status"] == "pending" and r["not_before"].replace(tzinfo=UTC) > clock["now"]
        ]

    await eventually(held, what="the SMS held for quiet hours")
    assert not [m for m in sms.messages if m["phone"] == resident.phone]

    await asyncio.sleep(0.3)
    assert not [m for m in sms.messages if m["phone"] == resident.phone]
    clock["now"] = (night + timedelta(hours=9, minutes=1)).astimezone(UTC)  # 08:01 the next morning

    async def texted() -> list[dict[str, Any]]:
        return [m for m in sms.messages if m["phone"] == resident.phone]

    [message] = await eventually(texted, what="the SMS after quiet hours")
    assert message["template"] == "huimin_accepted"


async def test_resident_who_turned_sms_off_gets_none(
    aiohttp_client: Any, live_settings: Settings, sms: FakeSms
) -> None:
    client = await aiohttp_client(create_app(live_settings))
    ctx = client.app[CTX]
    _, head = await _world(client)
    quiet, loud = await make_phone_resident(ctx), await make_phone_resident(ctx)
    resp = await client.put(
        "/api/v1/me/preferences",
        json={"events": {"case.accepted": {"sms": False}}},
        headers=bearer_for(live_settings, quiet),
    )
    assert resp.status == 200, await resp.text()
    for resident in (quiet, loud):
        case = await file_case(client, live_settings, resident)
        await act(client, live_settings, head, case["id"], "accept")

    async def loud_texted() -> list[dict[str, Any]]:
        return [m for m in sms.messages if m["phone"] == loud.phone]

    await eventually(loud_texted, what="the SMS to the resident who kept SMS on")
    await asyncio.sleep(0.3)
    assert not [m for m in sms.messages if m["phone"] == quiet.phone]
    assert "case.accepted" in {n["event_type"] for n in await _inbox(client, bearer_for(live_settings, quiet))}


# ---------------------------------------------------------------- a failing event


async def test_a_poison_event_is_parked_and_the_events_behind_it_flow_on(
    aiohttp_client: Any, live_settings: Settings, sms: FakeSms
) -> None:
    client = await aiohttp_client(create_app(live_settings))
    ctx = client.app[CTX]
    _, head = await _world(client)
    admin = await make_staff(ctx, role="admin")
    resident = await make_phone_resident(ctx)
    case = await file_case(client, live_settings, resident)
    # Fault injection: an event of the real case whose time was written as text by a foreign
    # writer, so building its notice fails every time.
    created = await ctx.db["events"].find_one({"case_id": case["id"], "type": "case.created"})
    poison = {**created, "_id": created["_id"][:-6] + "ffffff", "seq": 90, "type": "case.accepted", "time": "昨天"}
    await ctx.db["events"].insert_one(poison)
    await act(client, live_settings, head, case["id"], "accept")

    async def texted() -> list[dict[str, Any]]:
        return [m for m in sms.messages if m["phone"] == resident.phone]

    await eventually(texted, what="the real case.accepted notice behind the poison event")

    async def parked() -> list[dict[str, Any]]:
        resp = await client.get("/api/v1/notification-events/parked", headers=bearer_for(live_settings, admin))
        assert resp.status == 200, await resp.text()
        return list((await resp.json())["items"])

    [item] = await eventually(parked, within=10.0, what="the poison event parked")
    assert item["event_id"] == poison["_id"]
    assert item["attempts"] == 5
    assert "AttributeError" in item["last_error"] or "TypeError" in item["last_error"]
    metrics = await (await client.get("/metrics")).text()
    assert 'huimin_background_loop_parked_total{loop="notify-events"} 1.0' in metrics

    resp = await client.post(
        f"/api/v1/notification-events/parked/{poison['_id']}/retry", headers=bearer_for(live_settings, admin)
    )
    assert resp.status == 204
    resp = await client.post(
        f"/api/v1/notification-events/parked/{poison['_id']}/retry", headers=bearer_for(live_settings, admin)
    )
    assert resp.status == 404
    assert (await resp.json())["code"] == "parked_event_not_found"


async def test_supervisors_over_the_division_hear_of_a_returned_case(
    aiohttp_client: Any, live_settings: Settings
) -> None:
    client = await aiohttp_client(create_app(live_settings))
    ctx = client.app[CTX]
    station_id, _ = await _world(client)
    worker = await make_staff(ctx, role="worker", station_id=station_id)
    supervisor = await make_staff(ctx, role="supervisor", division_prefix="3410")
    elsewhere = await make_staff(ctx, role="supervisor", division_prefix="3401")
    case = await file_case(client, live_settings, await make_phone_resident(ctx))
    await act(client, live_settings, worker, case["id"], "return", {"reason": "不属于本站辖区"})

    async def supervisor_heard() -> set[str]:
        types = {n["event_type"] for n in await _inbox(client, bearer_for(live_settings, supervisor))}
        return types if "case.returned" in types else set()

    await eventually(supervisor_heard, what="case.returned in the supervisor's inbox")
    assert await _inbox(client, bearer_for(live_settings, elsewhere)) == []
    # The worker who returned it is not told about their own action.
    assert "case.returned" not in {n["event_type"] for n in await _inbox(client, bearer_for(live_settings, worker))}
