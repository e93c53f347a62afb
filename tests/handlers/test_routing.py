import asyncio
import json
import time
from pathlib import Path

import shapely
from shapely.geometry import shape

from run import create_app
from service.catalog.service import seed_catalog
from tests.factories import bearer_of
from tests.seeded import seeded_bearer

SHEXIAN = (118.43, 29.86)
DATA = Path(__file__).resolve().parents[2] / "data" / "anhui_counties.geojson"


def county_holding(lon, lat):
    features = json.loads(DATA.read_text(encoding="utf-8"))["features"]
    pt = shapely.Point(lon, lat)
    return [f["properties"]["name"] for f in features if shape(f["geometry"]).contains(pt)]


def preview_body(lon, lat, **kw):
    return {"service_code": "elderly_home_visit", "location": {"lon": lon, "lat": lat}, **kw}


async def test_preview_for_a_point_in_shexian_asks_for_the_township_while_points_are_approximate(
    seeded_client,
):
    assert county_holding(*SHEXIAN) == ["歙县"]
    r = await seeded_client.post(
        "/api/v1/routing/preview", json=preview_body(*SHEXIAN), headers=await seeded_bearer(seeded_client, "worker")
    )
    body = await r.json()
    assert r.status == 200, body
    assert (body["method"], body["station_id"], body["county_code"]) == ("unrouted", None, "341021")
    assert body["needs_township"] is True and body["candidates"] == []
    assert body["reason"].startswith("位置无法区分歙县各乡镇（社工站坐标为近似位置）")
    codes = [t["code"] for t in body["townships"]]
    assert codes == sorted(codes) and all(c.startswith("341021") for c in codes) and len(codes) == 28
    assert all(t["station_id"] and t["station_name"] == f"{t['name']}社工站" for t in body["townships"])


async def test_preview_by_twelve_digit_division_code(seeded_client):
    r = await seeded_client.post(
        "/api/v1/routing/preview",
        json={"service_code": "elderly_home_visit", "division_code": "341021103000"},
        headers=await seeded_bearer(seeded_client, "supervisor"),
    )
    body = await r.json()
    assert r.status == 200 and (body["method"], body["station_code"]) == ("division", "341021103")


async def test_preview_with_gcj02_location_in_hefei(seeded_client):
    r = await seeded_client.post(
        "/api/v1/routing/preview",
        json=preview_body(
            117.232682, 31.818601, **{"location": {"lon": 117.232682, "lat": 31.818601, "coord_system": "gcj02"}}
        ),
        headers=await seeded_bearer(seeded_client, "admin"),
    )
    body = await r.json()
    # Converted to WGS-84 first: the point lies in Shushan district (蜀山区) of Hefei.
    assert r.status == 200 and body["needs_township"] and body["county_code"].startswith("3401")


async def test_preview_bad_inputs_are_clear_problems(seeded_client):
    worker = await seeded_bearer(seeded_client, "worker")
    cases = [
        ({"service_code": "no_such_service", "location": {"lon": 117.2, "lat": 31.8}}, "unknown_service"),
        ({"service_code": "elderly_home_visit", "division_code": "3410"}, "invalid_division_code"),
        ({"service_code": "elderly_home_visit", "division_code": "469999001"}, "invalid_division_code"),
        ({"service_code": "elderly_home_visit", "location": {"lon": 200, "lat": 31.8}}, "invalid_coordinates"),
        ({"service_code": "elderly_home_visit"}, "location_required"),
    ]
    for body, code in cases:
        r = await seeded_client.post("/api/v1/routing/preview", json=body, headers=worker)
        problem = await r.json()
        assert (r.status, problem["code"]) == (422, code), body


async def test_preview_access_follows_roles_and_the_stations_read_scope(seeded_client):
    body = preview_body(*SHEXIAN)
    r = await seeded_client.post("/api/v1/routing/preview", json=body)
    assert r.status == 401
    # A resident's app asks before filing, so it can offer the township picker.
    r = await seeded_client.post(
        "/api/v1/routing/preview", json=body, headers=await seeded_bearer(seeded_client, "resident")
    )
    assert r.status == 200 and (await r.json())["needs_township"] is True
    # docs/integrators.md: stations:read grants routing previews; cases:read alone does not.
    no_scope = await seeded_bearer(seeded_client, "client", scopes=("cases:read", "cases:write"))
    r = await seeded_client.post("/api/v1/routing/preview", json=body, headers=no_scope)
    assert r.status == 403 and (await r.json())["code"] == "insufficient_scope"
    with_scope = await seeded_bearer(seeded_client, "client", scopes=("stations:read",))
    r = await seeded_client.post("/api/v1/routing/preview", json=body, headers=with_scope)
    assert r.status == 200


async def _wait_for(client, headers, body, predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        decision = await (await client.post("/api/v1/routing/preview", json=body, headers=headers)).json()
        if predicate(decision):
            return time.monotonic()
        assert time.monotonic() < deadline, f"another process did not see the change: {decision}"
        await asyncio.sleep(0.2)


async def test_station_changes_reach_another_app_instance_within_five_seconds(aiohttp_client, settings):
    one = await aiohttp_client(create_app(settings))
    two = await aiohttp_client(create_app(settings))
    from handlers.keys import CTX

    await seed_catalog(one.app[CTX])
    admin = await bearer_of(one.app[CTX], "admin")
    body = preview_body(121.47, 31.23)  # Shanghai: no station yet
    first = await (await two.post("/api/v1/routing/preview", json=body, headers=admin)).json()
    assert first["method"] == "unrouted"

    created = await one.post(
        "/api/v1/stations",
        json={
            "code": "310101002",
            "name": "南京东路街道社工站",
            "county_name": "黄浦区",
            "city_name": "上海市",
            "location": {"type": "Point", "coordinates": [121.48, 31.24]},
        },
        headers=admin,
    )
    assert created.status == 201
    station = await created.json()
    start = time.monotonic()
    seen = await _wait_for(two, admin, body, lambda d: d["station_id"] == station["id"])
    assert seen - start < 5

    r = await one.delete(f"/api/v1/stations/{station['id']}", headers=admin)
    assert r.status == 200
    start = time.monotonic()
    seen = await _wait_for(two, admin, body, lambda d: d["method"] == "unrouted")
    assert seen - start < 5
