"""The plan's figure (周探访率): weekly tier only, by station, county and city, from a hand-counted fixture."""

import os
import shutil
from datetime import datetime, timedelta, timezone

import pytest

from handlers.keys import CTX
from run import create_app
from service.catalog.service import seed_catalog
from service.visits.periods import parse_period
from service.visits.schedules import close_periods, schedule_period
from service.visits.tiers import DEFAULT_FILE
from tests.factories import age_born, bearer_of, elder_body, seed_stations

CST = timezone(timedelta(hours=8))
W47, W48, W49 = parse_period("2026-W47"), parse_period("2026-W48"), parse_period("2026-W49")
A, B, C, D = "340102001", "340102002", "340104001", "341021103"


@pytest.fixture
async def stations(client):
    ctx = client.app[CTX]
    await seed_catalog(ctx)
    return await seed_stations(ctx)


@pytest.fixture
async def admin(client):
    return await bearer_of(client.app[CTX], "admin")


def at(client, when):
    client.app[CTX].clock = lambda: when


async def register(client, headers, township, seq, **kw):
    r = await client.post("/api/v1/elders", json=elder_body(township, seq=seq, **kw), headers=headers)
    body = await r.json()
    assert r.status == 201, body
    return body


async def visit(client, headers, elder_id, when, **kw):
    body = {"elder_id": elder_id, "method": "phone", "visited_at": when.isoformat(), "reached": True, **kw}
    r = await client.post("/api/v1/visits", json=body, headers=headers)
    got = await r.json()
    assert r.status == 201, got
    return got


async def stats(client, headers, query):
    r = await client.get(f"/api/v1/stats/visits?{query}", headers=headers)
    body = await r.json()
    assert r.status == 200, body
    return body


@pytest.fixture
async def month_boundary(client, stations, admin):
    """Weekly people at four stations, visited around the turn of November into December 2026.

    W49 runs Monday 2026-11-30 to Sunday 2026-12-06: it starts in November and ends in December.
    """
    at(client, datetime(2026, 11, 20, 10, 0, tzinfo=CST))  # W47
    people = {}
    for name, township, seq in (
        ("a1", A, 1),
        ("a2", A, 2),
        ("a3", A, 3),
        ("b1", B, 4),
        ("b2", B, 5),
        ("b3", B, 6),
        ("c1", C, 7),
        ("c2", C, 8),
        ("d1", D, 9),
    ):
        people[name] = (await register(client, admin, township, seq))["id"]  # 独居 + 高龄: weekly in Anhui
    people["m1"] = (await register(client, admin, A, 10, flags=["extreme_poverty"], born=age_born(70)))["id"]
    people["g1"] = (await register(client, admin, C, 11, flags=[], born=age_born(70)))["id"]
    ctx = client.app[CTX]
    for week in (W48, W49):
        await schedule_period(ctx=ctx, at=week.start + timedelta(hours=1))
    at(client, datetime(2026, 12, 7, 12, 0, tzinfo=CST))
    await visit(client, admin, people["a3"], datetime(2026, 11, 29, 18, 0, tzinfo=CST))  # Sunday of W48
    first = await visit(client, admin, people["a1"], datetime(2026, 11, 30, 10, 0, tzinfo=CST), method="home")
    second = await visit(client, admin, people["a1"], datetime(2026, 12, 3, 10, 0, tzinfo=CST))
    await visit(client, admin, people["a2"], datetime(2026, 12, 6, 23, 30, tzinfo=CST), method="video")
    await visit(client, admin, people["b1"], datetime(2026, 12, 1, 9, 0, tzinfo=CST), reached=False)
    await visit(client, admin, people["b2"], datetime(2026, 12, 2, 9, 0, tzinfo=CST), method="home")
    await visit(client, admin, people["d1"], datetime(2026, 12, 4, 9, 0, tzinfo=CST))
    await visit(client, admin, people["m1"], datetime(2026, 12, 3, 15, 0, tzinfo=CST), method="home")
    at(client, datetime(2026, 12, 2, 12, 0, tzinfo=CST))
    r = await client.post(f"/api/v1/elders/{people['b3']}/end", json={"reason": "in_care"}, headers=admin)
    assert r.status == 200, await r.json()
    at(client, datetime(2026, 12, 7, 12, 0, tzinfo=CST))
    people["first_visit"], people["second_visit"] = first["id"], second["id"]
    return people


