"""Routing is only as exact as the data: approximate station points send location-only
requests to the county's dispatch queue, precise points route them to the nearest station."""

from __future__ import annotations

import csv
import io
import json
import math
import random
from pathlib import Path

import shapely
from shapely.geometry import shape

from handlers.keys import CTX
from service import bootstrap
from service.common.geo import Point, haversine_km
from service.stations.routing import route_request
from service.stations.service import station_ids_by_code
from tests.factories import bearer_for, bearer_of, case_body, make_phone_resident, make_staff

DATA = Path(__file__).resolve().parents[2] / "data"
SHEXIAN = "341021"  # 歙县, Huangshan: 28 townships around one county-seat point in the seed


def counties() -> dict[str, tuple[str, shapely.Geometry]]:
    features = json.loads((DATA / "anhui_counties.geojson").read_text(encoding="utf-8"))["features"]
    out = {}
    for f in features:
        geom = shape(f["geometry"])
        out[f["properties"]["code"]] = (f["properties"]["name"], geom if geom.is_valid else shapely.make_valid(geom))
    return out


def townships_of(county: str) -> list[dict[str, str]]:
    with (DATA / "anhui_townships.csv").open(encoding="utf-8") as fh:
        return [row for row in csv.DictReader(fh) if row["county_code"] == county]


def points_inside(geom: shapely.Geometry, n: int, rng: random.Random, others: list[shapely.Geometry]) -> list[Point]:
    """``n`` random points inside ``geom`` and inside no other county polygon."""
    x0, y0, x1, y1 = geom.bounds
    out: list[Point] = []
    while len(out) < n:
        p = shapely.Point(rng.uniform(x0, x1), rng.uniform(y0, y1))
        if geom.contains(p) and not any(o.intersects(p) for o in others):
            out.append(Point(round(p.x, 6), round(p.y, 6)))
    return out


def sample(rng: random.Random, per_county: int, extra: dict[str, int]) -> dict[str, list[Point]]:
    areas = counties()
    tree = shapely.STRtree([g for _, g in areas.values()])
    codes = list(areas)
    out = {}
    for code, (_, geom) in areas.items():
        near = [areas[codes[i]][1] for i in tree.query(geom) if codes[i] != code]
        out[code] = points_inside(geom, per_county + extra.get(code, 0), rng, near)
    return out


async def test_location_only_requests_go_to_the_county_queue_until_the_county_has_precise_points(client, settings):
    ctx = client.app[CTX]
    await bootstrap.seed(ctx=ctx)
    rng = random.Random(20261129)
    points = sample(rng, per_county=3, extra={SHEXIAN: 40})
    assert len(points) == 104 and sum(len(p) for p in points.values()) == 104 * 3 + 40

    # Every seeded point is approximate (a county seat): no point picks a township by tie-break.
    queued: dict[str, int] = {}
    for county, pts in points.items():
        wanted = sorted(row["code"] for row in townships_of(county))
        for p in pts:
            d = await route_request(ctx=ctx, service_code="elderly_home_visit", location=p)
            assert (d.method, d.station_id, d.county_code, d.needs_township) == ("unrouted", None, county, True), (
                p,
                d.reason,
            )
            assert [t.code for t in d.townships] == wanted
            assert "社工站坐标为近似位置" in d.reason
            queued[county] = queued.get(county, 0) + 1
    assert sum(queued.values()) == 352

    # The preview says so before filing, with the townships a resident picks from.
    station_ids = await station_ids_by_code(ctx=ctx, codes=["341021100"])
    worker = await bearer_of(ctx, "worker", station_id=station_ids["341021100"])
    p = points[SHEXIAN][0]
    r = await client.post(
        "/api/v1/routing/preview",
        json={"service_code": "elderly_home_visit", "location": {"lon": p.lon, "lat": p.lat}},
        headers=worker,
    )
    body = await r.json()
    assert r.status == 200, body
    assert body["needs_township"] is True and body["method"] == "unrouted" and body["county_code"] == SHEXIAN
    assert len(body["townships"]) == len(townships_of(SHEXIAN))
    first = body["townships"][0]
    assert first["code"] == "341021100" and first["name"] == "徽城镇" and first["station_name"] == "徽城镇社工站"
    # ... and a request naming the township routes by division.
    r = await client.post(
        "/api/v1/routing/preview",
        json={
            "service_code": "elderly_home_visit",
            "location": {"lon": p.lon, "lat": p.lat},
            "division_code": body["townships"][3]["code"],
        },
        headers=worker,
    )
    named = await r.json()
    assert (named["method"], named["station_id"], named["needs_township"]) == (
        "division",
        body["townships"][3]["station_id"],
        False,
    )

    # Precise points for Shexian's stations (distinct points inside the county), imported in bulk.
    shexian_geom = counties()[SHEXIAN][1]
    rows = townships_of(SHEXIAN)
    precise = points_inside(shexian_geom, len(rows), rng, [])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["code", "name", "county_code", "county_name", "city_name", "lon", "lat", "precision"])
    for row, q in zip(rows, precise, strict=True):
        writer.writerow(
            [row["code"], f"{row['name']}社工站", SHEXIAN, row["county_name"], row["city_name"], q.lon, q.lat, "exact"]
        )
    r = await client.post(
        "/api/v1/stations/import?dry_run=false",
        data=out.getvalue().encode(),
        headers={**await bearer_of(client.app[CTX], "admin"), "Content-Type": "text/csv"},
    )
    report = await r.json()
    assert r.status == 200 and report["written"] and report["to_update"] == len(rows), report

    for p in points[SHEXIAN]:
        d = await route_request(ctx=ctx, service_code="elderly_home_visit", location=p)
        nearest = min(
            zip(rows, precise, strict=True),
            key=lambda rq: (haversine_km(p.lon, p.lat, rq[1].lon, rq[1].lat), rq[0]["code"]),
        )
        assert (d.method, d.station_code, d.needs_township) == ("county", nearest[0]["code"], False), d.reason
        assert math.isclose(
            d.distance_km or 0, haversine_km(p.lon, p.lat, nearest[1].lon, nearest[1].lat), abs_tol=1e-3
        )
    # Other counties keep their queue.
    for county in ("340102", "341002", "341881"):
        d = await route_request(ctx=ctx, service_code="elderly_home_visit", location=points[county][0])
        assert d.needs_township and d.county_code == county


