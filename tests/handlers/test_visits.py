import asyncio
import importlib.util
from datetime import datetime, timedelta, timezone

import pytest

from handlers.keys import CTX
from service.catalog.service import seed_catalog
from service.visits.periods import parse_period
from service.visits.schedules import close_periods, remind_due, schedule_period
from tests.factories import age_born, bearer_for, elder_body, make_staff, make_wechat_resident, seed_stations

CST = timezone(timedelta(hours=8))
W10 = parse_period("2026-W10")  # 2026-03-02 .. 2026-03-08
HAS_CASES = importlib.util.find_spec("service.cases.submit") is not None
# People are registered on this day, so that visits recorded for weeks of 2026 are after it.
REGISTERED = datetime(2026, 1, 1, 9, 0, tzinfo=CST)


@pytest.fixture
async def stations(client):
    ctx = client.app[CTX]
    await seed_catalog(ctx)
    return await seed_stations(ctx)


@pytest.fixture
async def admin_account(client):
    return await make_staff(client.app[CTX], role="admin")


@pytest.fixture
def admin(settings, admin_account):
    return bearer_for(settings, admin_account)


async def register(client, headers, township="340102001", seq=1, at=REGISTERED, **kw):
    ctx = client.app[CTX]
    clock = ctx.clock
    ctx.clock = lambda: at
    try:
        r = await client.post("/api/v1/elders", json=elder_body(township, seq=seq, **kw), headers=headers)
    finally:
        ctx.clock = clock
    body = await r.json()
    assert r.status == 201, body
    return body["id"]


async def visit(client, headers, elder_id, at, **kw):
    body = {"elder_id": elder_id, "method": "phone", "visited_at": at.isoformat(), "reached": True, **kw}
    return await client.post("/api/v1/visits", json=body, headers=headers)


def schedules(client):
    return client.app[CTX].db["visit_schedules"]


async def test_visit_on_sunday_2330_shanghai_counts_for_that_week_not_the_next(client, stations, admin, admin_account):
    elder_id = await register(client, admin, flags=["disabled"])
    r = await visit(client, admin, elder_id, datetime(2026, 3, 8, 23, 30, tzinfo=CST), method="home")
    got = await r.json()
    assert r.status == 201, got
    assert got["counts_for"] == ["2026-W10"] and got["visitor"] == admin_account.id
    await schedule_period(ctx=client.app[CTX], at=datetime(2026, 3, 9, 9, 0, tzinfo=CST))
    w10 = await schedules(client).find_one({"elder_id": elder_id, "period": "2026-W10"})
    w11 = await schedules(client).find_one({"elder_id": elder_id, "period": "2026-W11"})
    assert w10["visited"] is True and w10["method"] == "home" and w10["visit_id"] == got["id"]
    assert w11["visited"] is False


async def test_an_unreached_phone_call_does_not_count(client, stations, admin):
    elder_id = await register(client, admin, flags=["disabled"])
    await schedule_period(ctx=client.app[CTX], at=W10.start + timedelta(hours=12))
    r = await visit(client, admin, elder_id, W10.start + timedelta(days=2), reached=False)
    got = await r.json()
    assert r.status == 201 and got["counts_for"] == []
    assert (await schedules(client).find_one({"elder_id": elder_id, "period": "2026-W10"}))["visited"] is False


async def test_a_correction_recomputes_the_period_from_the_latest_record(client, stations, admin):
    elder_id = await register(client, admin, flags=["disabled"])
    first = await (await visit(client, admin, elder_id, W10.start + timedelta(days=1))).json()
    assert (await schedules(client).find_one({"period": "2026-W10"}))["visited"] is True
    r = await visit(client, admin, elder_id, W10.start + timedelta(days=1), reached=False, corrects=first["id"])
    assert r.status == 201
    assert (await schedules(client).find_one({"period": "2026-W10"}))["visited"] is False
    again = await visit(client, admin, elder_id, W10.start + timedelta(days=1), corrects=first["id"])
    assert again.status == 409 and (await again.json())["code"] == "visit_already_corrected"
    assert await client.app[CTX].db["visits"].count_documents({}) == 2


async def test_tiers_give_the_right_number_of_due_visits_over_a_quarter(client, stations, admin):
    ids = {
        "high": await register(client, admin, seq=1, flags=["disabled"]),
        "key": await register(client, admin, seq=2, flags=["extreme_poverty"], born=age_born(70)),
        "general": await register(client, admin, seq=3, flags=[], born=age_born(70)),
    }
    q1 = parse_period("2026-Q1")
    day = q1.start + timedelta(hours=10)
    while day < q1.end:
        await schedule_period(ctx=client.app[CTX], at=day)
        day += timedelta(days=1)
    for tier, n in (("high", 14), ("key", 3), ("general", 1)):
        q = {"elder_id": ids[tier], "period_start": {"$lt": q1.end}, "period_end": {"$gt": q1.start}}
        assert await schedules(client).count_documents(q) == n, tier


