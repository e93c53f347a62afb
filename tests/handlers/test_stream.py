"""The staff live feed (SSE) across two app instances sharing MongoDB and Redis.

The events on the feed come from real case actions and the visit register, by accounts
made through the factories.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from config import Settings
from handlers.keys import CTX
from run import create_app
from service.common.context import Context
from service.notify.service import process_events
from service.notify.stream import hub_for, open_stream
from service.visits.schedules import close_periods
from tests.factories import (
    bearer_for,
    make_case,
    make_client,
    make_elder,
    make_staff,
    make_station,
    make_wechat_resident,
    principal_of,
)
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.helpers_notify import created_event, happen, notify_settings, read_sse, station_worker, token_of

STREAM = "/api/v1/stream"


@pytest.fixture
def nsettings(settings: Settings, wechat_api: FakeWeChatAPI) -> Settings:
    return notify_settings(settings, wechat_api, stream_queue_size=4)


@pytest.fixture
async def two_apps(aiohttp_client: Any, nsettings: Settings) -> tuple[Any, Any]:
    """A: serves streams only; B: runs the background loops (claims and publishes events)."""
    a = await aiohttp_client(create_app(nsettings))
    b = await aiohttp_client(create_app(nsettings.replace(background_tasks=True)))
    return a, b


async def all_handled(ctx: Context, timeout: float = 3.0) -> None:
    """Wait until the other instance has handled (and published) every event written so far."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = await ctx.db["events"].count_documents({})
        if await ctx.db["notify_claims"].count_documents({"done": True}) >= events:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the events were not handled in time")


async def test_stream_on_one_instance_gets_an_event_processed_by_another_within_2s(
    two_apps: tuple[Any, Any], nsettings: Settings
) -> None:
    a, _b = two_apps
    ctx = a.app[CTX]
    worker = await station_worker(ctx)
    resident = await make_wechat_resident(ctx)
    async with a.get(STREAM, headers=bearer_for(nsettings, worker)) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        started = time.monotonic()
        case = await make_case(ctx, resident)
        [msg] = await read_sse(resp, count=1, timeout=2.0)
        assert time.monotonic() - started < 2.0
    assert msg["data"]["event_id"] == created_event(case)
    assert msg["data"]["type"] == "case.created"
    assert msg["data"]["case_number"] == case["number"]
    assert msg["id"] == msg["data"]["id"]


async def test_stream_shows_only_what_the_staff_member_may_see(two_apps: tuple[Any, Any], nsettings: Settings) -> None:
    a, _b = two_apps
    ctx = a.app[CTX]
    here = await make_station(ctx)
    there = await make_station(ctx, code="341002002", name="老街街道社工站", point=(118.33, 29.71))
    hefei = await make_station(ctx, code="340102001", name="明光路街道社工站", point=(117.304, 31.86))
    worker = await make_staff(ctx, station_id=here.id)
    head = await make_staff(ctx, role="station_head", station_id=here.id)
    other = await make_staff(ctx, station_id=there.id)
    sup = await make_staff(ctx, role="supervisor", division_prefix="3410")
    far = await make_staff(ctx, role="supervisor", division_prefix="3401")
    admin = await make_staff(ctx, role="admin")
    resident = await make_wechat_resident(ctx)
    to_assign = await make_case(ctx, resident)
    to_dispatch = await make_case(ctx, resident)
    over_there = await make_case(ctx, resident, division_code="341002002")
    assert (to_assign["station_id"], over_there["station_id"]) == (here.id, there.id)
    await happen(ctx, head, to_assign["id"], "accept")
    await make_elder(ctx, township="340102001", location={"lon": 117.304, "lat": 31.86})
    await all_handled(ctx)  # what happened before anyone listens is not on these feeds
    async with (
        a.get(STREAM, headers=bearer_for(nsettings, other)) as other_resp,
        a.get(STREAM, headers=bearer_for(nsettings, sup)) as sup_resp,
        a.get(STREAM, headers=bearer_for(nsettings, far)) as far_resp,
    ):
        await happen(ctx, admin, to_dispatch["id"], "dispatch", station_id=here.id)
        await happen(ctx, head, to_assign["id"], "assign", assignee_id=worker.id)
        await happen(ctx, other, over_there["id"], "note", text="已电话联系")  # not a live-feed event type
        last = await happen(ctx, sup, over_there["id"], "urge")
        [only] = await read_sse(other_resp, count=1)
        assert only["data"]["event_id"] == last
        seen = await read_sse(sup_resp, count=3)
        assert [m["data"]["type"] for m in seen] == ["case.dispatched", "case.assigned", "case.urged"]
        # The register's first period ends unvisited: a miss in Hefei, outside the first supervisor's area.
        assert await close_periods(ctx=ctx, at=ctx.now() + timedelta(days=400)) == 1
        [visit] = await read_sse(far_resp, count=1)
        assert visit["data"]["type"] == "visit.missed"
        assert visit["data"]["station_id"] == hefei.id


async def test_last_event_id_resumes_without_gaps_or_duplicates(two_apps: tuple[Any, Any], nsettings: Settings) -> None:
    a, _b = two_apps
    ctx = a.app[CTX]
    headers = bearer_for(nsettings, await station_worker(ctx))
    resident = await make_wechat_resident(ctx)
    ids = [created_event(await make_case(ctx, resident)) for _ in range(2)]
    async with a.get(STREAM, headers=headers, params={"last_event_id": "0"}) as resp:
        first = await read_sse(resp, count=2)
    assert [m["data"]["event_id"] for m in first] == ids
    # Disconnected: three more happen meanwhile.
    ids += [created_event(await make_case(ctx, resident)) for _ in range(3)]
    await asyncio.sleep(0.5)  # let the other instance publish them while nobody listens
    async with a.get(STREAM, headers=headers | {"Last-Event-ID": first[-1]["id"]}) as resp:
        replayed = await read_sse(resp, count=3)
        ids.append(created_event(await make_case(ctx, resident)))
        [live] = await read_sse(resp, count=1)
    got = [m["data"]["event_id"] for m in first + replayed + [live]]
    assert got == ids
    feed_ids = [int(m["id"]) for m in first + replayed + [live]]
    assert feed_ids == sorted(set(feed_ids))


