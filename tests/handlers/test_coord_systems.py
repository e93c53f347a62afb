"""Locations read out in the system the client draws with (WGS-84 stays stored)."""

from __future__ import annotations

import pytest

from handlers.keys import CTX
from tests.factories import bearer_for, case_body, make_phone_resident, make_staff, make_station

# The check value of data/PROVENANCE.md: WGS-84 in Hefei, and the same place in GCJ-02 and BD-09.
WGS84 = (117.2272, 31.8206)
GCJ02 = (117.232682, 31.818601)
BD09 = (117.239110, 31.824931)
HEFEI_TOWNSHIP = "340102001"


def close_to(coords, expected, tol=2e-6):
    return abs(coords[0] - expected[0]) <= tol and abs(coords[1] - expected[1]) <= tol


@pytest.mark.parametrize(("system", "expected"), [("gcj02", GCJ02), ("bd09", BD09), ("wgs84", WGS84)])
async def test_station_reads_give_the_location_in_the_asked_system(client, system, expected):
    station = await make_station(client.app[CTX], code=HEFEI_TOWNSHIP, name="明光路街道社工站", point=WGS84)
    r = await client.get(f"/api/v1/stations/{station.id}", params={"coord_system": system})
    body = await r.json()
    assert r.status == 200 and close_to(body["location"]["coordinates"], expected), body["location"]
    r = await client.get(
        "/api/v1/stations", params={"near": f"{expected[0]},{expected[1]}", "coord_system": system, "limit": 1}
    )
    hit = (await r.json())["items"][0]
    assert hit["id"] == station.id and close_to(hit["location"]["coordinates"], expected)
    assert hit["distance_km"] < 0.01  # the same place in both systems
    r = await client.get("/api/v1/stations", params={"county": "340102", "coord_system": system})
    assert close_to((await r.json())["items"][0]["location"]["coordinates"], expected)
    # Stored truth unchanged.
    r = await client.get(f"/api/v1/stations/{station.id}")
    assert (await r.json())["location"]["coordinates"] == list(WGS84)


async def test_case_reads_give_the_location_in_the_asked_system(client, settings):
    ctx = client.app[CTX]
    await make_station(ctx, code=HEFEI_TOWNSHIP, name="明光路街道社工站", point=WGS84)
    resident = await make_phone_resident(ctx)
    body = await case_body(ctx, division_code=HEFEI_TOWNSHIP)
    body["location"] = {"lon": GCJ02[0], "lat": GCJ02[1], "coord_system": "gcj02"}
    r = await client.post("/api/v1/cases", json=body, headers=bearer_for(settings, resident))
    case = await r.json()
    assert r.status == 201, case
    assert close_to(case["location"]["coordinates"], WGS84, tol=1e-5)  # stored and answered as WGS-84
    me = bearer_for(settings, resident)
    r = await client.get(f"/api/v1/cases/{case['id']}", params={"coord_system": "gcj02"}, headers=me)
    assert r.status == 200 and close_to((await r.json())["location"]["coordinates"], GCJ02, tol=1e-5)
    supervisor = await make_staff(ctx, role="supervisor", division_prefix="340102")
    r = await client.get("/api/v1/cases", params={"coord_system": "bd09"}, headers=bearer_for(settings, supervisor))
    items = (await r.json())["items"]
    assert [c["id"] for c in items] == [case["id"]] and close_to(items[0]["location"]["coordinates"], BD09, tol=1e-5)


async def test_an_unknown_coordinate_system_is_a_validation_problem(client, settings):
    station = await make_station(client.app[CTX], code=HEFEI_TOWNSHIP, name="明光路街道社工站", point=WGS84)
    resident = await make_phone_resident(client.app[CTX])
    for path, headers in (
        (f"/api/v1/stations/{station.id}", {}),
        ("/api/v1/cases", bearer_for(settings, resident)),
    ):
        r = await client.get(path, params={"coord_system": "mercator"}, headers=headers)
        assert r.status == 422 and (await r.json())["code"] == "validation_failed", path
