import json

import pytest

from handlers.keys import CTX
from service.common.errors import ConflictError
from service.stations.repository import StationsRepository
from tests.factories import bearer_of, make_station

CSV_HEADER = "code,name,county_code,county_name,city_name,lon,lat,capabilities,capacity\n"
GOOD_ROWS = (
    "340102001,明光路街道社工站,340102,瑶海区,合肥市,117.3040,31.8599,elderly_care;funeral,30\n"
    "340102003000,胜利路街道社工站,340102,瑶海区,合肥市,117.3100,31.8700,,\n"
)
BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[117.0, 31.0], [117.2, 31.2], [117.2, 31.0], [117.0, 31.2], [117.0, 31.0]]],
}
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[117.0, 31.0], [117.2, 31.0], [117.2, 31.2], [117.0, 31.2], [117.0, 31.0]]],
}
NEW_STATION = {
    "code": "340102004",
    "name": "三里街街道社工站",
    "county_name": "瑶海区",
    "city_name": "合肥市",
    "location": {"type": "Point", "coordinates": [117.31, 31.86]},
    "jurisdiction": SQUARE,
    "capacity": 20,
    "opening_hours": {"mon": "08:30-12:00,14:00-17:30", "sat": "closed"},
    "contact_phone": "0551-62345678",
}


async def all_codes(client, settings):
    r = await client.get("/api/v1/stations", params={"include_inactive": "true", "limit": "100"})
    return [s["code"] for s in (await r.json())["items"]]


# ---------------------------------------------------------------- seeded, read-only


async def test_stations_near_hefei_are_hefeis_nearest_first(seeded_client):
    r = await seeded_client.get("/api/v1/stations", params={"near": "117.2272,31.8206", "limit": "10"})
    assert r.status == 200
    items = (await r.json())["items"]
    assert len(items) == 10
    assert all(s["city_name"] == "合肥市" for s in items)
    distances = [s["distance_km"] for s in items]
    assert distances == sorted(distances) and distances[0] < 10
    assert items[0]["precision"] == "approx"


async def test_near_search_accepts_gcj02_and_a_service_filter(seeded_client):
    r = await seeded_client.get(
        "/api/v1/stations",
        params={"near": "117.232682,31.818601", "coord_system": "gcj02", "service": "funeral_subsidy", "limit": "3"},
    )
    items = (await r.json())["items"]
    assert r.status == 200 and len(items) == 3 and items[0]["city_name"] == "合肥市"


async def test_list_by_county_pages_through_in_code_order(seeded_client):
    first = await (await seeded_client.get("/api/v1/stations", params={"county": "341021", "limit": "5"})).json()
    second = await (
        await seeded_client.get(
            "/api/v1/stations", params={"county": "341021", "limit": "5", "cursor": first["next_cursor"]}
        )
    ).json()
    codes = [s["code"] for s in first["items"] + second["items"]]
    assert codes == sorted(codes) and len(set(codes)) == 10
    assert all(s["county_name"] == "歙县" for s in first["items"] + second["items"])


@pytest.mark.parametrize("cursor", ["$gt", "not-a-cursor", "bm90IGEgY29kZQ"])  # the last: base64 of "not a code"
async def test_list_refuses_a_cursor_it_did_not_write(seeded_client, cursor):
    r = await seeded_client.get("/api/v1/stations", params={"county": "341021", "cursor": cursor})
    assert r.status == 400
    assert (await r.json())["code"] == "invalid_cursor"


async def test_station_detail_and_unknown_station(seeded_client):
    listed = await (await seeded_client.get("/api/v1/stations", params={"limit": "1"})).json()
    station_id = listed["items"][0]["id"]
    r = await seeded_client.get(f"/api/v1/stations/{station_id}")
    assert r.status == 200 and (await r.json())["id"] == station_id
    r = await seeded_client.get("/api/v1/stations/000000000000000000000000")
    assert r.status == 404 and (await r.json())["code"] == "station_not_found"


async def test_bad_near_values_are_422(seeded_client):
    r = await seeded_client.get("/api/v1/stations", params={"near": "east,north"})
    assert r.status == 422 and (await r.json())["code"] == "validation_failed"
    r = await seeded_client.get("/api/v1/stations", params={"near": "200,31"})
    assert r.status == 422 and (await r.json())["code"] == "invalid_coordinates"


# ---------------------------------------------------------------- admin changes


