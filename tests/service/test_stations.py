import time

from run import open_context
from service import bootstrap
from service.common.inputs import from_given
from service.common.models import SYSTEM
from service.stations.fields import kind_from_name, normalize_station_code
from service.stations.index import current_index, invalidate_index
from service.stations.inputs import StationRegistration
from service.stations.routing import route_request
from service.stations.service import adjust_open_cases, create_station


def test_kind_and_code_normalisation():
    assert [kind_from_name(n) for n in ("明光路街道", "富堨镇社工站", "英坑乡", "农场")] == [
        "street",
        "town",
        "township",
        "other",
    ]
    assert normalize_station_code("341021103000") == "341021103"


async def test_seeding_twice_adds_nothing_the_second_time(settings):
    ctx, close = await open_context(settings)
    try:
        first = await bootstrap.seed(ctx=ctx)
        assert first == [
            "catalog: 19 service types added, 19 in the built-in catalogue",
            "stations: 104 county polygons and 1523 township stations added",
        ]
        start = time.monotonic()
        second = await bootstrap.seed(ctx=ctx)
        assert time.monotonic() - start < 5
        assert second[1] == "stations: 0 county polygons and 0 township stations added"
        assert await ctx.db["stations"].count_documents({"precision": "approx", "active": True}) == 1523
        index = await current_index(ctx=ctx)
        assert len(index) == 1523 and len(index.counties) == 104
    finally:
        await close()


async def test_a_full_station_is_passed_over_once_its_open_cases_reach_capacity(settings):
    ctx, close = await open_context(settings)
    try:
        await bootstrap.seed(ctx=ctx)  # the catalogue is needed; stations below are our own
        await ctx.db["stations"].delete_many({})
        base = {"county_name": "黄浦区", "city_name": "上海市"}
        a = await create_station(
            ctx=ctx,
            principal=SYSTEM,
            data=from_given(
                StationRegistration,
                {
                    **base,
                    "code": "310101001",
                    "name": "甲街道社工站",
                    "capacity": 1,
                    "location": {"type": "Point", "coordinates": [121.47, 31.23]},
                },
            ),
        )
        b = await create_station(
            ctx=ctx,
            principal=SYSTEM,
            data=from_given(
                StationRegistration,
                {
                    **base,
                    "code": "310101002",
                    "name": "乙街道社工站",
                    "location": {"type": "Point", "coordinates": [121.50, 31.23]},
                },
            ),
        )
        where = {"lon": 121.47, "lat": 31.23}
        assert (await route_request(ctx=ctx, service_code="elderly_home_visit", location=where)).station_id == a.id
        await adjust_open_cases(ctx=ctx, station_id=a.id, delta=1)
        invalidate_index(ctx=ctx)
        decision = await route_request(ctx=ctx, service_code="elderly_home_visit", location=where)
        assert (decision.method, decision.station_id) == ("nearest", b.id)
        assert "满负荷" in decision.reason
    finally:
        await close()
