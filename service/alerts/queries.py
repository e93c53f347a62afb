"""Reading alerts: the list the caller may see, and one alert."""

from __future__ import annotations

import dataclasses

from service.alerts.access import county_list_scope, in_scope, require_vendor, staff_scope
from service.alerts.models import (
    REFUSED,
    Alert,
    AlertScope,
)
from service.alerts.repository import AlertsRepository
from service.common.context import Context
from service.common.errors import NotFoundError
from service.common.models import Page, Principal

MAX_PAGE = 100


# ---------------------------------------------------------------- reading


async def list_alerts(
    *,
    ctx: Context,
    principal: Principal,
    station: str | None = None,
    outcome: str | None = None,
    type: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Alert]:
    """Alerts newest first: a vendor's client sees its own (refused ones too), staff their station or division."""
    client_id: str | None = None
    if principal.is_client:
        require_vendor(principal)
        scope, client_id = AlertScope(), principal.subject
    else:
        scope = county_list_scope(principal)
        if station:
            if scope.station_id not in (None, station):
                return Page(items=[], next_cursor=None)
            scope = dataclasses.replace(scope, station_id=station)
    limit = max(1, min(limit, MAX_PAGE))
    items = await AlertsRepository(ctx.db).page(
        scope,
        client_id=client_id,
        outcome=outcome or None,
        type=type or None,
        before=cursor,
        limit=limit + 1,
        now=ctx.now(),
        hide_refused=not principal.is_client,
    )
    more = len(items) > limit
    items = items[:limit]
    return Page(items=items, next_cursor=items[-1].id if more and items else None)


async def get_alert(*, ctx: Context, principal: Principal, alert_id: str) -> Alert:
    """One alert, if the caller reported it or may see its station."""
    if principal.is_client:
        require_vendor(principal)
    else:
        scope = staff_scope(principal)
    try:
        alert: Alert | None = await AlertsRepository(ctx.db).get(alert_id)
    except NotFoundError:
        alert = None
    if alert is not None and principal.is_client:
        visible = alert.client_id == principal.subject
    else:
        visible = (
            alert is not None
            and alert.outcome != REFUSED
            and in_scope(scope, station_id=alert.station_id, township=alert.township)
        )
    if alert is None or not visible:
        raise NotFoundError("alert_not_found", f"There is no alert {alert_id!r}.")
    return alert
