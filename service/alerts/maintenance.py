"""The station's maintenance list: devices reporting low battery or offline, until someone fixes them."""

from __future__ import annotations

import dataclasses

from service.alerts.access import require_staff, sees_station, staff_scope
from service.alerts.models import MaintenanceItem
from service.alerts.repository import MaintenanceRepository
from service.common.context import Context
from service.common.errors import ConflictError, NotFoundError
from service.common.models import Page, Principal

MAX_PAGE = 100


async def list_maintenance(
    *,
    ctx: Context,
    principal: Principal,
    station: str | None = None,
    status: str | None = "open",
    limit: int = 50,
    cursor: str | None = None,
) -> Page[MaintenanceItem]:
    """Maintenance items of the caller's station or division, newest first (open ones by default)."""
    scope = staff_scope(principal)
    if station:
        if scope.station_id not in (None, station):
            return Page(items=[], next_cursor=None)
        scope = dataclasses.replace(scope, station_id=station)
    limit = max(1, min(limit, MAX_PAGE))
    items = await MaintenanceRepository(ctx.db).page(
        scope, status=status or None, before=cursor, limit=limit + 1, now=ctx.now()
    )
    more = len(items) > limit
    items = items[:limit]
    return Page(items=items, next_cursor=items[-1].id if more and items else None)


async def close_maintenance_item(
    *, ctx: Context, principal: Principal, item_id: str, note: str | None = None
) -> MaintenanceItem:
    """Mark an item fixed (battery changed, device back online); the next report opens a new one."""
    require_staff(principal)
    repo = MaintenanceRepository(ctx.db)
    try:
        item = await repo.get(item_id)
    except NotFoundError:
        item = None
    if item is None or not sees_station(principal, station_id=item.station_id, township=item.township):
        raise NotFoundError("maintenance_item_not_found", f"There is no maintenance item {item_id!r}.")
    if not await repo.close(item_id, by=principal.subject, at=ctx.now(), note=note):
        raise ConflictError("maintenance_item_closed", "This item is already marked done.")
    return await repo.get(item_id)
