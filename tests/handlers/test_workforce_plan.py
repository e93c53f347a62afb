"""The plan's indicators from an imported register, training records and reference figures, for a county
(屯溪区 341002) and its city (黄山市 341000): every figure equals a hand count of the fixture."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from handlers.keys import CTX
from service.catalog.service import seed_catalog
from service.common.models import SYSTEM
from service.visits.stats import visit_stats
from service.workforce import plan
from tests.factories import (
    bearer_for,
    id_card,
    import_reference_figures,
    import_register,
    import_training_records,
    keep_network_record,
    make_compliant_station,
    make_elder,
    make_staff,
    make_station,
    make_training_session,
    verify_network_record,
)

CST = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 11, 20, 10, 0, tzinfo=CST)  # Thursday of 2025-W47
LATER = NOW + timedelta(days=7)  # 2025-W48: W47 is the last complete week
TUNXI, HUANGSHAN_DISTRICT, CITY = "341002", "341003", "341000"


def person(seq: int, region: str = TUNXI, **fields: Any) -> dict[str, Any]:
    return {
        "name": f"社工{seq}",
        "id_card": id_card("19900101", seq, region=region),
        "role": "frontline",
        "occupation": "social_work",
        **fields,
    }


P1 = person(
    1,
    employer_kind="station",
    division="341002001",
    start_date="2023-03-01",
    qualification_level="intermediate",
    certificate_no="SW2023001",
)
P2 = person(
    2,
    employer_kind="care_home",
    division=TUNXI,
    employer_name="屯溪区社会福利院",
    role="manager",
    start_date="2024-06-01",
)
P3 = person(3, employer_kind="station", division="341002002", role="supervisor", start_date="2025-02-01")
P4 = person(
    4, employer_kind="station", division="341002001", start_date="2022-01-01", status="left", end_date="2025-05-31"
)
P5 = person(
    5,
    HUANGSHAN_DISTRICT,
    employer_kind="care_home",
    division=HUANGSHAN_DISTRICT,
    employer_name="黄山区颐养院",
    start_date="2021-05-01",
)
P6 = person(
    6,
    HUANGSHAN_DISTRICT,
    employer_kind="care_home",
    division=HUANGSHAN_DISTRICT,
    employer_name="黄山区颐养院",
    occupation="elderly_care",
    start_date="2024-01-01",
)
P7 = person(7, HUANGSHAN_DISTRICT, employer_kind="station", division="341003100", start_date="2025-10-01")
P8 = person(
    8,
    "340102",
    employer_kind="social_org",
    division="340102",
    employer_name="合肥社工服务中心",
    start_date="2020-01-01",
)  # another city: never counted below


def done(p: dict[str, Any], status: str = "completed", **kw: Any) -> dict[str, Any]:
    return {"id_card": p["id_card"], "status": status, **kw}


@pytest.fixture
async def world(client: Any) -> dict[str, Any]:
    ctx = client.app[CTX]
    ctx.clock = lambda: NOW
    await seed_catalog(ctx)
    stations = {
        code: await make_station(ctx, code=code, name=name)
        for code, name in (
            ("341002001", "昱东街道社工站"),
            ("341002002", "昱中街道社工站"),
            ("341003100", "甘棠镇社工站"),
        )
    }
    # The station network: 昱东 operating, six haves met and signed off; 昱中 operating, six haves met as
    # recorded but not signed off; 甘棠 only built (not covering, not compliant).
    heads = {code: await make_staff(ctx, role="station_head", station_id=s.id) for code, s in stations.items()}
    supervisor = await make_staff(ctx, role="supervisor", division_prefix="3410")
    await make_compliant_station(ctx, stations["341002001"], heads["341002001"])
    await verify_network_record(ctx, stations["341002001"], supervisor)
    await make_compliant_station(ctx, stations["341002002"], heads["341002002"])
    await keep_network_record(
        ctx, stations["341003100"], heads["341003100"], status="built", dates={"built": date(2025, 1, 10)}
    )
    report = await import_register(ctx, [P1, P2, P3, P4, P5, P6, P7, P8])
    assert report.written and report.to_create == 8, report
    certified_a = await make_training_session(ctx, category="certified", starts_on="2025-04-01", ends_on="2025-04-03")
    certified_b = await make_training_session(ctx, category="certified", starts_on="2025-09-01", ends_on="2025-09-02")
    supervisors = await make_training_session(ctx, category="supervisor", starts_on="2025-06-01", ends_on="2025-06-05")
    managers_2024 = await make_training_session(ctx, category="manager", starts_on="2024-10-10", ends_on="2024-10-12")
    care_2024 = await make_training_session(ctx, category="elderly_care", starts_on="2024-05-01", ends_on="2024-05-03")
    care_2025 = await make_training_session(ctx, category="elderly_care", starts_on="2025-03-01", ends_on="2025-03-03")
    sheets = [
        (certified_a, [done(P1), done(P3), done(P5, "not_completed"), done(P7, "attended", attended_hours=8)]),
        (certified_b, [done(P1), done(P5)]),
        (supervisors, [done(P3)]),
        (managers_2024, [done(P2)]),
        (care_2024, [done(P6)]),
        (care_2025, [done(P6)]),
    ]
    for session, rows in sheets:
        report = await import_training_records(ctx, session.id, rows)
        assert report.written and not report.errors, report
    report = await import_reference_figures(
        ctx,
        [
            {
                "division": TUNXI,
                "year": 2025,
                "older_population": 60000,
                "care_home_beds": 400,
                "source": "2025年统计年鉴",
            },
            {
                "division": HUANGSHAN_DISTRICT,
                "year": 2025,
                "older_population": 30000,
                "care_home_beds": 200,
                "source": "2025年统计年鉴",
            },
        ],
    )
    assert report.written, report
    # Weekly-tier people (独居): two in 屯溪区, one visited in W47; one in 黄山区, not visited.
    a = await make_elder(ctx, township="341002001")
    await make_elder(ctx, township="341002001")
    await make_elder(ctx, township="341003100")
    ctx.clock = lambda: NOW + timedelta(hours=2)
    visit = {"elder_id": a.id, "method": "phone", "visited_at": (NOW + timedelta(hours=1)).isoformat(), "reached": True}
    resp = await client.post("/api/v1/visits", json=visit, headers=bearer_for(client.app[CTX].settings, SYSTEM))
    assert resp.status == 201, await resp.json()
    ctx.clock = lambda: LATER
    return {"ctx": ctx}


def townships_under(prefix: str) -> int:
    with open("data/anhui_townships.csv", encoding="utf-8") as fh:
        return sum(1 for row in csv.DictReader(fh) if row["code"].startswith(prefix))


async def get_plan(client: Any, headers: dict[str, str], query: str) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/stats/plan?{query}", headers=headers)
    body = await resp.json()
    assert resp.status == 200, body
    return {i["code"]: i for i in body["indicators"]} | {"_report": body}


@pytest.mark.parametrize(
    ("division", "expected"),
    [
        (
            TUNXI,
            {
                # in post on 2025-11-27: P1, P2, P3 (P4 left in May); at the end of 2024: P1, P2, P4
                "social_workers_total": 3,
                "social_workers_growth": 0.0,
                "trained_certified": 2,  # P1 (twice), P3
                "trained_managers": 0,  # P2 completed in 2024
                "trained_supervisors": 1,  # P3
                "trained_elderly_care": 0,
                "social_workers_per_1000_older": round(3 * 1000 / 60000, 4),
                "social_workers_per_100_beds": round(1 * 100 / 400, 4),  # P2 works in a care home
                "station_coverage": round(2 / townships_under(TUNXI), 4),  # 昱东, 昱中 operate
                "six_haves_compliance": 0.5,  # 昱东 signed off, of 昱东 and 昱中
                "weekly_visit_rate": 0.5,
            },
        ),
        (
            CITY,
            {
                # in post: P1, P2, P3, P5, P7; end of 2024: P1, P2, P4, P5
                "social_workers_total": 5,
                "social_workers_growth": 0.25,
                "trained_certified": 3,  # P1, P3, P5 (P7 only attended)
                "trained_managers": 0,
                "trained_supervisors": 1,
                "trained_elderly_care": 2,  # P6 in 2024 and 2025: person-times over the plan period
                "social_workers_per_1000_older": round(5 * 1000 / 90000, 4),  # the sum of the county figures
                "social_workers_per_100_beds": round(2 * 100 / 600, 4),  # P2 and P5
                "station_coverage": round(2 / townships_under("3410"), 4),  # 甘棠 is only built
                "six_haves_compliance": round(1 / 3, 4),  # 昱东 of three stations
                "weekly_visit_rate": round(1 / 3, 4),
            },
        ),
    ],
)
async def test_each_indicator_equals_a_hand_count_for_a_county_and_its_city(
    client: Any, settings: Any, world: dict[str, Any], division: str, expected: dict[str, float]
) -> None:
    got = await get_plan(client, bearer_for(settings, SYSTEM), f"division={division}&year=2025")
    report = got.pop("_report")
    assert report["as_of"] == "2025-11-27" and report["plan_period"]["id"] == "2021-2025"
    assert {code: got[code]["actual"] for code in expected} == pytest.approx(expected)
    six = got["six_haves_compliance"]
    assert six["available"] is True and six["target"] == 1.0 and six["gap"] == pytest.approx(1.0 - six["actual"])
    assert six["computation"]["inputs"]["compliant_as_recorded"] == 2  # 昱中's own record does not count
    assert "division_coverage" in six["computation"]["method"]
    growth = got["social_workers_growth"]
    assert growth["target"] == pytest.approx(0.106) and growth["met"] is (growth["actual"] >= 0.106)
    assert growth["gap"] == pytest.approx(max(0.0, 0.106 - growth["actual"]))
    # province-wide totals are not split onto a county or city by guesswork
    assert got["social_workers_total"]["target"] is None and "province" in got["social_workers_total"]["target_note"]
    assert got["trained_certified"]["computation"]["records"].startswith("/api/v1/training/records?")


async def test_the_drill_down_lists_the_counted_records(client: Any, settings: Any, world: dict[str, Any]) -> None:
    headers = bearer_for(settings, SYSTEM)
    got = await get_plan(client, headers, f"division={CITY}&year=2025")
    for code in ("social_workers_total", "trained_certified"):
        resp = await client.get(got[code]["computation"]["records"] + "&limit=100", headers=headers)
        page = await resp.json()
        assert resp.status == 200, page
        if code == "social_workers_total":
            assert len(page["items"]) == got[code]["actual"]
        else:
            assert len({r["person_id"] for r in page["items"]}) == got[code]["actual"]


async def test_coverage_and_compliance_are_the_station_networks_own_figures(
    client: Any, settings: Any, world: dict[str, Any]
) -> None:
    headers = bearer_for(settings, SYSTEM)
    for division in (TUNXI, CITY, "340000"):
        got = await get_plan(client, headers, f"division={division}&year=2025")
        coverage, six = got["station_coverage"], got["six_haves_compliance"]
        resp = await client.get(six["computation"]["figures"], headers=headers)
        body = await resp.json()
        assert resp.status == 200, body
        network = body["division"]
        assert coverage["computation"]["inputs"] == {
            "townships_with_station": network["covered_townships"],
            "townships": network["townships"],
        }
        assert six["computation"]["inputs"]["verified"] == network["verified"] == 1
        assert six["computation"]["inputs"]["stations"] == network["stations"]
        assert round(coverage["actual"] * 100, 1) == network["coverage_pct"]
        assert round(six["actual"] * 100, 1) == network["compliance_pct"]
        # the drill-down lists the stations counted
        resp = await client.get(six["computation"]["records"] + "&limit=100", headers=headers)
        rows = (await resp.json())["items"]
        assert len(rows) == six["computation"]["inputs"]["stations"]
        assert sum(r["verified"] for r in rows) == six["computation"]["inputs"]["verified"]
        covering = {r["station"]["code"] for r in rows if r["status"] in ("operating", "model")}
        assert len(covering) == coverage["computation"]["inputs"]["townships_with_station"]


async def test_a_township_has_no_network_figures_but_says_why(
    client: Any, settings: Any, world: dict[str, Any]
) -> None:
    got = await get_plan(client, bearer_for(settings, SYSTEM), "division=341002001&year=2025")
    assert got["_report"]["level"] == "township" and got["social_workers_total"]["actual"] == 1  # P1
    for code in ("station_coverage", "six_haves_compliance"):
        assert got[code]["actual"] is None and got[code]["available"] is False
        assert "county" in got[code]["reason"]


async def test_the_province_gets_the_province_wide_targets(client: Any, settings: Any, world: dict[str, Any]) -> None:
    got = await get_plan(client, bearer_for(settings, SYSTEM), "year=2025")
    assert got["_report"]["division"] == "340000" and got["_report"]["level"] == "province"
    total = got["social_workers_total"]
    assert total["target"] == 131000 and total["actual"] == 6  # the city's five and 合肥's P8
    assert total["gap"] == 131000 - 6 and total["met"] is False
    assert got["trained_certified"]["target"] == 500


async def test_the_visit_rate_is_the_visits_services_own_figure(client: Any, world: dict[str, Any]) -> None:
    ctx = world["ctx"]
    report = await plan.plan_indicators(ctx=ctx, principal=SYSTEM, division=TUNXI, year=2025)
    rate = next(i for i in report.indicators if i.code == "weekly_visit_rate")
    stats = await visit_stats(ctx=ctx, principal=SYSTEM, division=TUNXI, period="2025-W47")
    assert rate.actual == stats["rate"] and rate.computation["inputs"]["due"] == stats["due"] == 2


async def test_a_supervisor_sees_only_their_division(client: Any, settings: Any, world: dict[str, Any]) -> None:
    ctx = world["ctx"]
    supervisor = await make_staff(ctx, role="supervisor", division_prefix=TUNXI)
    headers = bearer_for(settings, supervisor)
    own = await get_plan(client, headers, "year=2025")
    assert own["_report"]["division"] == TUNXI and own["social_workers_total"]["actual"] == 3
    resp = await client.get("/api/v1/stats/plan?division=341000&year=2025", headers=headers)
    assert resp.status == 403 and (await resp.json())["code"] == "outside_your_area"
    resp = await client.get("/api/v1/workforce/people?limit=100", headers=headers)
    names = {p["name"] for p in (await resp.json())["items"]}
    assert names == {"社工1", "社工2", "社工3", "社工4"}
    resp = await client.get("/api/v1/workforce/people?division=341003", headers=headers)
    assert resp.status == 403 and (await resp.json())["code"] == "outside_your_area"
    resp = await client.get("/api/v1/training/records?limit=100", headers=headers)
    assert {r["division"][:6] for r in (await resp.json())["items"]} == {TUNXI}
    resp = await client.get("/api/v1/reference-figures", headers=headers)
    assert [f["division"] for f in (await resp.json())["items"]] == [TUNXI]


async def test_a_worker_may_not_read_the_plan(client: Any, settings: Any, world: dict[str, Any]) -> None:
    ctx = world["ctx"]
    station = (await make_station(ctx, code="341002003", name="昱西街道社工站")).id
    worker = await make_staff(ctx, role="worker", station_id=station)
    resp = await client.get("/api/v1/stats/plan", headers=bearer_for(settings, worker))
    assert resp.status == 403 and (await resp.json())["code"] == "role_not_allowed"


async def test_a_year_outside_every_plan_period_or_in_the_future_is_refused(
    client: Any, settings: Any, world: dict[str, Any]
) -> None:
    headers = bearer_for(settings, SYSTEM)
    for year, code in ((2019, "no_plan_period"), (2026, "invalid_year")):
        resp = await client.get(f"/api/v1/stats/plan?year={year}", headers=headers)
        assert resp.status == 422 and (await resp.json())["code"] == code


async def test_the_breakdown_gives_each_counties_figure_as_the_plan_gives_it(
    client: Any, settings: Any, world: dict[str, Any]
) -> None:
    headers = bearer_for(settings, SYSTEM)
    for indicator in ("social_workers_total", "station_coverage", "weekly_visit_rate"):
        resp = await client.get(
            f"/api/v1/stats/plan/divisions?division={CITY}&year=2025&indicator={indicator}", headers=headers
        )
        body = await resp.json()
        assert resp.status == 200, body
        rows = {r["division"]: r for r in body["divisions"]}
        # every county of 黄山市 in the division list, and nothing else
        assert set(rows) == {"341002", "341003", "341004", "341021", "341022", "341023", "341024"}
        assert body["indicator"] == indicator and body["level"] == "city"
        for county in (TUNXI, HUANGSHAN_DISTRICT):
            own = (await get_plan(client, headers, f"division={county}&year=2025"))[indicator]
            assert (rows[county]["actual"], rows[county]["progress"], rows[county]["target"]) == (
                own["actual"],
                own["progress"],
                own["target"],
            )
            assert rows[county]["records"] == own["computation"].get("records")
    resp = await client.get(
        f"/api/v1/stats/plan/divisions?division={CITY}&year=2025&indicator=social_workers_total", headers=headers
    )
    rows = {r["division"]: r for r in (await resp.json())["divisions"]}
    assert rows[TUNXI]["actual"] == 3 and rows[HUANGSHAN_DISTRICT]["actual"] == 2  # P5, P7
    resp = await client.get("/api/v1/stats/plan/divisions?year=2025&indicator=station_coverage", headers=headers)
    cities = (await resp.json())["divisions"]
    assert len(cities) == 16 and {r["level"] for r in cities} == {"city"}
    resp = await client.get(
        f"/api/v1/stats/plan/divisions?division={TUNXI}&year=2025&indicator=social_workers_total", headers=headers
    )
    townships = {r["division"]: r["actual"] for r in (await resp.json())["divisions"]}
    assert len(townships) == townships_under(TUNXI) and townships["341002001"] == 1 and townships["341002002"] == 1


async def test_the_breakdown_refuses_an_unknown_indicator_and_another_division(
    client: Any, settings: Any, world: dict[str, Any]
) -> None:
    resp = await client.get("/api/v1/stats/plan/divisions?indicator=happiness", headers=bearer_for(settings, SYSTEM))
    assert resp.status == 422 and (await resp.json())["code"] == "unknown_indicator"
    supervisor = await make_staff(world["ctx"], role="supervisor", division_prefix=TUNXI)
    resp = await client.get(
        "/api/v1/stats/plan/divisions?division=341000&indicator=station_coverage",
        headers=bearer_for(settings, supervisor),
    )
    assert resp.status == 403 and (await resp.json())["code"] == "outside_your_area"


async def test_stored_figures_are_reused_only_until_the_register_changes(
    client: Any, settings: Any, world: dict[str, Any]
) -> None:
    headers = bearer_for(settings, SYSTEM)
    first = await get_plan(client, headers, f"division={TUNXI}&year=2025")
    again = await get_plan(client, headers, f"division={TUNXI}&year=2025")
    assert again["social_workers_total"]["computation"]["snapshot"]["reused"] is True
    assert again["social_workers_total"]["actual"] == first["social_workers_total"]["actual"] == 3
    assert "counter" in again["trained_certified"]["computation"]["snapshot"]["rule"]
    # A new person on the register: the next answer is computed again and counts them.
    report = await import_register(
        world["ctx"], [person(9, employer_kind="station", division="341002001", start_date="2025-01-01")]
    )
    assert report.written, report
    after = await get_plan(client, headers, f"division={TUNXI}&year=2025")
    assert after["social_workers_total"]["computation"]["snapshot"]["reused"] is False
    assert after["social_workers_total"]["actual"] == 4
    # An hour later the stored figures are not reused either, changed or not.
    ctx = world["ctx"]
    ctx.clock = lambda: LATER + timedelta(hours=1, minutes=1)
    later = await get_plan(client, headers, f"division={TUNXI}&year=2025")
    assert later["social_workers_total"]["computation"]["snapshot"]["reused"] is False
