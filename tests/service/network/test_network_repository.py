"""Station construction records: saved only over the revision the writer read; verifications append."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from service.common.context import Context
from service.common.errors import ConflictError
from service.network.models import NetworkRecord
from service.network.repository import NetworkRepository
from tests.factories import keep_network_record, make_staff, make_station, verify_network_record


async def test_a_save_over_a_stale_revision_conflicts_and_changes_nothing(ctx: Context) -> None:
    station = await make_station(ctx)
    head = await make_staff(ctx, role="station_head", station_id=station.id)
    await keep_network_record(ctx, station, head, status="planned", dates={"planned": date(2024, 1, 1)})
    await keep_network_record(ctx, station, head, site={"address": "新安路 8 号"})
    repo = NetworkRepository(ctx.db)
    stored = await repo.get(station.id)
    assert isinstance(stored, NetworkRecord) and stored.revision == 2 and stored.status == "planned"
    assert stored.site.address == "新安路 8 号"
    for stale in (1, 0):  # a writer who read revision 1, or who thought nothing was recorded
        with pytest.raises(ConflictError) as exc:
            await repo.save(dataclasses.replace(stored, status="operating", revision=3), expected_revision=stale)
        assert exc.value.code == "network_record_changed"
    assert await repo.get(station.id) == stored
    saved = await repo.save(dataclasses.replace(stored, status="operating", revision=3), expected_revision=2)
    assert await repo.get(station.id) == saved
    other = await make_station(ctx, code="341002002", name="老街街道社工站", point=(118.33, 29.71))
    assert await repo.get(other.id) is None
    assert list(await repo.get_many([station.id, other.id])) == [station.id]


async def test_an_import_writes_every_record_or_none(ctx: Context) -> None:
    one = await make_station(ctx)
    two = await make_station(ctx, code="341002002", name="老街街道社工站", point=(118.33, 29.71))
    head = await make_staff(ctx, role="station_head", station_id=one.id)
    await keep_network_record(ctx, one, head, status="planned", dates={"planned": date(2024, 1, 1)})
    repo = NetworkRepository(ctx.db)
    first = await repo.get(one.id)
    assert first is not None
    fresh = NetworkRecord(station_id=two.id, status="planned", revision=1)
    with pytest.raises(ConflictError) as exc:  # the first station's record moved on since the import read it
        await repo.save_all([(fresh, 0), (dataclasses.replace(first, status="operating", revision=2), 0)])
    assert exc.value.code == "import_conflict"
    assert await repo.get(two.id) is None and await repo.get(one.id) == first
    await repo.save_all([(fresh, 0), (dataclasses.replace(first, status="operating", revision=2), 1)])
    assert {k: v.status for k, v in (await repo.get_many([one.id, two.id])).items()} == {
        one.id: "operating",
        two.id: "planned",
    }


async def test_verifications_are_listed_newest_first_and_the_latest_per_station(ctx: Context) -> None:
    one = await make_station(ctx)
    two = await make_station(ctx, code="341002002", name="老街街道社工站", point=(118.33, 29.71))
    supervisor = await make_staff(ctx, role="supervisor")
    for station in (one, two):
        head = await make_staff(ctx, role="station_head", station_id=station.id)
        await keep_network_record(ctx, station, head, status="planned", dates={"planned": date(2024, 1, 1)})
    first = await verify_network_record(ctx, one, supervisor, outcome="returned")
    second = await verify_network_record(ctx, one, supervisor, outcome="returned")
    repo = NetworkRepository(ctx.db)
    assert [v.id for v in await repo.verifications_of(one.id)] == [second.id, first.id]
    assert [v.id for v in await repo.verifications_of(one.id, limit=1)] == [second.id]
    assert await repo.latest_verifications([one.id, two.id]) == {one.id: second}
