"""Devices and alerts: one device per vendor id, one open incident per device, one alert per vendor alert id.

Devices are registered and alerts received through the alerts service; the repositories are then
read and driven directly.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.alerts.intake import receive_alert
from service.alerts.models import AlertScope
from service.alerts.repository import AlertsRepository, DevicesRepository, MaintenanceRepository, RotaRepository
from service.common.context import Context
from service.common.errors import ConflictError, NotFoundError
from service.common.models import utcnow
from tests.factories import (
    alert_body,
    make_device,
    make_elder,
    make_rota_entry,
    make_staff,
    make_station,
    make_vendor,
    principal_of_client,
)


async def test_a_vendor_device_id_is_registered_once_per_vendor(ctx: Context) -> None:
    await make_station(ctx)
    elder = await make_elder(ctx)
    vendor, other = await make_vendor(ctx), await make_vendor(ctx)
    device = await make_device(ctx, elder, vendor, vendor_device_id="SOS-1")
    with pytest.raises(ConflictError) as exc:
        await make_device(ctx, elder, vendor, vendor_device_id="SOS-1")
    assert exc.value.code == "device_already_registered"
    theirs = await make_device(ctx, elder, other, vendor_device_id="SOS-1")  # another vendor's numbering
    repo = DevicesRepository(ctx.db)
    found = await repo.find_by_vendor(vendor.client.client_id, "SOS-1")
    assert found is not None and (found.id, found.elder_id) == (device.id, elder.id)
    assert await repo.find_by_vendor(vendor.client.client_id, "SOS-2") is None
    assert [d.id for d in await repo.page(AlertScope(), before=None, limit=10, now=ctx.now())] == [theirs.id, device.id]
    assert [d.id for d in await repo.page(AlertScope(), before=theirs.id, limit=10, now=ctx.now())] == [device.id]
    for call in (repo.get(elder.id), repo.update(elder.id, {"location_note": "x"})):
        with pytest.raises(NotFoundError) as nf:
            await call
        assert nf.value.code == "device_not_found"


async def test_a_device_holds_one_open_incident_and_only_its_alert_closes_it(ctx: Context) -> None:
    await make_station(ctx)
    elder = await make_elder(ctx)
    vendor = await make_vendor(ctx)
    device = await make_device(ctx, elder, vendor)
    first, _ = await receive_alert(ctx=ctx, principal=principal_of_client(vendor), data=alert_body(device))
    devices = DevicesRepository(ctx.db)
    held = (await devices.get(device.id)).open_incident
    assert held is not None and held.alert_id == first.id
    other = await make_device(ctx, elder, vendor)
    second, _ = await receive_alert(ctx=ctx, principal=principal_of_client(vendor), data=alert_body(other))
    assert not await devices.claim_incident(device.id, second.id, first.received_at)  # one open at a time
    assert not await devices.release_incident(device.id, second.id)  # not its incident
    assert await devices.release_incident(device.id, first.id)
    assert not await devices.release_incident(device.id, first.id)
    assert await devices.claim_incident(device.id, second.id, first.received_at)
    assert (await devices.get(device.id)).open_incident.alert_id == second.id  # type: ignore[union-attr]


async def test_an_alert_is_stored_once_per_vendor_alert_id(ctx: Context) -> None:
    await make_station(ctx)
    elder = await make_elder(ctx)
    vendor = await make_vendor(ctx)
    device = await make_device(ctx, elder, vendor)
    body = alert_body(device)
    alert, _ = await receive_alert(ctx=ctx, principal=principal_of_client(vendor), data=body)
    again, _ = await receive_alert(ctx=ctx, principal=principal_of_client(vendor), data=body)  # a vendor retry
    repo = AlertsRepository(ctx.db)
    assert again.id == alert.id
    assert (await repo.find_by_vendor(vendor.client.client_id, body["alert_id"])).id == alert.id  # type: ignore[union-attr]
    assert await repo.find_by_vendor(vendor.client.client_id, "ALM-none") is None
    assert await repo.col.count_documents({"client_id": vendor.client.client_id}) == 1
    with pytest.raises(NotFoundError) as nf:
        await repo.get(device.id)
    assert nf.value.code == "alert_not_found"


async def test_the_rota_covers_a_moment_by_half_open_shifts(ctx: Context) -> None:
    station = await make_station(ctx)
    early = await make_staff(ctx, station_id=station.id, phone="13800000001")
    late = await make_staff(ctx, station_id=station.id, phone="13800000002")
    start = utcnow().replace(microsecond=0) + timedelta(days=1)
    day = await make_rota_entry(ctx, early, starts_at=start, hours=2)
    night = await make_rota_entry(ctx, late, starts_at=start + timedelta(hours=1), hours=12)
    repo = RotaRepository(ctx.db)
    assert [e.id for e in await repo.covering(station.id, start - timedelta(seconds=1))] == []
    assert [e.id for e in await repo.covering(station.id, start)] == [day.id]
    assert {e.id for e in await repo.covering(station.id, start + timedelta(minutes=90))} == {day.id, night.id}
    assert [e.id for e in await repo.covering(station.id, start + timedelta(hours=2))] == [night.id]  # ends_at is out
    assert [e.id for e in await repo.ending_after(station.id, start, 10)] == [day.id, night.id]
    assert [e.id for e in await repo.ending_after(station.id, start + timedelta(hours=2), 10)] == [night.id]
    await repo.delete(day.id)
    with pytest.raises(NotFoundError) as nf:
        await repo.get(day.id)
    assert nf.value.code == "rota_entry_not_found"


async def test_repeated_reports_count_on_one_open_item_until_it_is_closed(ctx: Context) -> None:
    await make_station(ctx)
    elder = await make_elder(ctx)
    vendor = await make_vendor(ctx)
    device = await make_device(ctx, elder, vendor)
    client = principal_of_client(vendor)
    reports = [
        (await receive_alert(ctx=ctx, principal=client, data=alert_body(device, type="low_battery")))[0]
        for _ in range(3)
    ]
    assert len({a.maintenance_id for a in reports}) == 1
    repo = MaintenanceRepository(ctx.db)
    item_id = reports[0].maintenance_id or ""
    closer = await make_staff(ctx)
    item = await repo.get(item_id)
    assert (item.status, item.count) == ("open", 3)
    assert await repo.close(item_id, by=closer.id, at=reports[0].received_at, note=None)
    assert not await repo.close(item_id, by=closer.id, at=reports[0].received_at, note=None)
    later, _ = await receive_alert(ctx=ctx, principal=client, data=alert_body(device, type="low_battery"))
    assert later.maintenance_id not in (None, item_id)  # a report after closing opens a new item
    assert [i.id for i in await repo.page(AlertScope(), device_id=device.id, before=None, limit=10, now=ctx.now())] == [
        later.maintenance_id,
        item_id,
    ]
    with pytest.raises(NotFoundError) as nf:
        await repo.get(device.id)
    assert nf.value.code == "maintenance_item_not_found"
