"""Stations: unique codes, not-found codes, paging by code, the open-case counter never below zero."""

from __future__ import annotations

import pytest

from service.common.context import Context
from service.common.errors import ConflictError, NotFoundError
from service.stations.models import Station
from service.stations.repository import StationsRepository
from tests.factories import make_station, make_wechat_resident

SECOND_CODE = "341002002"


async def second_station(ctx: Context) -> Station:
    """The next township's station (老街街道)."""
    return await make_station(ctx, code=SECOND_CODE, name="老街街道社工站", point=(118.33, 29.71))


async def test_codes_are_unique_and_missing_stations_are_not_found(ctx: Context) -> None:
    one = await make_station(ctx)
    two = await second_station(ctx)
    repo = StationsRepository(ctx.db)
    got = await repo.get(one.id)
    assert isinstance(got, Station) and got.code == one.code and got.name == one.name
    with pytest.raises(ConflictError) as exc:
        await repo.update(two.id, {"code": one.code})
    assert exc.value.code == "station_code_taken"
    assert (await repo.get(two.id)).code == SECOND_CODE
    with pytest.raises(ConflictError):
        await make_station(ctx)  # the same code again
    for missing in ("not-an-id", (await make_wechat_resident(ctx)).id):
        with pytest.raises(NotFoundError) as nf:
            await repo.get(missing)
        assert nf.value.code == "station_not_found"
    with pytest.raises(NotFoundError):
        await repo.update((await make_wechat_resident(ctx)).id, {"name": "x"})
    assert await repo.codes([one.code, "341002999"]) == {one.code: one.id}
    assert [s.id for s in await repo.get_many([two.id, "not-an-id", one.id])] == [two.id, one.id]


async def test_stations_page_by_code_with_filters(ctx: Context) -> None:
    two = await second_station(ctx)
    one = await make_station(ctx, capabilities=[])
    repo = StationsRepository(ctx.db)
    first = await repo.list_page(county_code=None, city_code=None, active=None, limit=1, cursor=None)
    rest = await repo.list_page(county_code=None, city_code=None, active=None, limit=1, cursor=first.next_cursor)
    assert [s.id for s in first.items + rest.items] == [one.id, two.id] and rest.next_cursor is None
    capable = await repo.list_page(
        county_code=one.county_code, city_code=None, active=True, limit=10, cursor=None, capability=two.capabilities[0]
    )
    assert [s.id for s in capable.items] == [two.id]


async def test_the_open_case_counter_never_goes_below_zero(ctx: Context) -> None:
    station = await make_station(ctx, capacity=5)
    repo = StationsRepository(ctx.db)
    await repo.adjust_open_cases(station.id, 2)
    await repo.adjust_open_cases(station.id, -3)  # more closings than openings: refused
    assert (await repo.get(station.id)).open_cases == 2
    await repo.adjust_open_cases(station.id, -2)
    assert (await repo.get(station.id)).open_cases == 0
    assert (await repo.loads())[station.id] == 0
