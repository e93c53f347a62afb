"""Refused requests of the visit programme: a 4xx problem, and nothing written (counted before and after)."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from handlers.keys import CTX
from service.catalog.service import seed_catalog
from service.common.pii import id_card_check_char
from tests.factories import bearer_of, elder_body, id_card, seed_stations

CST = timezone(timedelta(hours=8))
REGISTERED = datetime(2026, 3, 4, 10, 0, tzinfo=CST)
COLLECTIONS = ("elders", "visits", "visit_schedules", "cases", "events")


@pytest.fixture
async def stations(client):
    ctx = client.app[CTX]
    await seed_catalog(ctx)
    return await seed_stations(ctx)


@pytest.fixture
async def admin(client):
    return await bearer_of(client.app[CTX], "admin")


@pytest.fixture
async def elder(client, stations, admin):
    ctx = client.app[CTX]
    ctx.clock = lambda: REGISTERED
    r = await client.post("/api/v1/elders", json=elder_body(), headers=admin)
    body = await r.json()
    assert r.status == 201, body
    ctx.clock = lambda: datetime(2026, 11, 29, 12, 0, tzinfo=CST)
    return body


async def counts(client):
    db = client.app[CTX].db
    return {name: await db[name].count_documents({}) for name in COLLECTIONS}


@pytest.mark.parametrize(
    ("visited_at", "code"),
    [
        ("0001-01-01T00:00:00+08:00", "visit_time_out_of_range"),
        ("0001-01-01T00:00:00+14:00", "visit_time_out_of_range"),
        ("9999-12-31T23:59:59-12:00", "visit_time_out_of_range"),
        ("1999-12-31T23:59:59+08:00", "visit_time_out_of_range"),
        ("2026-03-03T23:59:00+08:00", "visit_before_registration"),  # the day before registration
        ("2026-11-29T12:30:00+08:00", "visit_in_future"),
    ],
)
async def test_a_visit_time_out_of_bounds_is_refused_and_nothing_is_stored(client, admin, elder, visited_at, code):
    before = await counts(client)
    body = {"elder_id": elder["id"], "method": "home", "visited_at": visited_at, "reached": True}
    needs = [{"service_code": "elderly_home_visit", "note": "需要上门"}]
    r = await client.post("/api/v1/visits", json={**body, "needs": needs}, headers=admin)
    got = await r.json()
    assert r.status == 422 and got["code"] == code, got
    assert "visited_at" in got["errors"]
    assert await counts(client) == before


async def test_a_visit_on_the_registration_day_before_the_registration_time_is_accepted(client, admin, elder):
    body = {"elder_id": elder["id"], "method": "phone", "visited_at": "2026-03-04T08:00:00+08:00", "reached": True}
    r = await client.post("/api/v1/visits", json=body, headers=admin)
    assert r.status == 201, await r.json()


@pytest.mark.parametrize(
    "query",
    [
        "period=0001-W01",
        "period=9999-W52",
        "period=9999-12",
        "period=0001-Q1",
        "misses_limit=0",
        "misses_limit=1001",
    ],
)
async def test_stats_parameters_out_of_range_are_a_422_problem(client, admin, elder, query):
    r = await client.get(f"/api/v1/stats/visits?{query}", headers=admin)
    got = await r.json()
    assert r.status == 422, got
    assert got["code"] in ("invalid_period", "validation_failed", "invalid_query"), got
    assert r.content_type == "application/problem+json"


@pytest.mark.parametrize("query", ["period=0001-W01", "period=9999-W52", "period=2026-W54"])
async def test_due_list_periods_out_of_range_are_a_422_problem(client, admin, elder, query):
    r = await client.get(f"/api/v1/visits/due?{query}", headers=admin)
    got = await r.json()
    assert r.status == 422 and got["code"] == "invalid_period", got


@pytest.mark.parametrize("query", ["until=0001-W01", "until=9999-W52", "until=2026-11", "weeks=0", "weeks=105"])
async def test_weekly_series_parameters_out_of_range_are_a_422_problem(client, admin, elder, query):
    r = await client.get(f"/api/v1/stats/visits/weekly?{query}", headers=admin)
    got = await r.json()
    assert r.status == 422, got
    assert got["code"] in ("invalid_period", "validation_failed", "invalid_query"), got


EDGES = ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-12:00", "9999-12-31T23:59:59Z"]


@pytest.mark.parametrize("consent_at", EDGES)
async def test_consent_at_the_edges_of_the_date_range_is_refused_on_register(client, stations, admin, consent_at):
    before = await counts(client)
    body = elder_body(consent={"given": True, "method": "written", "at": consent_at})
    r = await client.post("/api/v1/elders", json=body, headers=admin)
    got = await r.json()
    assert r.status == 422 and got["code"] == "invalid_elder", got
    assert "consent.at" in got["errors"]
    assert await counts(client) == before


@pytest.mark.parametrize("consent_at", EDGES)
async def test_consent_at_the_edges_of_the_date_range_is_refused_on_change(client, admin, elder, consent_at):
    before = await client.app[CTX].db["elders"].find_one({})
    consent = {"given": True, "method": "verbal", "at": consent_at}
    r = await client.patch(f"/api/v1/elders/{elder['id']}", json={"consent": consent}, headers=admin)
    got = await r.json()
    assert r.status == 422 and got["code"] == "invalid_elder", got
    assert await client.app[CTX].db["elders"].find_one({}) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "王\t秀英"), ("name", "王秀英\u202e"), ("address", "明光路1号\n2栋")],
)
async def test_control_characters_in_names_and_addresses_are_refused(client, stations, admin, field, value):
    before = await counts(client)
    r = await client.post("/api/v1/elders", json=elder_body(**{field: value}), headers=admin)
    got = await r.json()
    assert r.status == 422 and field in got["errors"], got
    assert await counts(client) == before


def _id_with_x() -> str:
    for seq in range(1, 1000):
        number = id_card("19400101", seq)
        if number.endswith("X"):
            return number
    raise AssertionError("no X check digit found")


async def test_a_lower_case_x_check_digit_is_stored_as_upper_case(client, stations, admin):
    number = _id_with_x()
    assert id_card_check_char(number[:17]) == "X"
    body = {**elder_body(), "id_card": number.lower()}
    r = await client.post("/api/v1/elders", json=body, headers=admin)
    got = await r.json()
    assert r.status == 201, got
    assert got["id_card_masked"].endswith("X")
    again = await client.post("/api/v1/elders", json={**body, "id_card": number}, headers=admin)
    assert again.status == 409 and (await again.json())["code"] == "elder_already_registered"


# ---------------------------------------------------------------- referral cases link back to the visit


async def test_a_case_opened_from_a_visit_names_the_visit_and_the_visit_names_the_case(client, settings, admin, elder):
    needs = [{"service_code": "elderly_home_visit", "note": "希望社工每周上门"}]
    body = {
        "elder_id": elder["id"],
        "method": "home",
        "visited_at": "2026-11-29T10:00:00+08:00",
        "reached": True,
        "needs": needs,
        "danger": {"found": True, "kind": "fall", "note": "摔倒"},
    }
    r = await client.post("/api/v1/visits", json=body, headers=admin)
    visit = await r.json()
    assert r.status == 201, visit
    assert len(visit["case_ids"]) == 2
    worker = await bearer_of(client.app[CTX], "worker", station_id=elder["station_id"])
    for case_id, finding in zip(visit["case_ids"], ("need:0", "danger"), strict=True):
        r = await client.get(f"/api/v1/cases/{case_id}", headers=worker)
        case = await r.json()
        assert r.status == 200, case
        assert case["source"] == {
            "channel": "visit",
            "visit_record_id": visit["id"],
            "elder_id": elder["id"],
            "visit_id": f"{visit['id']}:{finding}",
        }
        # The register's phone (contact and any phone answer) is masked for a worker not assigned to the case.
        assert "13800138000" not in json.dumps(case, ensure_ascii=False) and "138****8000" in json.dumps(case)
        r = await client.get(f"/api/v1/visits/{case['source']['visit_record_id']}", headers=worker)
        back = await r.json()
        assert r.status == 200 and case_id in back["case_ids"]
        assert any(ref["case_id"] == case_id for ref in back["referrals"])
