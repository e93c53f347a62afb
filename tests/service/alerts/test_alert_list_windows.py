"""The alert board, the maintenance list and the device register, read newest first in windows of time
on the id, page for page hold what the items made over years hold, newest first."""

from __future__ import annotations

from typing import Any

import pytest

from service.alerts import devices
from service.alerts.inputs import DeviceChanges
from service.alerts.intake import receive_alert
from service.alerts.models import AlertScope
from service.alerts.repository import AlertsRepository, DevicesRepository, MaintenanceRepository
from service.common.context import Context
from service.common.errors import DomainError
from service.common.inputs import from_given
from service.common.models import SYSTEM
from tests.factories import alert_body, make_device, make_elder, make_station, make_vendor, principal_of_client
from tests.helpers_paging import LIMITS, in_pages, made_over_time, read_pages

REFUSED_AT = 4  # the device of this one is taken off the register before its alert comes


async def test_alerts_maintenance_and_devices_page_newest_first_across_windows(ctx: Context) -> None:
    station = await make_station(ctx)
    elder = await make_elder(ctx)
    vendor = await make_vendor(ctx)
    client_id = vendor.client.client_id

    async def make(i: int) -> tuple[str, str, str | None]:
        device = await make_device(ctx, elder, vendor)
        body = alert_body(device, type="low_battery", alert_id=f"LOW-{i}", occurred_at=ctx.now().isoformat())
        if i == REFUSED_AT:
            await devices.update_device(
                ctx=ctx, principal=SYSTEM, device_id=device.id, changes=from_given(DeviceChanges, {"active": False})
            )
            with pytest.raises(DomainError):
                await receive_alert(ctx=ctx, principal=principal_of_client(vendor), data=body)
            refused = await AlertsRepository(ctx.db).find_by_vendor(client_id, body["alert_id"])
            assert refused is not None and refused.station_id == station.id
            return device.id, refused.id, None
        alert, _ = await receive_alert(ctx=ctx, principal=principal_of_client(vendor), data=body)
        return device.id, alert.id, alert.maintenance_id

    made = list(reversed(await made_over_time(ctx, make)))
    every_alert = [a for _, a, _ in made]
    listed = [a for i, (_, a, _) in enumerate(made) if i != len(made) - 1 - REFUSED_AT]
    items = [m for _, _, m in made if m is not None]
    assert len(set(items)) == len(items) == len(made) - 1

    alerts = AlertsRepository(ctx.db)
    maintenance = MaintenanceRepository(ctx.db)
    register = DevicesRepository(ctx.db)

    def reader(page: Any, limit: int) -> Any:
        async def read(cursor: str | None) -> tuple[list[str], str | None]:
            found = await page(cursor, limit + 1)
            ids = [x.id for x in found[:limit]]
            return ids, (ids[-1] if len(found) > limit else None)

        return read

    for limit in LIMITS:
        vendor_view = reader(
            lambda c, n: alerts.page(AlertScope(), client_id=client_id, before=c, limit=n, now=ctx.now()), limit
        )
        assert await read_pages(vendor_view) == in_pages(every_alert, limit), limit
        staff_view = reader(
            lambda c, n: alerts.page(
                AlertScope(station_id=station.id), before=c, limit=n, now=ctx.now(), hide_refused=True
            ),
            limit,
        )
        assert await read_pages(staff_view) == in_pages(listed, limit), limit
        open_items = reader(
            lambda c, n: maintenance.page(
                AlertScope(station_id=station.id), status="open", before=c, limit=n, now=ctx.now()
            ),
            limit,
        )
        assert await read_pages(open_items) == in_pages(items, limit), limit
        station_devices = reader(
            lambda c, n: register.page(AlertScope(station_id=station.id), before=c, limit=n, now=ctx.now()), limit
        )
        assert await read_pages(station_devices) == in_pages([d for d, _, _ in made], limit), limit
        county_devices = reader(
            lambda c, n: register.page(AlertScope(county_code=station.code[:6]), before=c, limit=n, now=ctx.now()),
            limit,
        )
        assert await read_pages(county_devices) == in_pages([d for d, _, _ in made], limit), limit
        county_view = reader(
            lambda c, n: alerts.page(
                AlertScope(county_code=station.code[:6]), before=c, limit=n, now=ctx.now(), hide_refused=True
            ),
            limit,
        )
        assert await read_pages(county_view) == in_pages(listed, limit), limit
        # A filter no index serves with the id range is read in one query, to the same pages.
        everything = reader(lambda c, n: register.page(AlertScope(), before=c, limit=n, now=ctx.now()), limit)
        assert await read_pages(everything) == in_pages([d for d, _, _ in made], limit), limit
