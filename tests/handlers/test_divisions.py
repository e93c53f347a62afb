"""The division picker: province -> city -> county -> township, search, and HTTP caching."""

from __future__ import annotations

import csv
from pathlib import Path

from handlers.keys import CTX
from service import bootstrap
from tests.factories import make_station

DATA = Path(__file__).resolve().parents[2] / "data"


async def children(client, parent=None, **query):
    params = {"parent": parent, **query} if parent else query
    r = await client.get("/api/v1/divisions", params=params)
    body = await r.json()
    assert r.status == 200, body
    return body["items"]


async def test_walking_the_levels_gives_16_cities_104_counties_and_every_township_with_its_station(seeded_client):
    top = await children(seeded_client)
    assert [(d["code"], d["name"], d["level"]) for d in top] == [("340000", "安徽省", "province")]
    cities = await children(seeded_client, "340000")
    assert len(cities) == 16 and {d["level"] for d in cities} == {"city"}
    assert ("340100", "合肥市") in {(d["code"], d["name"]) for d in cities}
    counties, zones, townships = [], [], []
    for city in cities:
        for d in await children(seeded_client, city["code"]):
            assert d["parent"] == city["code"] and d["station_id"] is None and d["has_children"]
            (counties if d["level"] == "county" else zones).append(d)
    assert len(counties) == 104 and len(zones) == 13
    assert {d["level"] for d in zones} == {"development_zone"}
    for county in counties + zones:
        townships += await children(seeded_client, county["code"])
    with (DATA / "anhui_townships.csv").open(encoding="utf-8") as fh:
        expected = {row["code"]: row["name"] for row in csv.DictReader(fh)}
    assert len(townships) == 1523
    assert {d["code"]: d["name"] for d in townships} == expected
    assert all(d["level"] == "township" and d["station_id"] and not d["has_children"] for d in townships)
    assert {d["kind"] for d in townships} == {"street", "town", "township"}
    assert await children(seeded_client, "341021100") == []


async def test_search_by_chinese_name_pinyin_and_pinyin_initials(seeded_client):
    hit = await children(seeded_client, q="徽城")
    assert [(d["code"], d["name"], d["level"]) for d in hit] == [("341021100", "徽城镇", "township")]
    assert hit[0]["station_id"]
    assert "340121" in {d["code"] for d in await children(seeded_client, q="cfx")}  # 长丰县, read changfeng
    in_huangshan = await children(seeded_client, "341000", q="hs")
    assert in_huangshan[0]["code"] == "341003" and in_huangshan[0]["name"] == "黄山区"
    assert all(d["code"].startswith("3410") for d in in_huangshan)
    assert [d["code"] for d in await children(seeded_client, q="shexian", level="county")] == ["341021"]
    assert [d["code"] for d in await children(seeded_client, q="HeFei", level="city")] == ["340100"]
    assert await children(seeded_client, "341021", q="合肥") == []


async def test_a_conditional_get_answers_304_while_nothing_changed(seeded_client):
    r = await seeded_client.get("/api/v1/divisions", params={"parent": "341000"})
    etag = r.headers["ETag"]
    assert r.status == 200 and etag.startswith('"')
    assert "max-age=86400" in r.headers["Cache-Control"] and "public" in r.headers["Cache-Control"]
    again = await seeded_client.get("/api/v1/divisions", params={"parent": "341000"}, headers={"If-None-Match": etag})
    assert again.status == 304 and again.headers["ETag"] == etag and await again.read() == b""
    other = await seeded_client.get(
        "/api/v1/divisions", params={"parent": "341000"}, headers={"If-None-Match": '"something-else"'}
    )
    assert other.status == 200 and (await other.json())["items"]
    county = await seeded_client.get("/api/v1/divisions", params={"parent": "341021"}, headers={"If-None-Match": etag})
    assert county.status == 200


async def test_bad_and_unknown_parents_are_problems(seeded_client):
    r = await seeded_client.get("/api/v1/divisions", params={"parent": "999999"})
    assert r.status == 404 and (await r.json())["code"] == "division_not_found"
    for params in ({"parent": "34"}, {"q": "x" * 21}, {"level": "village"}, {"limit": "0"}):
        r = await seeded_client.get("/api/v1/divisions", params=params)
        assert r.status == 422 and (await r.json())["code"] == "validation_failed", params


async def test_a_township_like_unit_is_listed_once_it_has_a_station_and_the_etag_changes(client):
    ctx = client.app[CTX]
    await bootstrap.seed(ctx=ctx)
    r = await client.get("/api/v1/divisions", params={"parent": "340422"})
    before = await r.json()
    assert "340422500" not in {d["code"] for d in before["items"]}
    farm = await make_station(ctx, code="340422500", name="寿西湖农场社工站", point=(116.78, 32.57))
    r2 = await client.get(
        "/api/v1/divisions", params={"parent": "340422"}, headers={"If-None-Match": r.headers["ETag"]}
    )
    assert r2.status == 200 and r2.headers["ETag"] != r.headers["ETag"]
    items = {d["code"]: d for d in (await r2.json())["items"]}
    assert len(items) == len(before["items"]) + 1
    assert (items["340422500"]["name"], items["340422500"]["kind"], items["340422500"]["station_id"]) == (
        "寿西湖农场",
        "farm",
        farm.id,
    )
