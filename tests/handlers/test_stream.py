"""The staff live feed (SSE) across two app instances sharing MongoDB and Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from config import Settings
from handlers.keys import CTX
from run import create_app
from service.models import Principal
from service.notify import process_events
from service.stream import hub_for, open_stream
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.helpers_notify import (
    add_case,
    add_event,
    bearer,
    notify_settings,
    read_sse,
    resident,
    supervisor,
    token_of,
    worker,
)

STREAM = "/api/v1/stream"


@pytest.fixture
async def wechat_api() -> AsyncIterator[FakeWeChatAPI]:
    fake = await FakeWeChatAPI().start()
    yield fake
    await fake.close()


@pytest.fixture
def nsettings(settings: Settings, wechat_api: FakeWeChatAPI) -> Settings:
    return notify_settings(settings, wechat_api, stream_queue_size=4)


@pytest.fixture
async def two_apps(aiohttp_client: Any, nsettings: Settings) -> tuple[Any, Any]:
    """A: serves streams only; B: runs the background loops (claims and publishes events)."""
    a = await aiohttp_client(create_app(nsettings))
    b = await aiohttp_client(create_app(nsettings.replace(background_tasks=True)))
    return a, b


async def test_stream_on_one_instance_gets_an_event_processed_by_another_within_2s(
    two_apps: tuple[Any, Any], nsettings: Settings
) -> None:
    a, _b = two_apps
    db = a.app[CTX].db
    await add_case(db)
    async with a.get(STREAM, headers=bearer(nsettings, worker())) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        started = time.monotonic()
        eid = await add_event(db, "case.dispatched", actor=("system", "admin"))
        [msg] = await read_sse(resp, count=1, timeout=2.0)
        assert time.monotonic() - started < 2.0
    assert msg["data"]["event_id"] == eid
    assert msg["data"]["type"] == "case.dispatched"
    assert msg["data"]["case_number"] == "HM202611280c-1"
    assert msg["id"] == msg["data"]["id"]


async def test_stream_shows_only_what_the_staff_member_may_see(two_apps: tuple[Any, Any], nsettings: Settings) -> None:
    a, _b = two_apps
    db = a.app[CTX].db
    other = worker("w-2", station="st-2")
    async with (
        a.get(STREAM, headers=bearer(nsettings, other)) as other_resp,
        a.get(STREAM, headers=bearer(nsettings, supervisor(prefix="3410"))) as sup_resp,
        a.get(STREAM, headers=bearer(nsettings, supervisor("sup-2", prefix="3401"))) as far_resp,
    ):
        await add_event(db, "case.dispatched", station="st-1")
        await add_event(db, "case.assigned", station="st-1", data={"assignee_id": "w-1"})
        await add_event(db, "case.noted", station="st-2")  # not a live-feed event type
        last = await add_event(db, "case.urged", station="st-2", actor=("sup-1", "supervisor"))
        [only] = await read_sse(other_resp, count=1)
        assert only["data"]["event_id"] == last
        seen = await read_sse(sup_resp, count=3)
        assert [m["data"]["type"] for m in seen] == ["case.dispatched", "case.assigned", "case.urged"]
        await add_event(
            db, "visit.due", case_id=None, division="340102003", station="st-9", data={"period": "2026-W48"}
        )
        [visit] = await read_sse(far_resp, count=1)
        assert visit["data"]["type"] == "visit.due"


async def test_last_event_id_resumes_without_gaps_or_duplicates(two_apps: tuple[Any, Any], nsettings: Settings) -> None:
    a, _b = two_apps
    db = a.app[CTX].db
    headers = bearer(nsettings, worker())
    ids = [await add_event(db, "case.dispatched", case_id=f"c-{i}") for i in range(2)]
    async with a.get(STREAM, headers=headers, params={"last_event_id": "0"}) as resp:
        first = await read_sse(resp, count=2)
    assert [m["data"]["event_id"] for m in first] == ids
    # Disconnected: three more happen meanwhile.
    ids += [await add_event(db, "case.dispatched", case_id=f"c-{i}") for i in range(2, 5)]
    await asyncio.sleep(0.5)  # let the other instance publish them while nobody listens
    async with a.get(STREAM, headers=headers | {"Last-Event-ID": first[-1]["id"]}) as resp:
        replayed = await read_sse(resp, count=3)
        ids.append(await add_event(db, "case.dispatched", case_id="c-5"))
        [live] = await read_sse(resp, count=1)
    got = [m["data"]["event_id"] for m in first + replayed + [live]]
    assert got == ids
    feed_ids = [int(m["id"]) for m in first + replayed + [live]]
    assert feed_ids == sorted(set(feed_ids))


async def test_stalled_client_does_not_delay_another_clients_events(
    two_apps: tuple[Any, Any], nsettings: Settings
) -> None:
    a, _b = two_apps
    db = a.app[CTX].db
    headers = bearer(nsettings, worker())
    async with a.get(STREAM, headers=headers) as _stalled, a.get(STREAM, headers=headers) as reader:
        started = time.monotonic()
        for i in range(20):
            await add_event(db, "case.dispatched", case_id=f"c-{i}")
        msgs = await read_sse(reader, count=20, timeout=3.0)
        assert time.monotonic() - started < 3.0
        assert len({m["id"] for m in msgs}) == 20


async def test_a_connection_whose_queue_fills_is_dropped_and_others_go_on(
    aiohttp_client: Any, nsettings: Settings
) -> None:
    app = await aiohttp_client(create_app(nsettings))
    ctx = app.app[CTX]
    principal = worker()
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
    ids = [await add_event(ctx.db, "case.dispatched", case_id=f"c-{i}") for i in range(10)]
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
    async with a.get(STREAM, headers=bearer(nsettings, worker())) as resp:
        lines: list[str] = []
        while ": ping" not in lines:
            lines.append((await asyncio.wait_for(resp.content.readline(), 1.0)).decode().strip())


async def test_stream_accepts_the_token_as_a_query_parameter(aiohttp_client: Any, nsettings: Settings) -> None:
    a = await aiohttp_client(create_app(nsettings))
    async with a.get(STREAM, params={"access_token": token_of(nsettings, worker())}) as resp:
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
    resp = await a.get(STREAM, params={"access_token": token_of(nsettings, resident())})
    assert resp.status == 403
    assert (await resp.json())["code"] == "role_not_allowed"


async def test_query_token_is_refused_on_other_routes(aiohttp_client: Any, nsettings: Settings) -> None:
    a = await aiohttp_client(create_app(nsettings))
    resp = await a.get("/api/v1/me/notifications", params={"access_token": token_of(nsettings, worker())})
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
        resp = await session.get(f"http://127.0.0.1:{port}{STREAM}", headers=bearer(nsettings, worker()))
        assert resp.status == 200
        await resp.content.readline()  # the retry: line, so the handler is inside its loop
        started = time.monotonic()
        await runner.cleanup()
        assert time.monotonic() - started < 3.0
        resp.close()


async def test_open_stream_refuses_non_staff(aiohttp_client: Any, nsettings: Settings) -> None:
    from service.errors import PermissionDeniedError

    a = await aiohttp_client(create_app(nsettings))
    with pytest.raises(PermissionDeniedError):
        await open_stream(ctx=a.app[CTX], principal=Principal(subject="c", role="client"), last_event_id=None)