async def test_the_weekly_rate_equals_a_hand_count_across_a_month_boundary(client, stations, admin, month_boundary):
    # Hand count for W49, weekly tier: due a1 a2 a3 b1 b2 c1 c2 d1 (b3 ended mid-week) = 8;
    # visited a1 a2 b2 d1 = 4 (a3 only in W48, b1 not reached, a1's second visit adds nothing).
    body = await stats(client, admin, "period=2026-W49&group_by=station")
    assert (body["due"], body["visited"], body["rate"]) == (8, 4, 0.5)
    assert body["plan"]["tier"] == "high" and body["plan"]["period"] == "2026-W49"
    assert [m["method"] for m in body["plan"]["counted_methods"]] == ["phone", "video", "home"]
    # Machine (AI) calls: each county's setting, stated beside the figure (the shipped table: not counted).
    assert body["plan"]["machine_calls"]["counted_by_default"] is False and "智能外呼" in body["plan"]["rule"]
    by_station = {g["key"]: (g["due"], g["visited"]) for g in body["groups"]}
    assert by_station == {stations[A]: (3, 2), stations[B]: (2, 1), stations[C]: (2, 0), stations[D]: (1, 1)}
    assert {g["name"] for g in body["groups"]} >= {"明光路街道社工站"}
    # The other tiers beside it, each on its own period: December for monthly, Q4 for quarterly.
    tiers = {t["tier"]: (t["period"], t["due"], t["visited"]) for t in body["by_tier"]}
    assert tiers == {"high": ("2026-W49", 8, 4), "key": ("2026-12", 1, 1), "general": ("2026-Q4", 1, 0)}
    station_a = next(g for g in body["groups"] if g["key"] == stations[A])
    assert {t["tier"]: t["due"] for t in station_a["by_tier"]} == {"high": 3, "key": 1, "general": 0}
    assert {m["method"]: m["visited"] for m in body["by_method"]} == {"phone": 1, "video": 1, "home": 2, "ai_call": 0}
    county = await stats(client, admin, "period=2026-W49&group_by=county")
    assert {g["key"]: (g["due"], g["visited"]) for g in county["groups"]} == {
        "340102": (5, 3),
        "340104": (2, 0),
        "341021": (1, 1),
    }
    city = await stats(client, admin, "period=2026-W49&group_by=city")
    assert {g["key"]: (g["due"], g["visited"]) for g in city["groups"]} == {"340100": (7, 3), "341000": (1, 1)}
    assert (city["due"], city["visited"]) == (8, 4)


async def test_a_month_report_counts_the_weeks_ending_in_it_and_the_month_on_its_own(
    client, stations, admin, month_boundary
):
    # November: weeks W47 and W48 end in it (9 weekly people each; only a3 visited, in W48);
    # W49 ends on 2026-12-07 and belongs to December.
    nov = await stats(client, admin, "period=2026-11")
    assert (nov["due"], nov["visited"]) == (18, 1) and nov["plan"]["covers"] == "weeks ending in 2026-11"
    assert {t["tier"]: (t["due"], t["visited"]) for t in nov["by_tier"]} == {
        "high": (18, 1),
        "key": (1, 0),
        "general": (1, 0),
    }
    dec = await stats(client, admin, "period=2026-12")
    assert (dec["due"], dec["visited"]) == (8, 4)


async def test_the_weekly_series_gives_the_last_n_weeks_oldest_first(client, stations, admin, month_boundary):
    r = await client.get("/api/v1/stats/visits/weekly?weeks=3&until=2026-W49", headers=admin)
    body = await r.json()
    assert r.status == 200, body
    assert [(w["period"], w["due"], w["visited"]) for w in body["items"]] == [
        ("2026-W47", 9, 0),
        ("2026-W48", 9, 1),
        ("2026-W49", 8, 4),
    ]
    assert body["plan"]["tier"] == "high" and all(w["closed"] for w in body["items"])
    hefei = await bearer_of(client.app[CTX], "supervisor", division_prefix="340104")
    r = await client.get("/api/v1/stats/visits/weekly?weeks=1&until=2026-W49", headers=hefei)
    assert [(w["due"], w["visited"]) for w in (await r.json())["items"]] == [(2, 0)]


async def test_an_ended_person_leaves_the_due_list_and_raises_no_miss(
    client, settings, stations, admin, month_boundary
):
    station_b = await bearer_of(client.app[CTX], "worker", station_id=stations[B])
    at(client, datetime(2026, 12, 3, 12, 0, tzinfo=CST))
    r = await client.get("/api/v1/visits/due", headers=station_b)
    due = {i["elder_id"] for i in (await r.json())["items"]}
    assert month_boundary["b3"] not in due and month_boundary["b1"] in due
    ctx = client.app[CTX]
    await close_periods(ctx=ctx, at=W49.end)
    events = await ctx.db["events"].find({"type": "visit.missed", "data.period": "2026-W49"}).to_list()
    missed = {e["data"]["elder_id"] for e in events}
    assert month_boundary["b1"] in missed and month_boundary["b3"] not in missed  # W49: withdrawn, not missed
    w49 = await ctx.db["visit_schedules"].find_one({"elder_id": month_boundary["b3"], "period": "2026-W49"})
    assert w49["withdrawn"]["reason"] == "ended:in_care"  # the history is kept
    w48 = await ctx.db["visit_schedules"].find_one({"elder_id": month_boundary["b3"], "period": "2026-W48"})
    assert w48["withdrawn"] is None  # a week already over stays as it was


