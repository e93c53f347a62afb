"""County areas: stored once per county code, read back as the vendored polygons, a changed polygon
replaced and an unchanged one left alone (the count says how many changed).

The county documents are the seed's own (``county_docs``, the vendored Anhui polygons).
"""

from __future__ import annotations

from service.common.context import Context
from service.stations.imports import county_docs
from service.stations.models import CountyArea
from service.stations.repository import CountiesRepository


async def test_county_areas_are_stored_once_per_code_and_read_back_as_given(ctx: Context) -> None:
    docs = county_docs()  # every county the seed stores
    repo = CountiesRepository(ctx.db)
    assert await repo.list_all() == [] and await repo.names() == {}
    assert await repo.upsert_many(docs[:3]) == 3
    assert await repo.upsert_many(docs) == len(docs) - 3  # the first three are there already
    assert await repo.upsert_many(docs) == 0  # seeding again changes nothing
    assert await repo.col.count_documents({}) == len(docs) > 100
    areas = {a.code: a for a in await repo.list_all()}
    assert areas == {d["code"]: CountyArea(d["code"], d["name"], d["geometry"]) for d in docs}
    assert all(isinstance(code, str) and len(code) == 6 for code in areas)
    assert await repo.names() == {d["code"]: d["name"] for d in docs}


async def test_a_changed_county_polygon_replaces_the_stored_one(ctx: Context) -> None:
    first, second, *_ = county_docs()
    repo = CountiesRepository(ctx.db)
    await repo.upsert_many([first, second])
    redrawn = {**first, "name": first["name"] + "（新）", "geometry": second["geometry"]}
    assert await repo.upsert_many([redrawn, second]) == 1  # only the changed one is written
    areas = {a.code: a for a in await repo.list_all()}
    assert areas[first["code"]] == CountyArea(first["code"], redrawn["name"], second["geometry"])
    assert areas[second["code"]] == CountyArea(second["code"], second["name"], second["geometry"])
    assert (await repo.names())[first["code"]] == redrawn["name"]