async def test_stalled_client_does_not_delay_another_clients_events(
    two_apps: tuple[Any, Any], nsettings: Settings
) -> None:
    a, _b = two_apps
    ctx = a.app[CTX]
    headers = bearer_for(nsettings, await station_worker(ctx))
    resident = await make_wechat_resident(ctx)
    async with a.get(STREAM, headers=headers) as _stalled, a.get(STREAM, headers=headers) as reader:
        await asyncio.gather(*(make_case(ctx, resident) for _ in range(20)))
        started = time.monotonic()  # the other instance publishes while the cases are filed
        msgs = await read_sse(reader, count=20, timeout=3.0)
        assert time.monotonic() - started < 3.0
        assert len({m["id"] for m in msgs}) == 20


async def test_a_connection_whose_queue_fills_is_dropped_and_others_go_on(
    aiohttp_client: Any, nsettings: Settings
) -> None:
    app = await aiohttp_client(create_app(nsettings))
    ctx = app.app[CTX]
    principal = principal_of(await station_worker(ctx))
    resident = await make_wechat_resident(ctx)
    stalled = await open_stream(ctx=ctx, principal=principal, last_event_id=None)
    active = await open_stream(ctx=ctx, principal=principal, last_event_id=None)
    received: list[str] = []

    async def consume() -> None:
        async for message in active:
            if message.event is not None:
                received.append(message.event["event_id"])
                if len(received) == 10:
                    return

    consumer = asyncio.create_task(consume())
    ids = [created_event(await make_case(ctx, resident)) for _ in range(10)]
    await process_events(ctx=ctx)
    await asyncio.wait_for(consumer, 2.0)
    assert received == ids
    assert stalled.conn.dropped  # queue of 4 overflowed: dropped, not waited for
    assert [m async for m in stalled] == []  # its iterator ends at once; the client resumes later
    hub = await hub_for(ctx)
    assert stalled.conn not in hub.connections
    await stalled.close()
    await active.close()


async def test_heartbeats_keep_an_idle_stream_alive(aiohttp_client: Any, nsettings: Settings) -> None:
    a = await aiohttp_client(create_app(nsettings))
    async with a.get(STREAM, headers=bearer_for(nsettings, await station_worker(a.app[CTX]))) as resp:
        lines: list[str] = []
        while ": ping" not in lines:
            lines.append((await asyncio.wait_for(resp.content.readline(), 1.0)).decode().strip())


async def test_stream_accepts_the_token_as_a_query_parameter(aiohttp_client: Any, nsettings: Settings) -> None:
    a = await aiohttp_client(create_app(nsettings))
    worker = await station_worker(a.app[CTX])
    async with a.get(STREAM, params={"access_token": token_of(nsettings, worker)}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")


async def test_stream_without_a_token_is_401(aiohttp_client: Any, nsettings: Settings) -> None:
    a = await aiohttp_client(create_app(nsettings))
    resp = await a.get(STREAM)
    assert resp.status == 401
    assert (await resp.json())["code"] == "authentication_required"


async def test_stream_with_a_bad_query_token_is_401(aiohttp_client: Any, nsettings: Settings) -> None:
    a = await aiohttp_client(create_app(nsettings))
    resp = await a.get(STREAM, params={"access_token": "not-a-token"})
    assert resp.status == 401
    assert (await resp.json())["code"] == "invalid_token"


async def test_stream_with_a_residents_token_is_403(aiohttp_client: Any, nsettings: Settings) -> None:
    a = await aiohttp_client(create_app(nsettings))
    resident = await make_wechat_resident(a.app[CTX])
    resp = await a.get(STREAM, params={"access_token": token_of(nsettings, resident)})
    assert resp.status == 403
    assert (await resp.json())["code"] == "role_not_allowed"


async def test_query_token_is_refused_on_other_routes(aiohttp_client: Any, nsettings: Settings) -> None:
    a = await aiohttp_client(create_app(nsettings))
    worker = await station_worker(a.app[CTX])
    resp = await a.get("/api/v1/me/notifications", params={"access_token": token_of(nsettings, worker)})
    assert resp.status == 401


async def test_shutdown_ends_open_streams(nsettings: Settings) -> None:
    # A quiet stream (no heartbeat for a minute) held by a client that stays connected:
    # only closing the streams on shutdown lets the server stop before its 10 s grace period.
    app = create_app(nsettings.replace(stream_heartbeat_seconds=60.0))
    runner = web.AppRunner(app, shutdown_timeout=10.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        worker = await station_worker(app[CTX])
        resp = await session.get(f"http://127.0.0.1:{port}{STREAM}", headers=bearer_for(nsettings, worker))
        assert resp.status == 200
        await resp.content.readline()  # the retry: line, so the handler is inside its loop
        started = time.monotonic()
        await runner.cleanup()
        assert time.monotonic() - started < 3.0
        resp.close()


async def test_open_stream_refuses_non_staff(aiohttp_client: Any, nsettings: Settings) -> None:
    from service.common.errors import PermissionDeniedError

    a = await aiohttp_client(create_app(nsettings))
    client = await make_client(a.app[CTX])
    with pytest.raises(PermissionDeniedError):
        await open_stream(ctx=a.app[CTX], principal=principal_of(client), last_event_id=None)