async def test_counts_for_is_stored_once_and_a_second_visit_does_not_claim_the_week(
    client, stations, admin, month_boundary
):
    first, second = month_boundary["first_visit"], month_boundary["second_visit"]
    r = await client.get(f"/api/v1/visits?elder_id={month_boundary['a1']}", headers=admin)
    listed = {v["id"]: v["counts_for"] for v in (await r.json())["items"]}
    assert listed == {first: ["2026-W49"], second: []}
    one = await (await client.get(f"/api/v1/visits/{first}", headers=admin)).json()
    assert one["counts_for"] == ["2026-W49"]
    sched = (
        await client.app[CTX].db["visit_schedules"].find_one({"elder_id": month_boundary["a1"], "period": "2026-W49"})
    )
    assert sched["visit_id"] == first


async def test_the_answer_of_a_recorded_visit_agrees_with_later_reads(client, stations, admin):
    elder_id = (await register(client, admin, A, 1))["id"]
    now = datetime.now(CST) - timedelta(minutes=1)
    created = await visit(client, admin, elder_id, now)
    again = await visit(client, admin, elder_id, now)
    week = parse_period(created["counts_for"][0])
    assert week.contains(now) and again["counts_for"] == []
    read = await (await client.get(f"/api/v1/visits/{created['id']}", headers=admin)).json()
    assert read["counts_for"] == created["counts_for"]
    listed = await (await client.get(f"/api/v1/visits?elder_id={elder_id}", headers=admin)).json()
    assert {v["id"]: v["counts_for"] for v in listed["items"]} == {
        created["id"]: created["counts_for"],
        again["id"]: [],
    }


async def test_a_visit_record_of_another_station_is_not_found(client, settings, stations, admin):
    elder_id = (await register(client, admin, A, 1))["id"]
    created = await visit(client, admin, elder_id, datetime.now(CST) - timedelta(minutes=1))
    other = await bearer_of(client.app[CTX], "worker", station_id=stations[B])
    r = await client.get(f"/api/v1/visits/{created['id']}", headers=other)
    assert r.status == 404 and (await r.json())["code"] == "visit_not_found"
    r = await client.get("/api/v1/visits/000000000000000000000000", headers=admin)
    assert r.status == 404 and (await r.json())["code"] == "visit_not_found"


# ---------------------------------------------------------------- tiers


async def test_with_the_anhui_defaults_everyone_very_old_alone_or_unable_to_care_is_weekly(client, stations, admin):
    cases = [
        (["alone"], age_born(70), "high"),
        ([], "19400101", "high"),  # 高龄 from the birth date alone
        (["disabled"], age_born(70), "high"),
        (["dementia"], age_born(70), "high"),
        (["extreme_poverty"], age_born(70), "key"),
        ([], age_born(70), "general"),
    ]
    for seq, (flags, born, tier) in enumerate(cases, start=1):
        got = await register(client, admin, A, seq, flags=flags, born=born)
        assert (got["tier"], got["suggested_tier"], got["tier_pinned"]) == (tier, tier, False), (flags, born)
    r = await client.get("/api/v1/elders/tier-rules", headers=admin)
    table = await r.json()
    assert r.status == 200 and table["source"] == "visit_tiers.toml"
    anhui = next(p for p in table["provinces"] if p["province"] == "34")
    assert anhui["rules"][0] == {
        "tier": "high",
        "any_of": ["very_old", "alone", "disabled", "dementia"],
        "all_of": [],
        "note": anhui["rules"][0]["note"],
    }


