from datetime import datetime, timedelta

import pytest

from handlers.keys import CTX
from service.visits.periods import period_of
from service.visits.schedules import schedule_period
from tests.factories import age_born, bearer_for, elder_body, id_card, make_staff, make_wechat_resident, seed_stations


@pytest.fixture
async def stations(client):
    return await seed_stations(client.app[CTX])


class Workers:
    """One real worker account per station (made on first use) and its bearer headers."""

    def __init__(self, client, settings, stations):
        self.ctx, self.settings, self.stations = client.app[CTX], settings, stations
        self.made = {}

    async def account(self, code="340102001"):
        if code not in self.made:
            self.made[code] = await make_staff(self.ctx, role="worker", station_id=self.stations[code])
        return self.made[code]

    async def headers(self, code="340102001"):
        return bearer_for(self.settings, await self.account(code))


@pytest.fixture
def workers(client, settings, stations):
    return Workers(client, settings, stations)


async def count(client, collection, query=None):
    return await client.app[CTX].db[collection].count_documents(query or {})


async def test_register_masks_the_id_number_and_suggests_a_tier(client, settings, stations, workers):
    body = elder_body(
        flags=["alone", "disabled"], emergency_contacts=[{"name": "王强", "relation": "儿子", "phone": "13900139000"}]
    )
    r = await client.post("/api/v1/elders", json=body, headers=await workers.headers())
    got = await r.json()
    assert r.status == 201, got
    assert got["id_card_masked"] == body["id_card"][:4] + "*" * 10 + body["id_card"][-4:]
    assert body["id_card"] not in str(got)
    assert got["birth_date"] == "1940-01-01" and got["station_id"] == stations["340102001"]
    assert got["suggested_tier"] == "high" and got["tier"] == "high"
    assert "very_old" in got["flags"] and got["age"] >= 80
    assert got["county_code"] == "340102" and got["city_code"] == "340100"
    assert got["consent"]["given"] is True and got["consent"]["recorded_by"] == (await workers.account()).id
    stored = await client.app[CTX].db["elders"].find_one({})
    assert body["id_card"] not in str(stored) and stored["id_card_enc"].startswith("v1.")
    assert await count(client, "visit_schedules") == 1


async def test_staff_reads_are_audit_logged(client, settings, stations, workers):
    r = await client.post("/api/v1/elders", json=elder_body(), headers=await workers.headers())
    elder_id = (await r.json())["id"]
    r = await client.get(f"/api/v1/elders/{elder_id}", headers=await workers.headers())
    assert r.status == 200
    r = await client.get("/api/v1/elders", headers=await workers.headers())
    assert [e["id"] for e in (await r.json())["items"]] == [elder_id]
    log = await client.app[CTX].db["audit_log"].find({"elder_id": elder_id}).sort("at", 1).to_list()
    assert [(e["action"], e["actor"]["subject"]) for e in log] == [
        ("elder.read", (await workers.account()).id),
        ("elder.list", (await workers.account()).id),
    ]


async def test_staff_of_one_station_cannot_read_another_stations_people(client, settings, stations, workers):
    r = await client.post("/api/v1/elders", json=elder_body(), headers=await workers.headers())
    elder_id = (await r.json())["id"]
    other = await workers.headers("340102002")
    r = await client.get(f"/api/v1/elders/{elder_id}", headers=other)
    assert r.status == 404 and (await r.json())["code"] == "elder_not_found"
    r = await client.patch(f"/api/v1/elders/{elder_id}", json={"tier": "key"}, headers=other)
    assert r.status == 404
    r = await client.get("/api/v1/elders", headers=other)
    assert (await r.json())["items"] == []
    hefei = bearer_for(settings, await make_staff(client.app[CTX], role="supervisor", division_prefix="3401"))
    huangshan = bearer_for(settings, await make_staff(client.app[CTX], role="supervisor", division_prefix="3410"))
    assert (await client.get(f"/api/v1/elders/{elder_id}", headers=hefei)).status == 200
    assert (await client.get(f"/api/v1/elders/{elder_id}", headers=huangshan)).status == 404
    r = await client.get("/api/v1/elders", headers=bearer_for(settings, await make_wechat_resident(client.app[CTX])))
    assert r.status == 403


async def test_worker_cannot_register_people_of_another_station(client, settings, stations, workers):
    r = await client.post("/api/v1/elders", json=elder_body("340104001"), headers=await workers.headers())
    assert r.status == 403 and (await r.json())["code"] == "outside_your_area"
    assert await count(client, "elders") == 0


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"township": "340199999"}, 422, "unknown_township"),
        ({"id_card": "340102194001010010"}, 422, "invalid_id_card"),
        ({"birth_date": "1941-01-01"}, 422, "invalid_elder"),
        ({"flags": ["very_old"], "id_card": id_card(age_born(65))}, 422, "invalid_elder"),
        ({"location": {"lon": 400, "lat": 31}}, 422, "invalid_elder"),
    ],
)
async def test_bad_registration_gets_a_problem_and_writes_nothing(client, settings, stations, change, status, code):
    r = await client.post(
        "/api/v1/elders",
        json=elder_body(**change),
        headers=bearer_for(settings, await make_staff(client.app[CTX], role="admin")),
    )
    got = await r.json()
    assert r.status == status and got["code"] == code, got
    assert await count(client, "elders") == 0 and await count(client, "visit_schedules") == 0


