"""Webhook delivery against a local receiver: signatures, order, retries, leases, isolation.

Integrator clients are registered through the client service and file their cases through the
case service; every event delivered comes from filing or acting on such a case.
"""

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
from service.cases.models import CaseEvent
from service.cases.repository.cases import CasesRepository
from service.cases.repository.events import EventsRepository
from service.common.context import Context
from service.common.models import SYSTEM
from service.identity.accounts import IssuedClient, StaffMember
from service.identity.clients import disable_client
from service.identity.repository.clients import ApiClientsRepository
from service.visits.schedules import close_periods
from service.webhooks.delivery import deliver_once, run_delivery_loop
from service.webhooks.fanout import fan_out_events
from service.webhooks.payloads import backoff_seconds
from tests.factories import (
    act_on,
    bearer_for,
    events_of,
    make_case,
    make_client,
    make_elder,
    make_staff,
    make_station,
    make_wechat_resident,
)
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers_webhooks import Clock, subscribe, verify

# The events of a case's life, in order, and the action (after filing) that writes each.
LIFECYCLE = ("case.created", "case.dispatched", "case.accepted", "case.started", "case.resolved")
INTEGRATOR_SCOPES = ("cases:read", "cases:write", "webhooks:manage")


@dataclasses.dataclass
class Staff:
    """The people who act on integrators' cases: a station's worker and an admin."""

    station_id: str
    worker: StaffMember
    admin: StaffMember

    async def step(self, ctx: Context, case: dict[str, Any], event_type: str) -> str:
        """Take the action that writes ``event_type`` on the case; returns the event's id."""
        if event_type == "case.dispatched":
            after = await act_on(ctx, self.admin, case["id"], "dispatch", station_id=self.station_id)
        elif event_type == "case.resolved":
            after = await act_on(ctx, self.worker, case["id"], "resolve", result="已办结 resolved")
        else:
            action = {"case.accepted": "accept", "case.started": "start"}[event_type]
            after = await act_on(ctx, self.worker, case["id"], action)
        return str(after["history"][-1]["event_id"])

    async def live(self, ctx: Context, case: dict[str, Any], upto: int) -> list[str]:
        """The case's first ``upto`` lifecycle events (filing already wrote the first); their ids."""
        ids = [created(case)]
        for event_type in LIFECYCLE[1:upto]:
            ids.append(await self.step(ctx, case, event_type))
        return ids


async def staff(ctx: Context) -> Staff:
    station = await make_station(ctx)
    return Staff(station.id, await make_staff(ctx, station_id=station.id), await make_staff(ctx, role="admin"))


async def integrator(client: Any, settings: Any, url: str, **options: Any) -> IssuedClient:
    """A registered client with a webhook subscription to ``url`` (``event_types``, ``scopes`` in options)."""
    issued = await make_client(
        client.app[CTX],
        scopes=options.pop("scopes", INTEGRATOR_SCOPES),
        division_prefix=options.pop("division_prefix", None),
    )
    await subscribe(client, bearer_for(settings, issued), url, options.pop("event_types", None))
    return issued


def created(case: dict[str, Any]) -> str:
    return str(case["history"][0]["event_id"])


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
    ctx = client.app[CTX]
    await staff(ctx)
    issued = await make_client(ctx, scopes=INTEGRATOR_SCOPES)
    sub = await subscribe(client, bearer_for(settings, issued), receiver.url("a"))
    assert ctx.case_views is not None  # installed by the app; without it no case body
    ctx.case_views = None
    case = await make_case(ctx, issued)
    event_id = created(case)
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
    assert (body["case_id"], body["case_number"]) == (case["id"], case["number"])
    [stored] = [e for e in await events_of(ctx, case["id"]) if e.id == event_id]
    assert body["data"] == stored.data and body["data"]["routing_method"] == case["routing"]["method"]
    assert datetime.fromisoformat(body["time"]).tzinfo is not None
    assert "case" not in body
    assert "actor" not in body
    assert await deliver_once(ctx=ctx, worker_id="w1") == 0  # delivered once, not again