async def test_admin_adds_changes_and_deactivates_a_station(client, settings):
    admin = await bearer_of(client.app[CTX], "admin")
    r = await client.post("/api/v1/stations", json=NEW_STATION, headers=admin)
    assert r.status == 201, await r.text()
    station = await r.json()
    assert station["kind"] == "street" and station["city_code"] == "340100" and station["precision"] == "exact"
    assert station["open_cases"] == 0 and "elderly_care" in station["capabilities"]
    r = await client.patch(
        f"/api/v1/stations/{station['id']}",
        json={"location": {"type": "Point", "coordinates": [117.32, 31.87]}, "precision": "approx", "capacity": None},
        headers=admin,
    )
    assert r.status == 200
    changed = await r.json()
    assert changed["location"]["coordinates"] == [117.32, 31.87] and changed["capacity"] is None
    r = await client.delete(f"/api/v1/stations/{station['id']}", headers=admin)
    assert r.status == 200 and (await r.json())["active"] is False
    listed = await (await client.get("/api/v1/stations")).json()
    assert listed["items"] == []
    again = await client.post("/api/v1/stations", json=NEW_STATION, headers=admin)
    assert again.status == 409 and (await again.json())["code"] == "station_code_taken"


async def test_twelve_digit_code_is_stored_as_nine(client, settings):
    r = await client.post(
        "/api/v1/stations",
        json={**NEW_STATION, "code": "340102004000"},
        headers=await bearer_of(client.app[CTX], "admin"),
    )
    assert r.status == 201 and (await r.json())["code"] == "340102004"


async def test_self_intersecting_or_open_polygons_are_refused_and_nothing_written(client, settings):
    admin = await bearer_of(client.app[CTX], "admin")
    r = await client.post("/api/v1/stations", json={**NEW_STATION, "jurisdiction": BOWTIE}, headers=admin)
    body = await r.json()
    assert r.status == 422 and body["code"] == "invalid_station"
    assert "Self-intersection" in body["errors"]["jurisdiction"][0]
    open_ring = {"type": "Polygon", "coordinates": [[*SQUARE["coordinates"][0][:-1], [117.0, 31.1]]]}
    r = await client.post("/api/v1/stations", json={**NEW_STATION, "jurisdiction": open_ring}, headers=admin)
    assert r.status == 422 and "not closed" in (await r.json())["errors"]["jurisdiction"][0]
    outside = {"type": "Polygon", "coordinates": [[[190, 31], [191, 31], [191, 32], [190, 31]]]}
    r = await client.post("/api/v1/stations", json={**NEW_STATION, "jurisdiction": outside}, headers=admin)
    assert r.status == 422
    assert await all_codes(client, settings) == []


async def test_bad_station_fields_are_each_reported(client, settings):
    bad = {**NEW_STATION, "code": "12345", "location": {"type": "Point", "coordinates": [117, 95]}, "capacity": -1}
    r = await client.post("/api/v1/stations", json=bad, headers=await bearer_of(client.app[CTX], "admin"))
    body = await r.json()
    assert r.status == 422 and body["code"] == "invalid_station"
    assert {"code", "location", "capacity"} <= set(body["errors"])


async def test_only_admins_change_stations(client, settings):
    head = await bearer_of(client.app[CTX], "station_head", station_id=(await make_station(client.app[CTX])).id)
    r = await client.post("/api/v1/stations", json=NEW_STATION, headers=head)
    assert r.status == 403 and (await r.json())["code"] == "role_not_allowed"


# ---------------------------------------------------------------- bulk import


async def test_csv_dry_run_reports_every_bad_row_and_writes_nothing(client, settings):
    body = (
        CSV_HEADER
        + GOOD_ROWS
        + "34010,坏代码,340102,瑶海区,合肥市,117.3,31.8,,\n"
        + "340102005,经度坏,340102,瑶海区,合肥市,east,31.8,,\n"
        + "340102006,容量坏,340102,瑶海区,合肥市,117.3,31.8,,lots\n"
        + "340102001,重复,340102,瑶海区,合肥市,117.3,31.8,,\n"
        + "340102007,列太多,340102,瑶海区,合肥市,117.3,31.8,,,extra\n"
    )
    admin = {**await bearer_of(client.app[CTX], "admin"), "Content-Type": "text/csv"}
    r = await client.post("/api/v1/stations/import?dry_run=true", data=body.encode(), headers=admin)
    report = await r.json()
    assert r.status == 200, report
    assert (report["dry_run"], report["written"], report["total"], report["to_create"]) == (True, False, 7, 2)
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (4, "code"),
        (5, "lon"),
        (6, "capacity"),
        (7, "code"),
        (8, "_row"),
    ]
    r = await client.post("/api/v1/stations/import?dry_run=false", data=body.encode(), headers=admin)
    problem = await r.json()
    assert r.status == 422 and problem["code"] == "invalid_import"
    assert len(problem["rows"]) == 5 and "rows[5].lon" in problem["errors"]
    assert await all_codes(client, settings) == []


