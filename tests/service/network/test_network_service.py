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
