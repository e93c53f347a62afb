"""Machine (AI) call visits: posted by a calling platform through the visits API, counted per county.

People, stations and vendors come from ``tests/factories.py``; the rate is read from the API
and checked against a count made by hand from what the test recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config import Settings
from handlers.keys import CTX
from run import create_app
from tests.factories import TOWNSHIP, bearer_for, make_elder, make_staff, make_station, make_vendor

COUNTING = """
[counties.default]
name = "default"
machine_calls_count = false
escalation = []

[counties.{county}]
name = "屯溪区"
machine_calls_count = true
escalation = []
"""


def _call(elder_id: str, *, reached: bool, flags: list[str] | None = None, summary: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {
        "elder_id": elder_id,
        "method": "ai_call",
        "visited_at": datetime.now(UTC).isoformat(),
        "reached": reached,
        "flags": flags or [],
    }
    if summary:
        body["summary"] = summary
    return body


async def test_ai_call_flagged_needs_help_opens_a_linked_urgent_case(client: Any, settings: Settings) -> None:
    ctx = client.app[CTX]
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    elder = await make_elder(ctx)
    platform = await make_vendor(ctx, scopes=("visits:write",))
    body = _call(elder.id, reached=True, flags=["needs_help"], summary="老人说腿疼站不起来 says she cannot stand up")
    resp = await client.post("/api/v1/visits", json=body, headers=bearer_for(settings, platform))
    visit = await resp.json()
    assert resp.status == 201, visit
    assert visit["method"] == "ai_call" and visit["flags"] == ["needs_help"]
    assert visit["counts_for"] == []  # a machine call never marks the person visited by a visitor
    [case_id] = visit["case_ids"]
    resp = await client.get(f"/api/v1/cases/{case_id}", headers=bearer_for(settings, worker))
    case = await resp.json()
    assert case["service"]["code"] == "elderly_emergency" and case["service"]["urgent"] is True
    assert case["station_id"] == station.id
    assert case["source"]["channel"] == "visit" and case["source"]["visit_record_id"] == visit["id"]
    assert "站不起来" in case["description"]


async def test_ai_call_flagged_unwell_asks_for_a_home_visit(client: Any, settings: Settings) -> None:
    ctx = client.app[CTX]
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    elder = await make_elder(ctx)
    platform = await make_vendor(ctx, scopes=("visits:write",))
    resp = await client.post(
        "/api/v1/visits",
        json=_call(elder.id, reached=True, flags=["feels_unwell"]),
        headers=bearer_for(settings, platform),
    )
    visit = await resp.json()
    assert resp.status == 201, visit
    [case_id] = visit["case_ids"]
    resp = await client.get(f"/api/v1/cases/{case_id}", headers=bearer_for(settings, worker))
    assert (await resp.json())["service"]["code"] == "elderly_home_visit"


async def test_a_platform_records_machine_calls_only(client: Any, settings: Settings) -> None:
    ctx = client.app[CTX]
    await make_station(ctx)
    elder = await make_elder(ctx)
    platform = await make_vendor(ctx, scopes=("visits:write",))
    human = {**_call(elder.id, reached=True), "method": "home"}
    del human["flags"]
    resp = await client.post("/api/v1/visits", json=human, headers=bearer_for(settings, platform))
    assert resp.status == 403 and (await resp.json())["code"] == "machine_calls_only"
    no_scope = await make_vendor(ctx, scopes=("cases:write",))
    resp = await client.post(
        "/api/v1/visits", json=_call(elder.id, reached=True), headers=bearer_for(settings, no_scope)
    )
    assert resp.status == 403 and (await resp.json())["code"] == "insufficient_scope"


async def _rate(client: Any, settings: Settings, supervisor: Any) -> dict[str, Any]:
    resp = await client.get(
        f"/api/v1/stats/visits?division={TOWNSHIP[:6]}&group_by=county", headers=bearer_for(settings, supervisor)
    )
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def test_visit_rate_with_and_without_machine_calls_matches_a_hand_count(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(settings))
    ctx = client.app[CTX]
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    supervisor = await make_staff(ctx, role="supervisor")
    platform = await make_vendor(ctx, scopes=("visits:write",))
    people = [await make_elder(ctx) for _ in range(10)]
    # By hand: 0-2 visited at home; 3-5 answered a machine call; 6 both; 7 an unanswered machine call; 8-9 nothing.
    human, machine_reached, machine_missed = {0, 1, 2, 6}, {3, 4, 5, 6}, {7}
    for i, person in enumerate(people):
        if i in human:
            body = {
                "elder_id": person.id,
                "method": "home",
                "visited_at": datetime.now(UTC).isoformat(),
                "reached": True,
            }
            resp = await client.post("/api/v1/visits", json=body, headers=bearer_for(settings, worker))
            assert resp.status == 201, await resp.text()
        if i in machine_reached | machine_missed:
            call = _call(person.id, reached=i in machine_reached)
            resp = await client.post("/api/v1/visits", json=call, headers=bearer_for(settings, platform))
            assert resp.status == 201, await resp.text()
    due = len(people)
    without = len(human)  # 4
    with_machine = len(human | machine_reached)  # 7

    stats = await _rate(client, settings, supervisor)
    assert stats["due"] == due
    assert stats["visited_without_machine"] == without and stats["rate_without_machine"] == round(without / due, 4)
    assert stats["visited_with_machine"] == with_machine and stats["rate_with_machine"] == round(with_machine / due, 4)
    # The shipped setting of this county: machine calls do not count, and it says so beside the rate.
    assert stats["visited"] == without and stats["rate"] == round(without / due, 4)
    county = next(c for c in stats["plan"]["machine_calls"]["counties"] if c["county"] == TOWNSHIP[:6])
    assert county["counted"] is False
    [group] = stats["groups"]
    assert (group["visited"], group["visited_with_machine"]) == (without, with_machine)

    # The same records under a county setting that counts answered machine calls.
    rules = tmp_path / "county_rules.toml"
    rules.write_text(COUNTING.format(county=TOWNSHIP[:6]), encoding="utf-8")
    counting = await aiohttp_client(create_app(settings.replace(county_rules_file=str(rules))))
    stats = await _rate(counting, settings, supervisor)
    assert stats["visited"] == with_machine and stats["rate"] == round(with_machine / due, 4)
    assert stats["visited_without_machine"] == without
    county = next(c for c in stats["plan"]["machine_calls"]["counties"] if c["county"] == TOWNSHIP[:6])
    assert county["counted"] is True
    by_method = {m["method"]: m["visited"] for m in stats["by_method"]}
    assert by_method["home"] == len(human) and by_method["ai_call"] == with_machine - without


async def test_a_platform_records_calls_only_to_the_people_of_its_territory(client: Any, settings: Settings) -> None:
    ctx = client.app[CTX]
    station = await make_station(ctx)
    elder = await make_elder(ctx)  # in TOWNSHIP, 屯溪区 of 黄山市
    city = await make_vendor(ctx, scopes=("visits:write",), division_prefix=TOWNSHIP[:4])
    elsewhere = await make_vendor(ctx, scopes=("visits:write",), division_prefix="340102")
    unset = await make_vendor(ctx, scopes=("visits:write",), division_prefix=None)
    for platform in (elsewhere, unset):
        resp = await client.post(
            "/api/v1/visits", json=_call(elder.id, reached=True), headers=bearer_for(settings, platform)
        )
        problem = await resp.json()
        assert (resp.status, problem["code"]) == (403, "outside_territory"), problem
    resp = await client.post("/api/v1/visits", json=_call(elder.id, reached=True), headers=bearer_for(settings, city))
    assert resp.status == 201, await resp.text()
    resp = await client.get(
        f"/api/v1/visits?elder_id={elder.id}",
        headers=bearer_for(settings, await make_staff(ctx, station_id=station.id)),
    )
    records = (await resp.json())["items"]
    assert [r["visitor"] for r in records] == [city.client.client_id], "the refused calls wrote nothing"