async def test_the_scheduler_twice_or_two_at_once_creates_no_duplicates(client, stations, admin):
    for seq in range(1, 6):
        await register(client, admin, seq=seq, flags=["disabled"])
    ctx = client.app[CTX]
    assert await schedule_period(ctx=ctx, at=W10.start) == 5
    assert await schedule_period(ctx=ctx, at=W10.start + timedelta(days=3)) == 0
    week11 = W10.end + timedelta(hours=1)
    created = await asyncio.gather(*(schedule_period(ctx=ctx, at=week11) for _ in range(3)))
    assert sum(created) == 5
    assert await schedules(client).count_documents({"period": {"$in": ["2026-W10", "2026-W11"]}}) == 10


async def test_a_closed_period_raises_one_missed_event_per_miss(client, stations, admin):
    ids = [await register(client, admin, seq=seq, at=W10.start, flags=["disabled"]) for seq in range(1, 4)]
    ctx = client.app[CTX]
    await schedule_period(ctx=ctx, at=W10.start)
    await visit(client, admin, ids[0], W10.start + timedelta(days=2))
    assert await close_periods(ctx=ctx, at=W10.end - timedelta(seconds=1)) == 0
    assert await close_periods(ctx=ctx, at=W10.end) == 2
    assert await close_periods(ctx=ctx, at=W10.end + timedelta(days=1)) == 0
    events = await ctx.db["events"].find({"type": "visit.missed"}).to_list()
    assert sorted(e["data"]["elder_id"] for e in events) == sorted(ids[1:])
    assert {e["data"]["period"] for e in events} == {"2026-W10"}
    assert all(e["data"]["tier"] == "high" and e["data"]["station_id"] for e in events)
    assert {e["data"]["elder_name"] for e in events} == {"王**"}
    # About a person, not a case: the person is the subject, and no case id is made up for it.
    assert {(e["subject"]["kind"], e["subject"]["id"]) for e in events} == {("elder", i) for i in ids[1:]}
    assert not any("case_id" in e for e in events)
    # A second process that had not yet seen the mark raises nothing new either.
    await schedules(client).update_many({}, {"$set": {"missed_event": False}})
    assert await close_periods(ctx=ctx, at=W10.end) == 0
    assert await ctx.db["events"].count_documents({"type": "visit.missed"}) == 2


async def test_visits_still_open_on_the_last_day_raise_one_visit_due_each(client, stations, admin):
    ids = [await register(client, admin, seq=seq, at=W10.start, flags=["disabled"]) for seq in range(1, 5)]
    ctx = client.app[CTX]
    await schedule_period(ctx=ctx, at=W10.start)
    await visit(client, admin, ids[0], W10.start + timedelta(days=2))
    ctx.clock = lambda: W10.start + timedelta(days=3)  # ended mid-week: leaves the due list at once
    r = await client.post(f"/api/v1/elders/{ids[3]}/end", json={"reason": "moved"}, headers=admin)
    assert r.status == 200, await r.json()
    sunday = W10.end - timedelta(days=1)  # Sunday 00:00 Beijing time: the week's last day
    assert await remind_due(ctx=ctx, at=sunday - timedelta(seconds=1)) == 0
    assert await remind_due(ctx=ctx, at=sunday + timedelta(hours=8)) == 2
    assert await remind_due(ctx=ctx, at=sunday + timedelta(hours=9)) == 0
    events = await ctx.db["events"].find({"type": "visit.due"}).to_list()
    assert sorted(e["data"]["elder_id"] for e in events) == sorted(ids[1:3])
    assert {(e["data"]["period"], e["data"]["tier"], e["data"]["elder_name"]) for e in events} == {
        ("2026-W10", "high", "王**")
    }
    assert all(e["station_id"] == stations["340102001"] and e["time"] == sunday for e in events)
    # Another process that had not seen the marks raises nothing new; a closed week is missed, not due.
    await schedules(client).update_many({}, {"$set": {"due_event": False}})
    assert await remind_due(ctx=ctx, at=sunday + timedelta(hours=10)) == 0
    assert await remind_due(ctx=ctx, at=W10.end) == 0
    assert await ctx.db["events"].count_documents({"type": "visit.due"}) == 2


