"""Webhook delivery against a local receiver: signatures, order, retries, leases, isolation."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.keys import CTX
from run import open_context
from service.context import Context
from service.webhooks.delivery import backoff_seconds, deliver_once, fan_out_events, run_delivery_loop
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers_webhooks import Clock, client_headers, insert_case, insert_event, subscribe, verify

LIFECYCLE = ("case.created", "case.dispatched", "case.accepted", "case.resolved", "case.closed")


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = await WebhookReceiver().start()
    yield r
    await r.close()


def clocked(ctx: Context, clock: Clock, **settings: Any) -> Context:
    """The app's context with a hand-moved clock (and some settings changed)."""
    return dataclasses.replace(ctx, clock=clock, settings=ctx.settings.replace(**settings))


async def run_loop_until(ctx: Context, condition: Any, timeout: float = 10.0) -> None:
    task = asyncio.create_task(run_delivery_loop(ctx))
    try:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "deliveries did not arrive in time"
            await asyncio.sleep(0.02)
    finally:
        await stop(task)


async def stop(*tasks: asyncio.Task[Any]) -> None:
    """Cancel delivery loops; they must end promptly (a loop that ignores cancellation hangs shutdown)."""
    for t in tasks:
        t.cancel()
    _, pending = await asyncio.wait(tasks, timeout=10)
    for t in pending:
        t.print_stack()
    assert not pending, "a delivery loop did not stop when cancelled"


def fast(settings: Any, **more: Any) -> Any:
    return settings.replace(
        webhook_poll_seconds=0.02,
        webhook_backoff_base_seconds=0.05,
        webhook_backoff_cap_seconds=0.2,
        **more,
    )