async def test_csv_apply_creates_then_updates(client, settings):
    admin = {**await bearer_of(client.app[CTX], "admin"), "Content-Type": "text/csv"}
    r = await client.post(
        "/api/v1/stations/import?dry_run=false", data=(CSV_HEADER + GOOD_ROWS).encode(), headers=admin
    )
    report = await r.json()
    assert r.status == 200 and report["written"] and report["to_create"] == 2
    assert await all_codes(client, settings) == ["340102001", "340102003"]
    again = await client.post(
        "/api/v1/stations/import?dry_run=false", data=(CSV_HEADER + GOOD_ROWS).encode(), headers=admin
    )
    assert (await again.json())["to_update"] == 2
    r = await client.get("/api/v1/stations", params={"service": "no_such_service"})
    assert r.status == 422 and (await r.json())["code"] == "unknown_service"


async def test_missing_csv_columns_are_refused(client, settings):
    admin = {**await bearer_of(client.app[CTX], "admin"), "Content-Type": "text/csv"}
    r = await client.post("/api/v1/stations/import", data=b"code,name\n340102001,x\n", headers=admin)
    body = await r.json()
    assert r.status == 422 and body["code"] == "invalid_import" and "columns" in body["errors"]


async def test_geojson_that_is_not_a_feature_collection_is_refused(client, settings):
    admin = {**await bearer_of(client.app[CTX], "admin"), "Content-Type": "application/geo+json"}
    r = await client.post(
        "/api/v1/stations/import?dry_run=false",
        data=json.dumps({"type": "Feature", "geometry": None, "properties": {}}).encode(),
        headers=admin,
    )
    assert r.status == 422 and (await r.json())["code"] == "invalid_import"
    assert await all_codes(client, settings) == []


async def test_geojson_import_with_jurisdictions(client, settings):
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [117.1, 31.1]},
            "properties": {
                "code": "340102001",
                "name": "明光路街道社工站",
                "county_code": "340102",
                "county_name": "瑶海区",
                "city_name": "合肥市",
                "jurisdiction": SQUARE,
                "precision": "exact",
            },
        },
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [117.1, 31.1]},
            "properties": {
                "code": "340102003",
                "name": "x",
                "county_code": "340102",
                "county_name": "瑶海区",
                "city_name": "合肥市",
                "jurisdiction": BOWTIE,
            },
        },
    ]
    admin = {**await bearer_of(client.app[CTX], "admin"), "Content-Type": "application/geo+json"}
    data = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    r = await client.post("/api/v1/stations/import?dry_run=false", data=data, headers=admin)
    assert r.status == 422 and [e["row"] for e in (await r.json())["rows"]] == [2]
    assert await all_codes(client, settings) == []
    data = json.dumps({"type": "FeatureCollection", "features": features[:1]}).encode()
    r = await client.post("/api/v1/stations/import?dry_run=false", data=data, headers=admin)
    assert r.status == 200 and (await r.json())["written"] is True
    assert await all_codes(client, settings) == ["340102001"]


async def test_import_that_fails_while_writing_leaves_nothing_behind(client, settings):
    ctx = client.app[CTX]
    admin = {**await bearer_of(client.app[CTX], "admin"), "Content-Type": "text/csv"}
    await client.post("/api/v1/stations/import?dry_run=false", data=(CSV_HEADER + GOOD_ROWS).encode(), headers=admin)
    from service.stations.fields import complete_station

    fresh = complete_station(
        {"code": "340102009", "name": "新站", "location": {"type": "Point", "coordinates": [117.3, 31.8]}}, ctx.now()
    )
    clash = complete_station(
        {"code": "340102001", "name": "重复", "location": {"type": "Point", "coordinates": [117.3, 31.8]}}, ctx.now()
    )
    repo = StationsRepository(ctx.db)
    try:
        await repo.apply_import([fresh, clash], [("340102003", {"name": "改名"})])
    except ConflictError as exc:
        assert exc.code == "import_conflict"
    else:
        raise AssertionError("the clashing insert should fail the import")
    codes = await all_codes(client, settings)
    assert codes == ["340102001", "340102003"]
    names = {s["code"]: s["name"] for s in (await (await client.get("/api/v1/stations")).json())["items"]}
    assert names["340102003"] == "胜利路街道社工站"