async def test_county_supervisor_dispatches_from_the_queue_and_the_routing_record_keeps_both_decisions(
    client, settings
):
    ctx = client.app[CTX]
    await bootstrap.seed(ctx=ctx)
    rng = random.Random(7)
    p = points_inside(counties()[SHEXIAN][1], 1, rng, [])[0]
    resident = await make_phone_resident(ctx)
    body = await case_body(ctx)
    del body["division_code"]
    body["location"] = {"lon": p.lon, "lat": p.lat}
    r = await client.post("/api/v1/cases", json=body, headers=bearer_for(settings, resident))
    case = await r.json()
    assert r.status == 201, case
    assert (case["status"], case["station_id"], case["division"]) == ("unrouted", None, SHEXIAN)
    assert case["routing"]["needs_township"] is True
    assert len(case["routing"]["townships"]) == len(townships_of(SHEXIAN))
    assert case["routing"]["reason"].startswith("位置无法区分歙县各乡镇")

    supervisor = await make_staff(ctx, role="supervisor", division_prefix=SHEXIAN)
    elsewhere = await make_staff(ctx, role="supervisor", division_prefix="341002")
    r = await client.get("/api/v1/cases?status=unrouted", headers=bearer_for(settings, supervisor))
    queue = await r.json()
    assert r.status == 200 and [c["id"] for c in queue["items"]] == [case["id"]]
    assert queue["items"][0]["routing"]["townships"][0]["code"] == "341021100"
    r = await client.get("/api/v1/cases?status=unrouted", headers=bearer_for(settings, elsewhere))
    assert r.status == 200 and (await r.json())["items"] == []

    target = case["routing"]["townships"][5]
    r = await client.post(
        f"/api/v1/cases/{case['id']}/dispatch",
        json={"station_id": target["station_id"], "note": "居民电话确认所在乡镇"},
        headers=bearer_for(settings, supervisor),
    )
    done = await r.json()
    assert r.status == 200, done
    assert (done["status"], done["station_id"]) == ("dispatched", target["station_id"])
    record = done["routing"]
    # The supervisor's decision on top, the system's kept under it.
    assert (record["method"], record["station_id"], record["station_code"]) == (
        "manual",
        target["station_id"],
        target["code"],
    )
    assert record["dispatched_by"] == {"role": "supervisor"} and record["dispatched_at"]
    assert record["reason"].startswith(f"人工派单：{target['station_name']}")
    system = record["system"]
    assert (system["method"], system["station_id"], system["county_code"]) == ("unrouted", None, SHEXIAN)
    assert system["needs_township"] is True and system["reason"].startswith("位置无法区分歙县各乡镇")
    assert [t["code"] for t in system["townships"]] == [t["code"] for t in case["routing"]["townships"]]
    r = await client.get(f"/api/v1/cases/{case['id']}", headers=bearer_for(settings, supervisor))
    history = (await r.json())["history"]
    assert [h["action"] for h in history][-2:] == ["submit", "dispatch"]
    assert history[-1]["actor"]["role"] == "supervisor" and history[-1]["note"] == "居民电话确认所在乡镇"
