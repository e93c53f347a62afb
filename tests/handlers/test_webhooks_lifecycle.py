"""A client files a case through the API and its receiver follows the whole lifecycle."""

from __future__ import annotations

import time

from service.webhooks.delivery import deliver_once
from tests.factories import bearer_for, make_client
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.handlers.test_cases import World, world  # noqa: F401 - the shared case-world fixture
from tests.helpers_webhooks import subscribe, verify

CLIENT_SCOPES = ("cases:read", "cases:write", "webhooks:manage")


async def test_client_receiver_gets_every_event_of_a_full_lifecycle_in_order(world: World) -> None:  # noqa: F811
    receiver = await WebhookReceiver().start()
    try:
        client_a = bearer_for(world.settings, await make_client(world.ctx, scopes=CLIENT_SCOPES))
        client_b = bearer_for(world.settings, await make_client(world.ctx, scopes=CLIENT_SCOPES))
        sub = await subscribe(world.client, client_a, receiver.url("a"))
        await subscribe(world.client, client_b, receiver.url("b"))
        case = await world.submit(headers=client_a)
        other = await world.submit(headers=client_b)
        cid = case["id"]
        worker = await world.worker()
        await world.act(cid, "accept", worker)
        await world.act(cid, "start", worker)
        await world.act(cid, "note", worker, text="已电话联系 called")
        await world.act(cid, "resolve", worker, result="已上门服务 served at home")
        await world.act(other["id"], "accept", worker)
        while await deliver_once(ctx=world.ctx, worker_id="w1"):
            pass
    finally:
        await receiver.close()
    got = receiver.delivered("a")
    events = [e async for e in world.ctx.db["events"].find({"case_id": cid}).sort([("seq", 1), ("_id", 1)])]
    assert [r.event_id for r in got] == [str(e["_id"]) for e in events]
    assert [r.json["type"] for r in got][:2] == ["case.created", "case.accepted"]
    assert [r.json["type"] for r in got][-1] == "case.resolved"
    assert all(verify(sub["secret"], r.headers["Huimin-Signature"], r.body, int(time.time())) for r in got)
    body = got[-1].json
    assert body["case"]["id"] == cid and body["case"]["status"] == "resolved"
    assert body["case_number"] == case["number"]
    assert {r.json["case_id"] for r in receiver.delivered("b")} == {other["id"]}