async def test_event_is_delivered_signed_with_the_documented_payload(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    sub = await subscribe(client, client_headers(settings, "client-a"), receiver.url("a"))
    ctx = client.app[CTX]
    assert ctx.extras.pop("webhook_case_view") is not None  # installed by the app; without it no case body
    await insert_case(ctx.db, "c1", created_by="client-a")
    event_id = await insert_event(ctx.db, "c1", 1, "case.created", data={"service_code": "elderly.home_visit"})
    assert await deliver_once(ctx=ctx, worker_id="w1") == 1
    (req,) = receiver.received("a")
    assert verify(sub["secret"], req.headers["Huimin-Signature"], req.body, int(time.time()))
    assert not verify(sub["secret"], req.headers["Huimin-Signature"], req.body + b" ", int(time.time()))
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Huimin-Event-Id"] == event_id
    assert req.headers["Huimin-Event-Type"] == "case.created"
    assert req.headers["Huimin-Delivery-Attempt"] == "1"
    body = req.json
    assert body["id"] == event_id and body["type"] == "case.created"
    assert (body["case_id"], body["case_number"]) == ("c1", "AH-c1")
    assert body["data"] == {"service_code": "elderly.home_visit"}
    assert datetime.fromisoformat(body["time"]).tzinfo is not None
    assert "case" not in body
    assert "actor" not in body
    assert await deliver_once(ctx=ctx, worker_id="w1") == 0  # delivered once, not again


async def test_case_view_hook_adds_the_case_as_the_client_sees_it(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    await subscribe(client, client_headers(settings, "client-a"), receiver.url("a"))
    ctx = client.app[CTX]
    seen: list[tuple[str, str]] = []

    async def case_view(_ctx: Context, case_id: str, client_id: str) -> dict[str, Any] | None:
        seen.append((case_id, client_id))
        return {"id": case_id, "state": "dispatched", "state_label": "已派单 dispatched"}

    ctx.extras["webhook_case_view"] = case_view
    await insert_case(ctx.db, "c1", created_by="client-a")
    await insert_event(ctx.db, "c1", 1, "case.created")
    await deliver_once(ctx=ctx, worker_id="w1")
    (req,) = receiver.received("a")
    assert req.json["case"] == {"id": "c1", "state": "dispatched", "state_label": "已派单 dispatched"}
    assert seen == [("c1", "client-a")]


async def test_full_lifecycle_arrives_in_order_per_case_even_when_an_attempt_fails(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    await subscribe(client, client_headers(settings, "client-a"), receiver.url("a"))
    clock = Clock()
    ctx = clocked(client.app[CTX], clock)
    expected: dict[str, list[str]] = {}
    for case_id in ("c1", "c2"):
        await insert_case(ctx.db, case_id, created_by="client-a")
    base = datetime.now(UTC)
    for seq, event_type in enumerate(LIFECYCLE, start=1):
        for n, case_id in enumerate(("c1", "c2")):
            at = base + timedelta(milliseconds=10 * seq + n)
            expected.setdefault(case_id, []).append(await insert_event(ctx.db, case_id, seq, event_type, created_at=at))
    receiver.fail_next("a", 3)
    for _ in range(30):
        await deliver_once(ctx=ctx, worker_id="w1")
        if len(receiver.delivered("a")) == 10:
            break
        clock.advance(hours=2)
    delivered = receiver.delivered("a")
    assert len(delivered) == 10
    for case_id, ids in expected.items():
        assert [r.event_id for r in delivered if r.json["case_id"] == case_id] == ids
        # No event of the case was even attempted before the previous one was delivered.
        attempts = [r for r in receiver.received("a") if r.json["case_id"] == case_id]
        first_try = {r.event_id: i for i, r in reversed(list(enumerate(attempts)))}
        ok_at = {r.event_id: i for i, r in enumerate(attempts) if r.status == 200}
        for prev, nxt in itertools.pairwise(ids):
            assert ok_at[prev] < first_try[nxt]
    assert [r.json["type"] for r in delivered if r.json["case_id"] == "c1"] == list(LIFECYCLE)
    retried = [r for r in receiver.received("a") if r.headers["Huimin-Delivery-Attempt"] == "2"]
    assert retried, "the failed deliveries were retried with an attempt counter"


async def test_receiver_that_fails_then_recovers_gets_every_event_from_the_loop(
    aiohttp_client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    from run import create_app

    client = await aiohttp_client(create_app(fast(settings)))
    await subscribe(client, client_headers(settings, "client-a"), receiver.url("a"))
    ctx = client.app[CTX]
    await insert_case(ctx.db, "c1", created_by="client-a")
    ids = [await insert_event(ctx.db, "c1", seq, t) for seq, t in enumerate(LIFECYCLE[:3], start=1)]
    receiver.fail_next("a", 4, status=502)
    await run_loop_until(ctx, lambda: len(receiver.delivered("a")) == 3)
    assert [r.event_id for r in receiver.delivered("a")] == ids
    assert len(receiver.received("a")) == 7
    assert receiver.overlaps == []


async def test_delivery_leased_by_a_crashed_worker_is_sent_after_the_lease_expires(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    await subscribe(client, client_headers(settings, "client-a"), receiver.url("a"))
    clock = Clock()
    ctx = clocked(client.app[CTX], clock)
    await insert_case(ctx.db, "c1", created_by="client-a")
    event_id = await insert_event(ctx.db, "c1", 1, "case.created")
    assert await fan_out_events(ctx=ctx) == 1
    # A worker took the lease and then died before sending.
    await ctx.db["webhook_deliveries"].update_one(
        {"event_id": event_id},
        {"$set": {"lease_until": clock() + timedelta(seconds=60), "lease_owner": "gone:1", "lease_token": "t"}},
    )
    assert await deliver_once(ctx=ctx, worker_id="w2") == 0
    clock.advance(seconds=30)
    assert await deliver_once(ctx=ctx, worker_id="w2") == 0
    assert receiver.received("a") == []
    clock.advance(seconds=31)
    assert await deliver_once(ctx=ctx, worker_id="w2") == 1
    assert [r.event_id for r in receiver.delivered("a")] == [event_id]
    doc = await ctx.db["webhook_deliveries"].find_one({"event_id": event_id})
    assert doc["status"] == "delivered" and doc["attempt_log"][0]["worker_id"] == "w2"


async def test_event_committed_before_a_restart_is_delivered_by_the_next_process(
    settings: Any, receiver: WebhookReceiver, client: Any
) -> None:
    await subscribe(client, client_headers(settings, "client-a"), receiver.url("a"))
    first, close_first = await open_context(settings)
    await insert_case(first.db, "c1", created_by="client-a")
    event_id = await insert_event(first.db, "c1", 1, "case.accepted")
    await close_first()  # the process ends after the commit, before any delivery
    second, close_second = await open_context(settings)
    try:
        assert await deliver_once(ctx=second, worker_id="restarted") == 1
    finally:
        await close_second()
    assert [r.event_id for r in receiver.delivered("a")] == [event_id]


async def test_two_delivery_loops_never_send_one_event_at_once_and_deliver_each_once(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    for name in ("client-a", "client-b"):
        await subscribe(client, client_headers(settings, name), receiver.url(name))
    s = fast(settings)
    one, close_one = await open_context(s)
    two, close_two = await open_context(s)
    try:
        expected: set[tuple[str, str]] = set()
        for name in ("client-a", "client-b"):
            for c in range(3):
                case_id = f"{name}-c{c}"
                await insert_case(one.db, case_id, created_by=name)
                for seq, event_type in enumerate(LIFECYCLE[:4], start=1):
                    expected.add((name, await insert_event(one.db, case_id, seq, event_type)))
        receiver.delay = 0.03  # widen the window in which a second sender could slip in
        tasks = [asyncio.create_task(run_delivery_loop(ctx)) for ctx in (one, two)]
        try:
            deadline = time.monotonic() + 20
            while len(receiver.received()) < len(expected):
                assert time.monotonic() < deadline, "deliveries did not arrive in time"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # give a duplicate the chance to show up
        finally:
            await stop(*tasks)
    finally:
        await close_one()
        await close_two()
    assert receiver.overlaps == []
    got = Counter((r.path, r.event_id) for r in receiver.received())
    assert set(got) == expected
    assert max(got.values()) == 1
    owners = {d["attempt_log"][0]["worker_id"] async for d in client.app[CTX].db["webhook_deliveries"].find({})}
    assert len(owners) >= 1


async def test_hanging_receiver_of_one_client_does_not_hold_up_another(
    aiohttp_client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    from run import create_app

    s = fast(settings, webhook_timeout_seconds=2.0, webhook_connect_timeout_seconds=0.5, webhook_lease_seconds=10.0)
    client = await aiohttp_client(create_app(s))
    await subscribe(client, client_headers(settings, "client-a"), receiver.url("a"))
    await subscribe(client, client_headers(settings, "client-b"), receiver.url("b"))
    receiver.hang("a")
    ctx = client.app[CTX]
    await insert_case(ctx.db, "ca", created_by="client-a")
    await insert_case(ctx.db, "cb", created_by="client-b")
    await insert_event(ctx.db, "ca", 1, "case.created")
    await insert_event(ctx.db, "cb", 1, "case.created")
    task = asyncio.create_task(run_delivery_loop(ctx))
    try:
        await receiver.wait_for(1, "b", timeout=1.5)
        inserted = time.monotonic()
        await insert_event(ctx.db, "cb", 2, "case.dispatched")
        await receiver.wait_for(2, "b", timeout=1.5)
        second = receiver.delivered("b")[1]
        assert second.arrived - inserted < 1.5
        assert second.in_flight_at_arrival.get("a") == 1, "client A's request was still hanging"
        # The hanging attempt ends at the timeout and is recorded as a failure to retry.
        deadline = time.monotonic() + 5
        while True:
            doc = await ctx.db["webhook_deliveries"].find_one({"client_id": "client-a"})
            if doc and doc["attempts"] >= 1:
                break
            assert time.monotonic() < deadline, "the hanging attempt was not timed out"
            await asyncio.sleep(0.05)
    finally:
        await stop(task)
    assert doc["status"] == "pending"
    assert doc["last_error"] == "timed out after 2 s"
    assert 1900 <= doc["last_latency_ms"] < 4000


async def test_client_never_receives_events_of_cases_it_did_not_create(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    await subscribe(client, client_headers(settings, "client-a"), receiver.url("a"))
    await subscribe(client, client_headers(settings, "client-b"), receiver.url("b"))
    # client-c may manage webhooks but not read cases: it gets nothing, even of its own case.
    await subscribe(client, client_headers(settings, "client-c", frozenset({"webhooks:manage"})), receiver.url("c"))
    ctx = client.app[CTX]
    await insert_case(ctx.db, "ca", created_by="client-a")
    await insert_case(ctx.db, "cb", created_by="client-b")
    await insert_case(ctx.db, "cc", created_by="client-c")
    await insert_case(ctx.db, "cr", created_by="client-a", role="resident")  # same subject, not the client
    ids = {c: await insert_event(ctx.db, c, 1, "case.created") for c in ("ca", "cb", "cc", "cr")}
    await insert_event(ctx.db, "missing-case", 1, "case.created")
    await deliver_once(ctx=ctx, worker_id="w1")
    assert [r.event_id for r in receiver.received("a")] == [ids["ca"]]
    assert [r.event_id for r in receiver.received("b")] == [ids["cb"]]
    assert receiver.received("c") == []


async def test_client_disabled_through_the_scopes_hook_receives_nothing(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    await subscribe(client, client_headers(settings, "client-a"), receiver.url("a"))
    ctx = client.app[CTX]

    async def current_scopes(_ctx: Context, client_id: str) -> frozenset[str] | None:
        return None  # the client was disabled

    ctx.extras["webhook_client_scopes"] = current_scopes
    await insert_case(ctx.db, "ca", created_by="client-a")
    await insert_event(ctx.db, "ca", 1, "case.created")
    await deliver_once(ctx=ctx, worker_id="w1")
    assert receiver.received("a") == []


async def test_subscription_gets_only_its_event_types_and_events_after_it_was_made(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    ctx = client.app[CTX]
    await insert_case(ctx.db, "c1", created_by="client-a")
    await insert_event(ctx.db, "c1", 1, "case.created", created_at=datetime.now(UTC) - timedelta(minutes=5))
    await subscribe(client, client_headers(settings, "client-a"), receiver.url("a"), ["case.resolved"])
    await insert_event(ctx.db, "c1", 2, "case.accepted")
    resolved = await insert_event(ctx.db, "c1", 3, "case.resolved")
    await deliver_once(ctx=ctx, worker_id="w1")
    assert [r.event_id for r in receiver.received("a")] == [resolved]


async def test_event_committed_late_is_still_fanned_out_within_the_overlap(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    await subscribe(client, client_headers(settings, "client-a"), receiver.url("a"))
    ctx = client.app[CTX]
    await insert_case(ctx.db, "c1", created_by="client-a")
    await insert_case(ctx.db, "c2", created_by="client-a")
    await asyncio.sleep(0.05)
    stamped = datetime.now(UTC)  # this transaction took its time stamp first...
    await asyncio.sleep(0.05)
    await insert_event(ctx.db, "c1", 1, "case.created")
    assert await deliver_once(ctx=ctx, worker_id="w1") == 1
    late = await insert_event(ctx.db, "c2", 1, "case.created", created_at=stamped)  # ...but committed later
    assert await deliver_once(ctx=ctx, worker_id="w1") == 1
    assert receiver.received("a")[-1].event_id == late
    assert await deliver_once(ctx=ctx, worker_id="w1") == 0  # the re-scan creates no duplicates
    assert await ctx.db["webhook_deliveries"].count_documents({}) == 2


async def test_delivery_goes_dead_after_the_retry_window(client: Any, settings: Any, receiver: WebhookReceiver) -> None:
    await subscribe(client, client_headers(settings, "client-a"), receiver.url("a"))
    clock = Clock()
    ctx = clocked(client.app[CTX], clock, webhook_retry_hours=1.0)
    await insert_case(ctx.db, "c1", created_by="client-a")
    await insert_event(ctx.db, "c1", 1, "case.created")
    receiver.always("a", 500)
    for _ in range(40):
        await deliver_once(ctx=ctx, worker_id="w1")
        doc = await ctx.db["webhook_deliveries"].find_one({})
        if doc["status"] == "dead":
            break
        clock.advance(minutes=10)
    assert doc["status"] == "dead"
    assert doc["attempts"] >= 3
    assert doc["last_status_code"] == 500
    assert doc["attempt_log"][-1]["at"] - doc["created_at"] <= timedelta(hours=1)
    attempts = len(receiver.received("a"))
    clock.advance(hours=5)
    assert await deliver_once(ctx=ctx, worker_id="w1") == 0
    assert len(receiver.received("a")) == attempts


def test_backoff_is_exponential_with_full_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    for attempt in range(1, 25):
        ceiling = min(3600.0, 10.0 * 2 ** (attempt - 1))
        draws = [backoff_seconds(attempt, base=10.0, cap=3600.0, rng=rng) for _ in range(200)]
        assert all(1.0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling * 0.8  # the whole range is used, not just the top
        assert min(draws) < ceiling * 0.2 + 1.0


async def test_events_written_by_the_case_event_log_are_delivered_in_order(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    from service.storage.events import CaseEvent, EventsRepository

    await subscribe(client, client_headers(settings, "client-a"), receiver.url("a"))
    ctx = client.app[CTX]
    await insert_case(ctx.db, "c9", created_by="client-a")
    repo = EventsRepository(ctx.db)
    now = datetime.now(UTC)
    # One change may log several events with the same seq (created, then unrouted).
    first = [
        CaseEvent(type="case.created", case_id="c9", seq=1, actor_subject="client-a", actor_role="client", time=now),
        CaseEvent(type="case.unrouted", case_id="c9", seq=1, actor_subject="system", actor_role="admin", time=now),
    ]
    await repo.append(*first)
    later = CaseEvent(
        type="case.dispatched", case_id="c9", seq=2, actor_subject="sup-1", actor_role="supervisor", time=now
    )
    await repo.append(later)
    await deliver_once(ctx=ctx, worker_id="w1")
    assert [r.event_id for r in receiver.delivered("a")] == [first[0].id, first[1].id, later.id]
    assert [r.json["seq"] for r in receiver.delivered("a")] == [1, 1, 2]


async def test_disabled_client_or_lost_scope_in_the_client_register_stops_deliveries(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    await subscribe(client, client_headers(settings, "client-a"), receiver.url("a"))
    await subscribe(client, client_headers(settings, "client-b"), receiver.url("b"))
    ctx = client.app[CTX]
    now = datetime.now(UTC)
    clients = ctx.db["api_clients"]
    await clients.insert_one(
        {"_id": "client-a", "scopes": ["cases:read", "webhooks:manage"], "active": False, "created_at": now}
    )
    await clients.insert_one({"_id": "client-b", "scopes": ["webhooks:manage"], "active": True, "created_at": now})
    for name in ("a", "b"):
        await insert_case(ctx.db, f"c{name}", created_by=f"client-{name}")
        await insert_event(ctx.db, f"c{name}", 1, "case.created")
    await deliver_once(ctx=ctx, worker_id="w1")
    assert receiver.received() == []
    await clients.update_one({"_id": "client-b"}, {"$set": {"scopes": ["cases:read", "webhooks:manage"]}})
    await insert_event(ctx.db, "cb", 2, "case.dispatched")
    await deliver_once(ctx=ctx, worker_id="w1")
    assert "case.dispatched" in [r.json["type"] for r in receiver.received("b")]
    assert receiver.received("a") == []


def _pending(event_id: str, case_id: str | None, seq: int, *, due_in: float = 0, leased_for: float = 0) -> Any:
    from service.webhooks.models import Delivery

    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Delivery(
        id=f"dlv_{event_id}",
        subscription_id="whk_1",
        client_id="client-a",
        event_id=event_id,
        event_type="case.created",
        case_id=case_id,
        seq=seq,
        event_created_at=now + timedelta(milliseconds=int(event_id[1:])),
        status="pending",
        attempts=0,
        next_attempt_at=now + timedelta(seconds=due_in),
        lease_until=now + timedelta(seconds=leased_for),
        lease_owner=None,
        lease_token=None,
        last_status_code=None,
        last_latency_ms=None,
        last_error=None,
        delivered_at=None,
        created_at=now,
        updated_at=now,
        window_start=now,
    )


def test_only_the_earliest_pending_event_of_a_case_may_be_sent() -> None:
    from service.webhooks.delivery import sendable_heads

    now = datetime(2026, 1, 1, tzinfo=UTC)
    pending = [
        _pending("e1", "c1", 1, due_in=60),  # waiting for its retry: c1 is blocked behind it
        _pending("e2", "c1", 2),
        _pending("e3", "c2", 1, leased_for=30),  # being sent by another worker: c2 is blocked
        _pending("e4", "c2", 2),
        _pending("e5", "c3", 2),  # clock skew made c3's later event look older
        _pending("e6", "c3", 1),
        _pending("e7", None, 0),
    ]
    assert [d.event_id for d in sendable_heads(pending, now)] == ["e6", "e7"]
    later = now + timedelta(seconds=61)
    assert [d.event_id for d in sendable_heads(pending, later)] == ["e1", "e3", "e6", "e7"]


async def test_app_runs_the_delivery_loop_in_the_background(
    aiohttp_client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    from run import create_app

    client = await aiohttp_client(create_app(fast(settings, background_tasks=True)))
    await subscribe(client, client_headers(settings, "client-a"), receiver.url("a"))
    ctx = client.app[CTX]
    await insert_case(ctx.db, "c1", created_by="client-a")
    event_id = await insert_event(ctx.db, "c1", 1, "case.created")
    await receiver.wait_for(1, "a", timeout=10)
    assert [r.event_id for r in receiver.delivered("a")] == [event_id]
