"""The due list (待探访): who still needs a visit in the periods in progress, or due in a given period."""

from __future__ import annotations

from typing import Any

from service.audit import service as audit
from service.common.context import Context
from service.common.errors import NotFoundError, ValidationFailedError
from service.common.models import Page, Principal
from service.stations import service as stations
from service.visits.elders import can_see, register_scope
from service.visits.models import DueWindow, RegisterScope
from service.visits.periods import Period, parse_period
from service.visits.repository.elders import EldersRepository
from service.visits.repository.visits import VisitSchedulesRepository


async def _station_scope(ctx: Context, principal: Principal, station: str | None) -> RegisterScope:
    if station is None:
        return register_scope(principal)
    try:
        st = await stations.get_station(ctx=ctx, station_id=station)
    except NotFoundError:
        raise NotFoundError("station_not_found", f"There is no station {station!r}.") from None
    if not can_see(principal, station_id=st.id, township=st.code):
        raise NotFoundError("station_not_found", f"There is no station {station!r}.")
    return RegisterScope(station_id=st.id)


async def list_due(
    *,
    ctx: Context,
    principal: Principal,
    station: str | None = None,
    period: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[dict[str, Any]]:
    """Who still needs a visit: unvisited schedules of periods in progress (or due in ``period``), soonest first."""
    scope = await _station_scope(ctx, principal, station)
    now = ctx.now()
    if period:
        # Schedules whose due date (the end of their own period) falls within the period asked for.
        asked = parse(period)
        window = DueWindow.due_within(asked.start, asked.end)
    else:
        window = DueWindow.in_progress(now)
    due = await VisitSchedulesRepository(ctx.db).due_page(scope, window, limit=limit, cursor=cursor)
    page = due.items
    elders = await EldersRepository(ctx.db).get_many([d.elder_id for d in page])
    await audit.record_reads(
        ctx=ctx,
        principal=principal,
        action="visit.due_list",
        target_kind="elder",
        target_ids=[d.elder_id for d in page],
        fields=["name", "phone", "address"],
        keyed_as="elder_id",
    )
    items = []
    for d in page:
        e = elders.get(d.elder_id)
        items.append(
            {
                "elder_id": d.elder_id,
                "name": e.name if e else None,
                "phone": e.phone if e else None,
                "address": e.address if e else None,
                "visitor_id": e.visitor_id if e else None,
                "last_visited_at": e.last_visited_at if e else None,
                "station_id": d.station_id,
                "township": d.township,
                "tier": d.tier,
                "period": d.period,
                "due_by": d.period_end,
                "overdue": d.period_end <= now,
            }
        )
    return Page(items=items, next_cursor=due.next_cursor)


def parse(period: str) -> Period:
    try:
        return parse_period(period)
    except ValueError as exc:
        raise ValidationFailedError("invalid_period", str(exc), {"period": [str(exc)]}) from None
