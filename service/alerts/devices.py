"""The device register: SOS buttons, fall detectors, sensors and meters linked to people on the visit register."""

from __future__ import annotations

import dataclasses

from service.alerts.access import ALERTS_SCOPE, county_list_scope, require_staff, sees_station
from service.alerts.inputs import DeviceChanges, DeviceRegistration
from service.alerts.models import DEVICE_TYPES, Device
from service.alerts.repository import DevicesRepository
from service.common.context import Context
from service.common.errors import InvalidStateError, NotFoundError, ValidationFailedError
from service.common.inputs import given
from service.common.models import SYSTEM, Page, Principal
from service.common.paging import decode_newest_cursor, encode_newest_cursor
from service.identity import clients
from service.visits import elders

MAX_PAGE = 100


async def _check_vendor(ctx: Context, vendor_client_id: str) -> None:
    """The vendor must be an active integrator client allowed to report alerts."""
    try:
        client = await clients.get_client(ctx=ctx, principal=SYSTEM, client_id=vendor_client_id)
    except NotFoundError:
        client = None
    if client is None or not client.active or ALERTS_SCOPE not in client.scopes:
        raise ValidationFailedError(
            "unknown_vendor_client",
            "厂商接入账号不存在或无报警权限。"
            "The vendor must be an active integrator client with the alerts:write scope.",
            errors={"vendor_client_id": ["Not an active client with the alerts:write scope."]},
        )


def _not_found(device_id: str) -> NotFoundError:
    return NotFoundError("device_not_found", f"There is no device {device_id!r}.")


async def register_device(*, ctx: Context, principal: Principal, data: DeviceRegistration) -> Device:
    """Put a device on the register, linked to a person the caller may see (station staff and above)."""
    require_staff(principal)
    if data.type not in DEVICE_TYPES:
        raise ValidationFailedError(
            "unknown_device_type", "Unknown device type.", errors={"type": [f"Use one of {', '.join(DEVICE_TYPES)}."]}
        )
    elder = await elders.load_visible(ctx=ctx, principal=principal, elder_id=data.elder_id)
    if not elder.active:
        raise InvalidStateError("elder_not_active", "This person is no longer on the active register.")
    await _check_vendor(ctx, data.vendor_client_id)
    now = ctx.now()
    return await DevicesRepository(ctx.db).insert(
        {
            "elder_id": elder.id,
            "station_id": elder.station_id,
            "township": elder.township,
            "county_code": elder.county_code,
            "type": data.type,
            "vendor_client_id": data.vendor_client_id,
            "vendor_device_id": data.vendor_device_id,
            "location_note": data.location_note,
            "installed_by": data.installed_by,
            "installed_at": data.installed_at,
            "active": True,
            "created_at": now,
            "created_by": principal.subject,
        }
    )


async def get_device(*, ctx: Context, principal: Principal, device_id: str) -> Device:
    """One device, if the caller may see its station (else 404, so other stations' devices stay unknown)."""
    require_staff(principal)
    try:
        device = await DevicesRepository(ctx.db).get(device_id)
    except NotFoundError:
        raise _not_found(device_id) from None
    if not sees_station(principal, station_id=device.station_id, township=device.township):
        raise _not_found(device_id)
    return device


async def update_device(*, ctx: Context, principal: Principal, device_id: str, changes: DeviceChanges) -> Device:
    """Change where a device is installed, by whom, or take it off (active: false)."""
    await get_device(ctx=ctx, principal=principal, device_id=device_id)
    allowed = given(changes)
    if not allowed:
        return await DevicesRepository(ctx.db).get(device_id)
    return await DevicesRepository(ctx.db).update(device_id, allowed)


async def list_devices(
    *,
    ctx: Context,
    principal: Principal,
    station: str | None = None,
    elder_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Device]:
    """Devices the caller may see, by station or person, newest registered first."""
    scope = county_list_scope(principal)
    if station:
        if scope.station_id not in (None, station):
            return Page(items=[], next_cursor=None)  # another station's devices are not the caller's to list
        scope = dataclasses.replace(scope, station_id=station)
    limit = max(1, min(limit, MAX_PAGE))
    before = decode_newest_cursor(cursor)
    items = await DevicesRepository(ctx.db).page(
        scope, elder_id=elder_id or None, before=before, limit=limit + 1, now=ctx.now()
    )
    more = len(items) > limit
    items = items[:limit]
    return Page(items=items, next_cursor=encode_newest_cursor(items[-1].id) if more and items else None)
