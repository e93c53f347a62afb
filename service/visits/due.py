"""The due list (待探访): who still needs a visit in the periods in progress, or due in a given period."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.audit import service as audit
from service.common.context import Context
from service.common.errors import NotFoundError, ValidationFailedError
from service.common.models import Page, Principal
from service.common.paging import decode_cursor, encode_cursor
from service.stations import service as stations
from service.visits.elders import can_see, scope_query
from service.visits.periods import Period, parse_period
from service.visits.repository.elders import EldersRepository
from service.visits.repository.visits import VisitSchedulesRepository


def _cursor(doc: dict[str, Any]) -> str:
    return encode_cursor(doc["period_end"], doc["period_start"], doc["_id"])


def _after(cursor: str) -> dict[str, Any]:
    end, start, sid = decode_cursor(cursor, datetime, datetime, str)
    return {
        "$or": [
            {"period_end": {"$gt": end}},
            {"period_end": end, "period_start": {"$gt": start}},
            {"period_end": end, "period_start": start, "_id": {"$gt": sid}},
        ]
    }


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _from_cursor(query: dict[str, Any], cursor: str) -> dict[str, Any]:
    """``query`` limited to what follows the cursor, as one plain filter whose ``period_end`` range
    starts at the cursor's: the index range begins there on every server (the embedded one scans
    the whole collection for a top-level ``$and``)."""
    after = _after(cursor)
    end = after["$or"][1]["period_end"]
    bounds = dict(query.get("period_end") or {})
    low = bounds.get("$gte", bounds.get("$gt"))
    if low is None or _utc(end) >= _utc(low):
        bounds.pop("$gt", None)
        bounds["$gte"] = end
    return {**query, "period_end": bounds, **after}


def _period_scope(period: Period) -> dict[str, Any]:
    """Schedules whose due date (the end of their own period) falls within ``period``."""
    return {"period_end": {"$gt": period.start, "$lte": period.end}}


async def _station_scope(ctx: Context, principal: Principal, station: str | None) -> dict[str, Any]:
    if station is None:
        return scope_query(principal)
    try:
        st = await stations.get_station(ctx=ctx, station_id=station)
    except NotFoundError:
        raise NotFoundError("station_not_found", f"There is no station {station!r}.") from None
    if not can_see(principal, station_id=st.id, township=st.code):
        raise NotFoundError("station_not_found", f"There is no station {station!r}.")
    return {"station_id": st.id}


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
    query = await _station_scope(ctx, principal, station)
    now = ctx.now()
    if period:
        query.update(_period_scope(parse(period)))
    else:
        query.update({"period_start": {"$lte": now}, "period_end": {"$gt": now}})
    if cursor:
        query = _from_cursor(query, cursor)
    docs = await VisitSchedulesRepository(ctx.db).due(query, limit + 1)
    page, more = docs[:limit], len(docs) > limit
    elders = await EldersRepository(ctx.db).get_many([d["elder_id"] for d in page])
    await audit.record_reads(
        ctx=ctx,
        principal=principal,
        action="visit.due_list",
        target_kind="elder",
        target_ids=[d["elder_id"] for d in page],
        fields=["name", "phone", "address"],
        keyed_as="elder_id",
    )
    items = []
    for d in page:
        e = elders.get(d["elder_id"])
        items.append(
            {
                "elder_id": d["elder_id"],
                "name": e.name if e else None,
                "phone": e.phone if e else None,
                "address": e.address if e else None,
                "visitor_id": e.visitor_id if e else None,
                "last_visited_at": e.last_visited_at if e else None,
                "station_id": d["station_id"],
                "township": d["township"],
                "tier": d["tier"],
                "period": d["period"],
                "due_by": d["period_end"],
                "overdue": d["period_end"] <= now,
            }
        )
    return Page(items=items, next_cursor=_cursor(page[-1]) if more and page else None)


def parse(period: str) -> Period:
    try:
        return parse_period(period)
    except ValueError as exc:
        raise ValidationFailedError("invalid_period", str(exc), {"period": [str(exc)]}) from None