async def test_the_rate_by_station_county_and_city_adds_up(client, settings, stations, admin):
    plan = [("340102001", 2, 1), ("340102002", 2, 2), ("340104001", 1, 0), ("341021103", 3, 1)]
    seq = 0
    for township, people, visited in plan:
        for i in range(people):
            seq += 1
            elder_id = await register(client, admin, township, seq=seq, flags=["disabled"])
            if i < visited:
                method = "video" if township == "341021103" else "home"
                await visit(client, admin, elder_id, W10.start + timedelta(days=1), method=method)
    await schedule_period(ctx=client.app[CTX], at=W10.start)
    totals = {}
    for group_by in ("station", "county", "city"):
        r = await client.get(f"/api/v1/stats/visits?period=2026-W10&group_by={group_by}", headers=admin)
        body = await r.json()
        assert r.status == 200, body
        assert (body["due"], body["visited"], body["rate"]) == (8, 4, 0.5)
        assert sum(g["due"] for g in body["groups"]) == 8 and sum(g["visited"] for g in body["groups"]) == 4
        totals[group_by] = {g["key"]: (g["due"], g["visited"]) for g in body["groups"]}
        assert len(body["misses"]) == 4 and all("*" in m["name_masked"] for m in body["misses"])
        assert {t["tier"]: t["due"] for t in body["by_tier"]} == {"high": 8, "key": 0, "general": 0}
        by_method = {m["method"]: m["visited"] for m in body["by_method"]}
        assert by_method == {"phone": 0, "video": 1, "home": 3, "ai_call": 0}
    assert totals["county"] == {"340102": (4, 3), "340104": (1, 0), "341021": (3, 1)}
    assert totals["city"] == {"340100": (5, 3), "341000": (3, 1)}
    assert totals["station"][stations["340102002"]] == (2, 2)
    hefei = bearer_for(settings, await make_staff(client.app[CTX], role="supervisor", division_prefix="3401"))
    body = await (await client.get("/api/v1/stats/visits?period=2026-W10&group_by=county", headers=hefei)).json()
    assert (body["due"], body["visited"]) == (5, 3)
    r = await client.get("/api/v1/stats/visits?period=2026-W10&division=3410", headers=hefei)
    assert r.status == 403
    r = await client.get(
        "/api/v1/stats/visits", headers=bearer_for(settings, await make_wechat_resident(client.app[CTX]))
    )
    assert r.status == 403


async def test_due_list_shows_who_still_needs_a_visit_soonest_first(client, settings, stations, admin):
    a = await register(client, admin, seq=1, flags=["disabled"])
    b = await register(client, admin, seq=2, flags=["extreme_poverty"], born=age_born(70))
    c = await register(client, admin, seq=3, flags=["disabled"])
    await schedule_period(ctx=client.app[CTX], at=datetime.now(CST))
    await visit(client, admin, c, datetime.now(CST) - timedelta(minutes=1))
    station = stations["340102001"]
    own = bearer_for(settings, await make_staff(client.app[CTX], role="worker", station_id=station))
    r = await client.get("/api/v1/visits/due", headers=own)
    items = (await r.json())["items"]
    assert r.status == 200 and {i["elder_id"] for i in items} == {a, b}
    assert [i["due_by"] for i in items] == sorted(i["due_by"] for i in items)
    other = bearer_for(settings, await make_staff(client.app[CTX], role="worker", station_id=stations["340104001"]))
    assert (await (await client.get("/api/v1/visits/due", headers=other)).json())["items"] == []
    r = await client.get(f"/api/v1/visits/due?station={station}", headers=other)
    assert r.status == 404



async def test_due_list_pages_hold_what_one_sorted_list_holds(client, settings, stations, admin):
    # Weekly and monthly people (different period ends), several with one due date (ties on it).
    ids = [await register(client, admin, seq=i, flags=["disabled"] if i % 2 else []) for i in range(1, 8)]
    await schedule_period(ctx=client.app[CTX], at=datetime.now(CST))
    whole = (await (await client.get("/api/v1/visits/due?limit=100", headers=admin)).json())["items"]
    assert {i["elder_id"] for i in whole} <= set(ids) and len(whole) >= 4
    assert len({i["due_by"] for i in whole}) < len(whole), "the fixture has ties on the due date"
    for limit in (1, 2, 3):
        seen, cursor = [], None
        while True:
            url = f"/api/v1/visits/due?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            r = await client.get(url, headers=admin)
            body = await r.json()
            assert r.status == 200, body
            seen.append([i["elder_id"] for i in body["items"]])
            cursor = body.get("next_cursor")
            if not cursor:
                break
        flat = [e for page in seen for e in page]
        assert flat == [i["elder_id"] for i in whole], limit
        assert all(len(page) == limit for page in seen[:-1])

