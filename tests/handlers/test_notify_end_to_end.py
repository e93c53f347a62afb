"""Notifications driven by real case actions through the HTTP API (two app instances)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from config import Settings
from handlers.keys import CTX
from run import create_app
from service import catalog, stations
from service.catalog import example_answers
from service.catalog_seed import SEED_SERVICES
from service.models import Principal
from service.notify import deliver_due, process_events
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.helpers_notify import bearer, notify_settings, read_sse, resident, worker

ADMIN = Principal(subject="admin-1", role="admin")
TEMPLATES = {"accepted": "T-ACCEPTED", "scheduled": "T-SCHEDULED", "resolved": "T-RESOLVED"}


@pytest.fixture
async def wechat_api() -> AsyncIterator[FakeWeChatAPI]:
    fake = await FakeWeChatAPI().start()
    yield fake
    await fake.close()


@pytest.fixture
def nsettings(settings: Settings, wechat_api: FakeWeChatAPI) -> Settings:
    return notify_settings(settings, wechat_api, wechat_templates=json.dumps(TEMPLATES))


async def _world(ctx: Any) -> str:
    """Seed the catalogue and one station; returns the station id."""
    await catalog.seed_catalog(ctx)
    station = await stations.create_station(
        ctx=ctx,
        principal=ADMIN,
        data={
            "code": "341021100",
            "name": "徽城镇社工站",
            "location": {"type": "Point", "coordinates": [118.41, 29.86]},
            "capabilities": sorted({s.capability for s in SEED_SERVICES}),
            "precision": "exact",
        },
    )
    return str(station.id)


async def _submit(client: Any, settings: Settings, ctx: Any) -> dict[str, Any]:
    service = await catalog.get_service(ctx=ctx, code="elderly_home_visit")
    body = {
        "service_code": "elderly_home_visit",
        "answers": example_answers(service),
        "division_code": "341021100",
        "address": "徽城镇 新安路 1 号",
        "contact": {"name": "王芳", "phone": "13912345678"},
    }
    resp = await client.post("/api/v1/cases", json=body, headers=bearer(settings, resident("res-1")))
    payload = await resp.json()
    assert resp.status == 201, payload
    return payload


async def test_real_case_life_sends_accepted_scheduled_resolved_once_each(
    aiohttp_client: Any, nsettings: Settings, wechat_api: FakeWeChatAPI
) -> None:
    client = await aiohttp_client(create_app(nsettings))
    ctx = client.app[CTX]
    station_id = await _world(ctx)
    await ctx.db["residents"].insert_one({"_id": "res-1", "openid": "o-res-1"})
    for template_id in TEMPLATES.values():
        resp = await client.post(
            "/api/v1/me/subscriptions",
            json={"template_id": template_id, "result": "accept"},
            headers=bearer(nsettings, resident("res-1")),
        )
        assert resp.status == 201
    case = await _submit(client, nsettings, ctx)
    w = bearer(nsettings, worker("w-a", station=station_id))
    for action, body in (
        ("accept", {}),
        ("schedule", {"scheduled_at": "2026-12-03T10:00:00+08:00"}),
        ("resolve", {"result": "已上门服务 served at home"}),
    ):
        resp = await client.post(f"/api/v1/cases/{case['id']}/{action}", json=body, headers=w)
        assert resp.status == 200, await resp.text()
    for _ in range(2):
        await process_events(ctx=ctx)
        await deliver_due(ctx=ctx)

    assert [s["template_id"] for s in wechat_api.sends] == ["T-ACCEPTED", "T-SCHEDULED", "T-RESOLVED"]
    assert all(s["touser"] == "o-res-1" for s in wechat_api.sends)
    assert wechat_api.sends[0]["data"]["character_string2"]["value"] == case["number"][:32]
    assert wechat_api.sends[1]["data"]["time3"]["value"] == "2026年12月03日 10:00"
    inbox = await (await client.get("/api/v1/me/notifications", headers=bearer(nsettings, resident("res-1")))).json()
    scheduled = next(n for n in inbox["items"] if n["event_type"] == "case.scheduled")
    # Each language carries its own date: Chinese in the Chinese text, English in the English one.
    assert "2026年12月03日 10:00" in scheduled["body_zh"]
    assert "3 Dec 2026, 10:00 (Beijing time)" in scheduled["body_en"] and "年" not in scheduled["body_en"]
    subs = await (await client.get("/api/v1/me/subscriptions", headers=bearer(nsettings, resident("res-1")))).json()
    assert all(i["remaining"] == 0 for i in subs["items"])


async def test_stream_on_one_instance_sees_a_case_submitted_through_another_within_2s(
    aiohttp_client: Any, nsettings: Settings
) -> None:
    a = await aiohttp_client(create_app(nsettings))
    b = await aiohttp_client(create_app(nsettings.replace(background_tasks=True)))
    station_id = await _world(a.app[CTX])
    async with a.get("/api/v1/stream", headers=bearer(nsettings, worker("w-a", station=station_id))) as resp:
        assert resp.status == 200
        started = time.monotonic()
        case = await _submit(b, nsettings, b.app[CTX])
        [msg] = await read_sse(resp, count=1, timeout=2.0)
        assert time.monotonic() - started < 2.0
    assert msg["data"]["type"] == "case.created"
    assert msg["data"]["case_id"] == case["id"]
    assert msg["data"]["station_id"] == station_id