async def test_a_flag_that_raises_the_suggestion_raises_the_tier_from_the_next_week(client, stations, admin):
    now = datetime(2026, 12, 2, 10, 0, tzinfo=CST)  # Wednesday of W49
    at(client, now)
    free = (await register(client, admin, A, 1, flags=["extreme_poverty"], born=age_born(70)))["id"]
    pinned = (await register(client, admin, A, 2, flags=["extreme_poverty"], born=age_born(70), tier="key"))["id"]
    r = await client.patch(f"/api/v1/elders/{free}", json={"flags": ["extreme_poverty", "disabled"]}, headers=admin)
    got = await r.json()
    assert r.status == 200, got
    assert (got["tier"], got["previous_tier"], got["suggested_tier"]) == ("high", "key", "high")
    assert datetime.fromisoformat(got["tier_from"]) == W49.end  # Monday 2026-12-07 00:00 Beijing time
    r = await client.patch(f"/api/v1/elders/{pinned}", json={"flags": ["extreme_poverty", "disabled"]}, headers=admin)
    kept = await r.json()
    assert (kept["tier"], kept["suggested_tier"], kept["tier_pinned"]) == ("key", "high", True)
    ctx = client.app[CTX]
    await schedule_period(ctx=ctx, at=now + timedelta(days=1))
    assert await ctx.db["visit_schedules"].count_documents({"elder_id": free, "kind": "week"}) == 0
    await schedule_period(ctx=ctx, at=W49.end + timedelta(hours=1))
    due = await ctx.db["visit_schedules"].find({"elder_id": free, "kind": "week"}).to_list()
    assert [s["period"] for s in due] == ["2026-W50"]
    assert await ctx.db["visit_schedules"].count_documents({"elder_id": pinned, "kind": "week"}) == 0
    # Unpinning hands the tier back to the rules.
    r = await client.patch(f"/api/v1/elders/{pinned}", json={"tier_pinned": False}, headers=admin)
    assert (await r.json())["tier"] == "high"


async def test_a_changed_table_is_reapplied_with_a_dry_run_listing_who_moves(aiohttp_client, settings, tmp_path):
    path = tmp_path / "visit_tiers.toml"
    shipped = DEFAULT_FILE.read_text(encoding="utf-8")
    path.write_text("[provinces.default]" + shipped.split("[provinces.default]")[-1], encoding="utf-8")
    client = await aiohttp_client(create_app(settings.replace(visit_tier_rules_file=str(path))))
    ctx = client.app[CTX]
    await seed_stations(ctx)
    admin = await bearer_of(ctx, "admin")
    alone = await register(client, admin, A, 1, flags=["alone"], born=age_born(70))
    old = await register(client, admin, A, 2, flags=[], born="19400101")
    pinned = await register(client, admin, A, 3, flags=["alone"], born=age_born(70), tier="general")
    assert (alone["tier"], old["tier"], pinned["tier"]) == ("key", "key", "general")
    shutil.copy(DEFAULT_FILE, path)  # the province adopts the Anhui table
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    before = await ctx.db["elders"].find({}, {"tier": 1, "version": 1}).to_list()
    r = await client.post("/api/v1/elders/tier-rules/apply?dry_run=true", headers=admin)
    dry = await r.json()
    assert r.status == 200, dry
    assert (dry["checked"], dry["pinned"], dry["moving"], dry["written"]) == (3, 1, 2, 0)
    assert {(m["elder_id"], m["from_tier"], m["to_tier"]) for m in dry["moves"]} == {
        (alone["id"], "key", "high"),
        (old["id"], "key", "high"),
    }
    assert all("*" in m["name_masked"] for m in dry["moves"])
    assert await ctx.db["elders"].find({}, {"tier": 1, "version": 1}).to_list() == before
    worker = await bearer_of(ctx, "supervisor", division_prefix="34")
    r = await client.post("/api/v1/elders/tier-rules/apply?dry_run=false", headers=worker)
    assert r.status == 403
    r = await client.post("/api/v1/elders/tier-rules/apply?dry_run=false", headers=admin)
    done = await r.json()
    assert done["written"] == 2
    moved = await (await client.get(f"/api/v1/elders/{alone['id']}", headers=admin)).json()
    assert (moved["tier"], moved["previous_tier"]) == ("high", "key")
    assert datetime.fromisoformat(moved["tier_from"]) > datetime.now(CST)
    left = await (await client.get(f"/api/v1/elders/{pinned['id']}", headers=admin)).json()
    assert (left["tier"], left["suggested_tier"]) == ("general", "high")
    again = await (await client.post("/api/v1/elders/tier-rules/apply?dry_run=true", headers=admin)).json()
    assert again["moving"] == 0


async def test_records_from_before_pinning_keep_a_tier_staff_chose(client, stations, admin):
    followed = (await register(client, admin, A, 1, flags=["extreme_poverty"], born=age_born(70)))["id"]
    chosen = (await register(client, admin, A, 2, flags=["extreme_poverty"], born=age_born(70), tier="general"))["id"]
    # Records written before the field existed carry no tier_pinned.
    await client.app[CTX].db["elders"].update_many({}, {"$unset": {"tier_pinned": ""}})
    got = {e["id"]: e for e in (await (await client.get("/api/v1/elders", headers=admin)).json())["items"]}
    assert (got[followed]["tier_pinned"], got[chosen]["tier_pinned"]) == (False, True)
    r = await client.patch(f"/api/v1/elders/{followed}", json={"flags": ["extreme_poverty", "alone"]}, headers=admin)
    assert (await r.json())["tier"] == "high"
    r = await client.patch(f"/api/v1/elders/{chosen}", json={"flags": ["extreme_poverty", "alone"]}, headers=admin)
    assert (await r.json())["tier"] == "general"
