"""Station heads list their own station's staff (to assign cases); everything else about accounts stays admin-only."""

from __future__ import annotations

from typing import Any

from config import Settings
from handlers.keys import CTX
from tests.factories import bearer_for, make_staff, make_station


async def _world(client: Any) -> dict[str, Any]:
    ctx = client.app[CTX]
    here = await make_station(ctx)
    there = await make_station(ctx, code="341002002", name="老街街道社工站", point=(118.30, 29.70))
    return {
        "here": here,
        "there": there,
        "head": await make_staff(ctx, role="station_head", station_id=here.id, name="李站长"),
        "workers": [await make_staff(ctx, station_id=here.id, name=n) for n in ("王五", "赵六")],
        "other_head": await make_staff(ctx, role="station_head", station_id=there.id),
        "other_worker": await make_staff(ctx, station_id=there.id, name="外站"),
        "supervisor": await make_staff(ctx, role="supervisor"),
        "admin": await make_staff(ctx, role="admin"),
    }


async def _list(client: Any, headers: dict[str, str], query: str = "") -> Any:
    return await client.get(f"/api/v1/staff{query}", headers=headers)


async def test_a_station_head_lists_the_staff_of_their_own_station_only(client: Any, settings: Settings) -> None:
    w = await _world(client)
    head = bearer_for(settings, w["head"])
    expected = {w["head"].id, *(m.id for m in w["workers"])}
    for query in ("", f"?station_id={w['here'].id}", "?limit=100"):
        resp = await _list(client, head, query)
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        assert {m["id"] for m in page["items"]} == expected, query
        assert all(m["station_id"] == w["here"].id for m in page["items"])
    resp = await _list(client, head, "?role=worker")
    assert {m["name"] for m in (await resp.json())["items"]} == {"王五", "赵六"}
    # The other station's head sees the other station, not this one.
    resp = await _list(client, bearer_for(settings, w["other_head"]))
    assert {m["id"] for m in (await resp.json())["items"]} == {w["other_head"].id, w["other_worker"].id}


async def test_a_station_head_cannot_list_another_station(client: Any, settings: Settings) -> None:
    w = await _world(client)
    resp = await _list(client, bearer_for(settings, w["head"]), f"?station_id={w['there'].id}")
    assert resp.status == 403
    assert (await resp.json())["code"] == "station_outside_scope"


async def test_workers_and_supervisors_cannot_list_staff(client: Any, settings: Settings) -> None:
    w = await _world(client)
    for who in (w["workers"][0], w["supervisor"]):
        resp = await _list(client, bearer_for(settings, who), f"?station_id={w['here'].id}")
        assert resp.status == 403
        assert (await resp.json())["code"] == "role_not_allowed"


async def test_a_station_head_reads_and_changes_no_single_account(client: Any, settings: Settings) -> None:
    w = await _world(client)
    head = bearer_for(settings, w["head"])
    worker = w["workers"][0]
    assert (await client.get(f"/api/v1/staff/{worker.id}", headers=head)).status == 403
    resp = await client.patch(f"/api/v1/staff/{worker.id}", json={"active": False}, headers=head)
    assert resp.status == 403
    body = {"username": "new.worker", "password": "long-enough-pass", "role": "worker", "station_id": w["here"].id}
    assert (await client.post("/api/v1/staff", json=body, headers=head)).status == 403
    resp = await client.get(f"/api/v1/staff/{worker.id}", headers=bearer_for(settings, w["admin"]))
    assert (await resp.json())["active"] is True


async def test_admins_still_list_every_station(client: Any, settings: Settings) -> None:
    w = await _world(client)
    resp = await _list(client, bearer_for(settings, w["admin"]), "?limit=100")
    names = {m["name"] for m in (await resp.json())["items"]}
    assert {"王五", "赵六", "外站", "李站长"} <= names
    resp = await _list(client, bearer_for(settings, w["admin"]), f"?station_id={w['there'].id}")
    assert {m["id"] for m in (await resp.json())["items"]} == {w["other_head"].id, w["other_worker"].id}
