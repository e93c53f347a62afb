"""Notifications driven by real case actions through the HTTP API (two app instances)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from config import Settings
from handlers.keys import CTX
from run import create_app
from service.common.context import Context
from service.identity.accounts import StaffMember
from service.notify.delivery import deliver_due
from service.notify.service import process_events
from tests.factories import act, bearer_for, file_case, make_staff, make_station, make_wechat_resident
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.helpers_notify import notify_settings, read_sse

TEMPLATES = {"accepted": "T-ACCEPTED", "scheduled": "T-SCHEDULED", "resolved": "T-RESOLVED"}
TOWNSHIP = "341021100"  # 徽城镇, 歙县


@pytest.fixture
def nsettings(settings: Settings, wechat_api: FakeWeChatAPI) -> Settings:
    return notify_settings(settings, wechat_api, wechat_templates=json.dumps(TEMPLATES))


async def _world(ctx: Context) -> StaffMember:
    """One station (the catalogue seeded) and a worker of it."""
    station = await make_station(ctx, code=TOWNSHIP, name="徽城镇社工站", point=(118.41, 29.86))
    return await make_staff(ctx, station_id=station.id)


async def test_real_case_life_sends_accepted_scheduled_resolved_once_each(
    aiohttp_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    client = await aiohttp_client(create_app(nsettings))
    ctx = client.app[CTX]
    worker = await _world(ctx)
    resident = await make_wechat_resident(ctx, openid="o-res-1")
    for template_id in TEMPLATES.values():
        resp = await client.post(
            "/api/v1/me/subscriptions",
            json={"template_id": template_id, "result": "accept"},
            headers=bearer_for(nsettings, resident),
        )
        assert resp.status == 201
    case = await file_case(client, nsettings, resident, division_code=TOWNSHIP)
    for action, body in (
        ("accept", {}),
        ("schedule", {"scheduled_at": "2026-12-03T10:00:00+08:00"}),
        ("resolve", {"result": "已上门服务 served at home"}),
    ):
        await act(client, nsettings, worker, case["id"], action, body)
    for _ in range(2):
        await process_events(ctx=ctx)
        await deliver_due(ctx=ctx)

    assert [s["template_id"] for s in wechat_api.sends] == ["T-ACCEPTED", "T-SCHEDULED", "T-RESOLVED"]
    assert all(s["touser"] == "o-res-1" for s in wechat_api.sends)
    assert wechat_api.sends[0]["data"]["character_string2"]["value"] == case["number"][:32]
    assert wechat_api.sends[1]["data"]["time3"]["value"] == "2026年12月03日 10:00"
    inbox = await (await client.get("/api/v1/me/notifications", headers=bearer_for(nsettings, resident))).json()
    scheduled = next(n for n in inbox["items"] if n["event_type"] == "case.scheduled")
    # Each language carries its own date: Chinese in the Chinese text, English in the English one.
    assert "2026年12月03日 10:00" in scheduled["body_zh"]
    assert "3 Dec 2026, 10:00 (Beijing time)" in scheduled["body_en"] and "年" not in scheduled["body_en"]
    subs = await (await client.get("/api/v1/me/subscriptions", headers=bearer_for(nsettings, resident))).json()
    assert all(i["remaining"] == 0 for i in subs["items"])


async def test_stream_on_one_instance_sees_a_case_submitted_through_another_within_2s(
    aiohttp_client: Any, nsettings: Settings
) -> None:
    a = await aiohttp_client(create_app(nsettings))
    b = await aiohttp_client(create_app(nsettings.replace(background_tasks=True)))
    worker = await _world(a.app[CTX])
    resident = await make_wechat_resident(a.app[CTX])
    async with a.get("/api/v1/stream", headers=bearer_for(nsettings, worker)) as resp:
        assert resp.status == 200
        started = time.monotonic()
        case = await file_case(b, nsettings, resident, division_code=TOWNSHIP)
        [msg] = await read_sse(resp, count=1, timeout=2.0)
        assert time.monotonic() - started < 2.0
    assert msg["data"]["type"] == "case.created"
    assert msg["data"]["case_id"] == case["id"]
    assert msg["data"]["station_id"] == worker.station_id