async def test_an_id_number_is_active_on_one_register_only(client, settings, stations):
    admin = bearer_for(settings, await make_staff(client.app[CTX], role="admin"))
    first = await client.post("/api/v1/elders", json=elder_body(), headers=admin)
    again = await client.post("/api/v1/elders", json=elder_body("340102002"), headers=admin)
    assert again.status == 409 and (await again.json())["code"] == "elder_already_registered"
    elder_id = (await first.json())["id"]
    r = await client.post(
        f"/api/v1/elders/{elder_id}/end", json={"reason": "moved", "note": "迁往女儿家"}, headers=admin
    )
    ended = await r.json()
    assert r.status == 200 and ended["active"] is False and ended["ended"]["reason"] == "moved"
    moved = await client.post("/api/v1/elders", json=elder_body("340102002"), headers=admin)
    assert moved.status == 201
    r = await client.post(f"/api/v1/elders/{elder_id}/end", json={"reason": "moved"}, headers=admin)
    assert r.status == 409 and (await r.json())["code"] == "elder_not_active"


async def test_list_filters_by_tier_flag_and_active_with_a_cursor(client, settings, stations):
    admin = bearer_for(settings, await make_staff(client.app[CTX], role="admin"))
    for seq in range(1, 4):
        await client.post("/api/v1/elders", json=elder_body(seq=seq, flags=["alone"]), headers=admin)
    await client.post("/api/v1/elders", json=elder_body(seq=9, born=age_born(70), flags=["empty_nest"]), headers=admin)
    r = await client.get("/api/v1/elders?tier=high&limit=2", headers=admin)
    page = await r.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    r = await client.get(f"/api/v1/elders?tier=high&limit=2&cursor={page['next_cursor']}", headers=admin)
    rest = await r.json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    r = await client.get("/api/v1/elders?flag=empty_nest", headers=admin)
    assert [e["tier"] for e in (await r.json())["items"]] == ["key"]
    r = await client.get(f"/api/v1/elders?station={stations['340102001']}&active=false", headers=admin)
    assert (await r.json())["items"] == []


async def test_a_tier_change_applies_from_the_next_iso_week(client, settings, stations):
    admin = bearer_for(settings, await make_staff(client.app[CTX], role="admin"))
    r = await client.post("/api/v1/elders", json=elder_body(flags=["alone"], tier="general"), headers=admin)
    elder_id = (await r.json())["id"]
    r = await client.patch(f"/api/v1/elders/{elder_id}", json={"tier": "high"}, headers=admin)
    got = await r.json()
    assert r.status == 200, got
    assert got["tier"] == "high" and got["previous_tier"] == "general"
    tier_from = datetime.fromisoformat(got["tier_from"])
    assert tier_from == period_of("week", datetime.now().astimezone()).end
    assert got["tier_pinned"] is True
    sched = await client.app[CTX].db["visit_schedules"].find({"elder_id": elder_id}).to_list()
    assert [s["tier"] for s in sched] == ["general"]
    ctx = client.app[CTX]
    assert await schedule_period(ctx=ctx, at=tier_from - timedelta(hours=1)) == 0
    assert await schedule_period(ctx=ctx, at=tier_from + timedelta(hours=1)) == 1
    after = await ctx.db["visit_schedules"].find_one({"elder_id": elder_id, "tier": "high"})
    assert after["kind"] == "week" and after["period_end"] > tier_from


CSV_HEAD = "name,id_card,township,phone,flags,tier\n"


async def test_import_dry_run_reports_every_bad_row_then_applies_all_or_nothing(client, settings, stations):
    admin = bearer_for(settings, await make_staff(client.app[CTX], role="admin"))
    good1, good2 = id_card(seq=11), id_card(seq=12)
    text = (
        CSV_HEAD
        + f"张桂兰,{good1},340102001,13800000001,alone;disabled,\n"
        + "李四,340102194001010010,340102001,,,\n"
        + f"赵六,{good2},340199999,,,\n"
        + f"孙七,{good1},340102002,,alone,\n"
        + f"周八,{id_card(seq=13)},340102002,,teleport,\n"
    )
    headers = {**admin, "Content-Type": "text/csv"}
    r = await client.post("/api/v1/elders/import?dry_run=true", data=text.encode(), headers=headers)
    report = await r.json()
    assert r.status == 200, report
    assert report["total"] == 5 and report["to_create"] == 1 and report["written"] is False
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (3, "id_card"),
        (4, "township"),
        (5, "id_card"),
        (6, "flags"),
    ]
    r = await client.post("/api/v1/elders/import?dry_run=false", data=text.encode(), headers=headers)
    assert r.status == 422 and (await r.json())["code"] == "invalid_import"
    assert await count(client, "elders") == 0
    ok = CSV_HEAD + f"张桂兰,{good1},340102001,13800000001,alone;disabled,\n孙七,{good2},340102002,,alone,key\n"
    r = await client.post("/api/v1/elders/import?dry_run=false", data=ok.encode(), headers=headers)
    report = await r.json()
    assert r.status == 200 and report["written"] is True and report["to_create"] == 2, report
    assert await count(client, "elders", {"active": True}) == 2
    assert await count(client, "visit_schedules") == 2
    r = await client.post("/api/v1/elders/import?dry_run=false", data=ok.encode(), headers=headers)
    assert r.status == 422 and await count(client, "elders") == 2