async def test_case_view_hook_adds_the_case_as_the_client_sees_it(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    ctx = client.app[CTX]
    await staff(ctx)
    issued = await integrator(client, settings, receiver.url("a"))
    seen: list[tuple[str, str]] = []

    class CaseViews:
        async def case_for_client(self, _ctx: Context, case_id: str, client_id: str) -> dict[str, Any] | None:
            seen.append((case_id, client_id))
            return {"id": case_id, "state": "dispatched", "state_label": "已派单 dispatched"}

    ctx.case_views = CaseViews()
    case = await make_case(ctx, issued)
    await deliver_once(ctx=ctx, worker_id="w1")
    (req,) = receiver.received("a")
    assert req.json["case"] == {"id": case["id"], "state": "dispatched", "state_label": "已派单 dispatched"}
    assert seen == [(case["id"], issued.client.client_id)]


async def test_full_lifecycle_arrives_in_order_per_case_even_when_an_attempt_fails(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    people = await staff(client.app[CTX])
    issued = await integrator(client, settings, receiver.url("a"))
    clock = Clock()
    ctx = clocked(client.app[CTX], clock)
    cases = [await make_case(client.app[CTX], issued) for _ in range(2)]
    expected: dict[str, list[str]] = {case["id"]: [created(case)] for case in cases}
    for event_type in LIFECYCLE[1:]:
        for case in cases:  # the two cases' events interleave
            expected[case["id"]].append(await people.step(client.app[CTX], case, event_type))
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
    assert [r.json["type"] for r in delivered if r.json["case_id"] == cases[0]["id"]] == list(LIFECYCLE)
    retried = [r for r in receiver.received("a") if r.headers["Huimin-Delivery-Attempt"] == "2"]
    assert retried, "the failed deliveries were retried with an attempt counter"


async def test_receiver_that_fails_then_recovers_gets_every_event_from_the_loop(
    aiohttp_client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    from run import create_app

    client = await aiohttp_client(create_app(fast(settings)))
    ctx = client.app[CTX]
    people = await staff(ctx)
    issued = await integrator(client, settings, receiver.url("a"))
    ids = await people.live(ctx, await make_case(ctx, issued), 3)
    receiver.fail_next("a", 4, status=502)
    await run_loop_until(ctx, lambda: len(receiver.delivered("a")) == 3)
    assert [r.event_id for r in receiver.delivered("a")] == ids
    assert len(receiver.received("a")) == 7
    assert receiver.overlaps == []


async def test_delivery_leased_by_a_crashed_worker_is_sent_after_the_lease_expires(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    await staff(client.app[CTX])
    issued = await integrator(client, settings, receiver.url("a"))
    clock = Clock()
    ctx = clocked(client.app[CTX], clock)
    event_id = created(await make_case(ctx, issued))
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
    people = await staff(client.app[CTX])
    issued = await make_client(client.app[CTX], scopes=INTEGRATOR_SCOPES)
    case = await make_case(client.app[CTX], issued)  # filed before it subscribed: not delivered
    await subscribe(client, bearer_for(settings, issued), receiver.url("a"))
    first, close_first = await open_context(settings)
    event_id = await people.step(first, case, "case.accepted")
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
    people = await staff(client.app[CTX])
    integrators = {name: await integrator(client, settings, receiver.url(name)) for name in ("a", "b")}
    s = fast(settings)
    one, close_one = await open_context(s)
    two, close_two = await open_context(s)
    try:
        expected: set[tuple[str, str]] = set()
        for name, issued in integrators.items():
            for _ in range(3):
                ids = await people.live(one, await make_case(one, issued), 4)
                expected |= {(name, event_id) for event_id in ids}
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
    ctx = client.app[CTX]
    people = await staff(ctx)
    hanging = await integrator(client, settings, receiver.url("a"))
    other = await integrator(client, settings, receiver.url("b"))
    receiver.hang("a")
    await make_case(ctx, hanging)
    theirs = await make_case(ctx, other)
    task = asyncio.create_task(run_delivery_loop(ctx))
    try:
        await receiver.wait_for(1, "b", timeout=1.5)
        await people.step(ctx, theirs, "case.dispatched")
        committed = time.monotonic()
        await receiver.wait_for(2, "b", timeout=1.5)
        second = receiver.delivered("b")[1]
        assert second.arrived - committed < 1.5
        assert second.in_flight_at_arrival.get("a") == 1, "client A's request was still hanging"
        # The hanging attempt ends at the timeout and is recorded as a failure to retry.
        deadline = time.monotonic() + 5
        while True:
            doc = await ctx.db["webhook_deliveries"].find_one({"client_id": hanging.client.client_id})
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
    ctx = client.app[CTX]
    await staff(ctx)
    a = await integrator(client, settings, receiver.url("a"))
    b = await integrator(client, settings, receiver.url("b"))
    # c may manage webhooks and file cases but not read them: it gets nothing, even of its own case.
    c = await integrator(client, settings, receiver.url("c"), scopes=("cases:write", "webhooks:manage"))
    ids = {name: created(await make_case(ctx, who)) for name, who in (("a", a), ("b", b), ("c", c))}
    await make_case(ctx, await make_wechat_resident(ctx))  # a resident's case: no client's
    # An event that belongs to no case: a visit of the register's first period that was missed.
    await make_elder(ctx)
    assert await close_periods(ctx=ctx, at=ctx.now() + timedelta(days=400)) == 1
    await deliver_once(ctx=ctx, worker_id="w1")
    assert [r.event_id for r in receiver.received("a")] == [ids["a"]]
    assert [r.event_id for r in receiver.received("b")] == [ids["b"]]
    assert receiver.received("c") == []


async def test_a_client_granted_visits_read_receives_visit_missed(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    # visit.missed belongs to no case: a client with visits:read gets it, one with only cases:read does not.
    ctx = client.app[CTX]
    await staff(ctx)
    await integrator(
        client, settings, receiver.url("v"), scopes=("visits:read", "webhooks:manage"), division_prefix="3410"
    )
    await integrator(client, settings, receiver.url("c"), event_types=["visit.missed"], division_prefix="3410")
    elder = await make_elder(ctx)
    assert await close_periods(ctx=ctx, at=ctx.now() + timedelta(days=400)) == 1
    [event] = await ctx.db["events"].find({"type": "visit.missed"}).to_list()
    await deliver_once(ctx=ctx, worker_id="w1")
    [got] = receiver.received("v")
    assert got.event_id == str(event["_id"]) and got.headers["Huimin-Event-Type"] == "visit.missed"
    body = got.json
    assert body["type"] == "visit.missed" and "case" not in body
    assert body["data"]["elder_id"] == elder.id and body["data"]["elder_name"].endswith("*")
    assert receiver.received("c") == []


async def test_visit_missed_reaches_only_clients_whose_territory_holds_the_person(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    ctx = client.app[CTX]
    await staff(ctx)  # the station of 屯溪区昱东街道 (Huangshan, 3410)
    await make_station(ctx, code="340102001", name="明光路街道社工站", point=(117.304, 31.860))  # Hefei, 3401
    scopes = ("visits:read", "webhooks:manage")
    await integrator(client, settings, receiver.url("huangshan"), scopes=scopes, division_prefix="3410")
    await integrator(client, settings, receiver.url("hefei"), scopes=scopes, division_prefix="340102")
    await integrator(client, settings, receiver.url("province"), scopes=scopes, division_prefix="34")
    await integrator(client, settings, receiver.url("nowhere"), scopes=scopes)  # no territory set
    tunxi, hefei = await make_elder(ctx), await make_elder(ctx, township="340102001")
    assert await close_periods(ctx=ctx, at=ctx.now() + timedelta(days=400)) == 2
    await deliver_once(ctx=ctx, worker_id="w1")
    assert [r.json["data"]["elder_id"] for r in receiver.received("huangshan")] == [tunxi.id]
    assert [r.json["data"]["elder_id"] for r in receiver.received("hefei")] == [hefei.id]
    assert sorted(r.json["data"]["elder_id"] for r in receiver.received("province")) == sorted([tunxi.id, hefei.id])
    assert receiver.received("nowhere") == []


async def test_client_disabled_through_the_scopes_hook_receives_nothing(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    ctx = client.app[CTX]
    await staff(ctx)
    issued = await integrator(client, settings, receiver.url("a"))

    class ClientScopes:
        async def scopes_of(self, _ctx: Context, client_id: str) -> frozenset[str] | None:
            return None  # the client was disabled

    ctx.client_scopes = ClientScopes()
    await make_case(ctx, issued)
    await deliver_once(ctx=ctx, worker_id="w1")
    assert receiver.received("a") == []


async def test_subscription_gets_only_its_event_types_and_events_after_it_was_made(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    ctx = client.app[CTX]
    people = await staff(ctx)
    issued = await make_client(ctx, scopes=INTEGRATOR_SCOPES)
    earlier = await make_case(ctx, issued)  # its case.created is older than the subscription
    await subscribe(client, bearer_for(settings, issued), receiver.url("a"), ["case.created", "case.resolved"])
    await people.step(ctx, earlier, "case.accepted")  # not a type it asked for
    resolved = await people.step(ctx, earlier, "case.resolved")
    await deliver_once(ctx=ctx, worker_id="w1")
    assert [r.event_id for r in receiver.received("a")] == [resolved]


async def test_event_committed_late_is_still_fanned_out_within_the_overlap(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    ctx = client.app[CTX]
    people = await staff(ctx)
    issued = await integrator(client, settings, receiver.url("a"))
    slow_case, quick_case = await make_case(ctx, issued), await make_case(ctx, issued)
    assert await deliver_once(ctx=ctx, worker_id="w1") == 2  # both filings
    # A worker's acceptance of one case stamps its event, then its transaction is slow to commit...
    session = ctx.db.client.start_session()
    await session.start_transaction()
    assert await CasesRepository(ctx.db).apply(
        slow_case["id"],
        expected_version=1,
        expected_status="dispatched",
        fields={"status": "accepted", "assignee_id": people.worker.id},
        session=session,
    )
    late = CaseEvent(
        type="case.accepted",
        case_id=slow_case["id"],
        seq=2,
        actor_subject=people.worker.id,
        actor_role="worker",
        time=ctx.now(),
        case_number=slow_case["number"],
        station_id=slow_case["station_id"],
        division=slow_case["division"],
        from_state="dispatched",
        to_state="accepted",
    )
    await EventsRepository(ctx.db).append(late, session=session)
    await asyncio.sleep(0.05)
    # ...while a later change of the other case commits and is delivered first.
    await people.step(ctx, quick_case, "case.dispatched")
    assert await deliver_once(ctx=ctx, worker_id="w1") == 1
    await session.commit_transaction()
    await session.end_session()
    assert await deliver_once(ctx=ctx, worker_id="w1") == 1
    assert receiver.received("a")[-1].event_id == late.id
    assert await deliver_once(ctx=ctx, worker_id="w1") == 0  # the re-scan creates no duplicates
    assert await ctx.db["webhook_deliveries"].count_documents({}) == 4


async def test_delivery_goes_dead_after_the_retry_window(client: Any, settings: Any, receiver: WebhookReceiver) -> None:
    await staff(client.app[CTX])
    issued = await integrator(client, settings, receiver.url("a"))
    clock = Clock()
    ctx = clocked(client.app[CTX], clock, webhook_retry_hours=1.0)
    await make_case(ctx, issued)
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
    ctx = client.app[CTX]
    await make_station(ctx, capabilities=[])  # the township's station offers nothing: no station found
    issued = await integrator(client, settings, receiver.url("a"))
    case = await make_case(ctx, issued)  # one change, two events with the same seq (created, then unrouted)
    capable = await make_station(ctx, code="341002002", name="老街街道社工站", point=(118.33, 29.71))
    supervisor = await make_staff(ctx, role="supervisor")
    after = await act_on(ctx, supervisor, case["id"], "dispatch", station_id=capable.id)
    first = [e.id for e in await events_of(ctx, case["id"])][:2]
    await deliver_once(ctx=ctx, worker_id="w1")
    delivered = receiver.delivered("a")
    assert [r.event_id for r in delivered] == [*first, after["history"][-1]["event_id"]]
    assert [(r.json["type"], r.json["seq"]) for r in delivered] == [
        ("case.created", 1),
        ("case.unrouted", 1),
        ("case.dispatched", 2),
    ]


async def test_disabled_client_or_lost_scope_in_the_client_register_stops_deliveries(
    client: Any, settings: Any, receiver: WebhookReceiver
) -> None:
    ctx = client.app[CTX]
    people = await staff(ctx)
    a = await integrator(client, settings, receiver.url("a"))
    b = await integrator(client, settings, receiver.url("b"), scopes=("cases:write", "webhooks:manage"))
    cases = {"a": await make_case(ctx, a), "b": await make_case(ctx, b)}
    await disable_client(ctx=ctx, principal=SYSTEM, client_id=a.client.client_id)
    await deliver_once(ctx=ctx, worker_id="w1")
    assert receiver.received() == []
    # b is given the read scope in the client register (no admin route changes scopes yet).
    await ApiClientsRepository(ctx.db).update(
        b.client.client_id, {"scopes": ["cases:read", "cases:write", "webhooks:manage"]}, ctx.now()
    )
    await people.step(ctx, cases["b"], "case.dispatched")
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
    from service.webhooks.payloads import sendable_heads

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
    ctx = client.app[CTX]
    await staff(ctx)
    issued = await integrator(client, settings, receiver.url("a"))
    event_id = created(await make_case(ctx, issued))
    await receiver.wait_for(1, "a", timeout=10)
    assert [r.event_id for r in receiver.delivered("a")] == [event_id]
