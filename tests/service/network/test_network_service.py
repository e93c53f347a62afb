"""The station network's service functions over the real stores."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from service.common.errors import ConflictError
from service.network import service as network
from tests.factories import keep_network_record, make_staff, make_station, principal_of


@pytest.mark.parametrize("existing", [False, True])
async def test_changes_at_once_never_overwrite_each_other_unseen(ctx, existing):
    station = await make_station(ctx)
    head = await make_staff(ctx, role="station_head", station_id=station.id)
    base = 0
    if existing:
        base = (
            await keep_network_record(ctx, station, head, status="planned", dates={"planned": date(2024, 1, 1)})
        ).record.revision

    async def change(day: int):
        return await network.update_station_network(
            ctx=ctx,
            principal=principal_of(head),
            station_id=station.id,
            changes={"status": "built", "dates": {"built": date(2024, 2, day)}},
        )

    results = await asyncio.gather(*(change(day) for day in range(1, 6)), return_exceptions=True)
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, ConflictError) and e.code == "network_record_changed" for e in lost), lost
    # Every success wrote its own revision on top of the one it read: none was lost.
    assert sorted(w.record.revision for w in won) == list(range(base + 1, base + 1 + len(won)))
    stored = await network.get_station_network(ctx=ctx, principal=principal_of(head), station_id=station.id)
    assert stored.record == max(won, key=lambda w: w.record.revision).record


async def test_the_network_table_pages_by_code_reading_a_page_of_stations_at_a_time(ctx):
    made = []
    for n in range(1, 8):
        station = await make_station(ctx, code=f"34100200{n}", name=f"测试{n}社工站", point=(118.30 + n / 100, 29.72))
        if n % 3 == 0:
            head = await make_staff(ctx, role="station_head", station_id=station.id)
            await keep_network_record(ctx, station, head, status="planned", dates={"planned": date(2024, 1, 1)})
        made.append(station)
    await make_station(ctx, code="341003100", name="甘棠镇社工站", point=(118.14, 30.27))  # another county
    admin = principal_of(await make_staff(ctx, role="admin"))
    for status, codes in (
        (None, [s.code for s in made]),
        ("planned", [s.code for i, s in enumerate(made, 1) if i % 3 == 0]),
        ("unreported", [s.code for i, s in enumerate(made, 1) if i % 3]),
    ):
        for limit in (1, 2, 3, 50):
            pages, cursor = [], None
            while True:
                page = await network.list_station_network(
                    ctx=ctx, principal=admin, division="341002", status=status, limit=limit, cursor=cursor
                )
                pages.append([n.station.code for n in page.items])
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert pages == [codes[i : i + limit] for i in range(0, len(codes), limit)], (status, limit)