@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"visited_at": (datetime.now(CST) + timedelta(hours=1)).isoformat()}, 422, "visit_in_future"),
        ({"method": "carrier_pigeon"}, 422, "unknown_method"),
        ({"needs": [{"service_code": "no_such_service"}]}, 422, "invalid_needs"),
        ({"elder_id": "000000000000000000000000"}, 404, "elder_not_found"),
    ],
)
async def test_bad_visit_input_gets_a_problem_and_writes_nothing(client, stations, admin, change, status, code):
    elder_id = await register(client, admin, flags=["disabled"])
    body = {"elder_id": elder_id, "method": "phone", "visited_at": datetime.now(CST).isoformat(), "reached": True}
    r = await client.post("/api/v1/visits", json={**body, **change}, headers=admin)
    got = await r.json()
    assert r.status == status and got["code"] == code, got
    assert await client.app[CTX].db["visits"].count_documents({}) == 0
    assert await schedules(client).count_documents({"visited": True}) == 0


async def test_a_visit_for_an_ended_person_is_refused(client, stations, admin):
    elder_id = await register(client, admin, flags=["disabled"])
    await client.post(f"/api/v1/elders/{elder_id}/end", json={"reason": "deceased"}, headers=admin)
    r = await visit(client, admin, elder_id, datetime.now(CST))
    assert r.status == 409 and (await r.json())["code"] == "elder_not_active"
    assert await client.app[CTX].db["visits"].count_documents({}) == 0


async def test_staff_of_another_station_cannot_record_visits_for_its_people(client, settings, stations, admin):
    elder_id = await register(client, admin, flags=["disabled"])
    other = bearer_for(settings, await make_staff(client.app[CTX], role="worker", station_id=stations["340102002"]))
    r = await visit(client, other, elder_id, datetime.now(CST))
    assert r.status == 404 and (await r.json())["code"] == "elder_not_found"


async def test_the_idempotency_key_replays_a_recorded_visit(client, stations, admin):
    elder_id = await register(client, admin, flags=["disabled"])
    headers = {**admin, "Idempotency-Key": "visit-1"}
    at = datetime.now(CST) - timedelta(minutes=5)
    first = await (await visit(client, headers, elder_id, at)).json()
    r = await visit(client, headers, elder_id, at)
    assert r.status == 201 and r.headers.get("Idempotency-Replayed") == "true"
    assert (await r.json())["id"] == first["id"]
    assert await client.app[CTX].db["visits"].count_documents({}) == 1


@pytest.mark.skipif(not HAS_CASES, reason="needs service.cases.submit (the cases module)")
async def test_a_need_found_opens_exactly_one_linked_routed_case(client, stations, admin):
    elder_id = await register(client, admin, flags=["disabled"])
    headers = {**admin, "Idempotency-Key": "visit-need"}
    needs = [{"service_code": "elderly_home_visit", "note": "希望社工每周上门"}]
    r = await visit(client, headers, elder_id, datetime.now(CST) - timedelta(minutes=5), needs=needs)
    got = await r.json()
    assert r.status == 201, got
    assert len(got["case_ids"]) == 1 and got["referrals"][0]["service_code"] == "elderly_home_visit"
    await visit(client, headers, elder_id, datetime.now(CST) - timedelta(minutes=5), needs=needs)
    cases = await client.app[CTX].db["cases"].find({"source.elder_id": elder_id}).to_list()
    assert len(cases) == 1
    case = cases[0]
    assert str(case["_id"]) == got["case_ids"][0]
    assert case["source"]["channel"] == "visit" and case["source"]["visit_record_id"] == got["id"]
    assert case["status"] == "dispatched" and case["station_id"] == stations["340102001"]


@pytest.mark.skipif(not HAS_CASES, reason="needs service.cases.submit (the cases module)")
async def test_a_danger_found_opens_an_urgent_emergency_case(client, stations, admin):
    elder_id = await register(client, admin, flags=["disabled"])
    danger = {"found": True, "kind": "fall", "note": "老人摔倒无法起身"}
    r = await visit(client, admin, elder_id, datetime.now(CST) - timedelta(minutes=5), method="home", danger=danger)
    got = await r.json()
    assert r.status == 201 and [x["kind"] for x in got["referrals"]] == ["danger"], got
    case = await client.app[CTX].db["cases"].find_one({"source.elder_id": elder_id})
    assert case["service"]["code"] == "elderly_emergency" and case["service"]["urgent"] is True
    assert case["answers"]["emergency_type"] == "fall"


async def test_a_need_delivered_at_an_address_is_refused_up_front_when_the_register_has_none(client, stations, admin):
    elder_id = await register(client, admin, flags=["disabled"], address=None)
    body = {
        "elder_id": elder_id,
        "method": "phone",
        "visited_at": datetime.now(CST).isoformat(),
        "reached": True,
        "needs": [{"service_code": "elderly_home_visit", "note": "希望社工上门"}],
    }
    r = await client.post("/api/v1/visits", json=body, headers=admin)
    got = await r.json()
    assert r.status == 422 and got["code"] == "invalid_needs", got
    assert "needs[0].address" in got["errors"], got
    assert await client.app[CTX].db["visits"].count_documents({}) == 0
    assert await client.app[CTX].db["cases"].count_documents({}) == 0
