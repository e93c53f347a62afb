"""The visit rate's aggregations over the due visits (collection ``visit_schedules``).

The pipelines are built here from typed queries and return typed counts; the rates themselves
(visited / due) are the visits service's arithmetic. ``rate_pipeline`` and ``weekly_pipeline``
are public so the benchmark can issue the same aggregations directly through the driver.
"""

from __future__ import annotations

import re
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from service.visits.models import (
    MachineCalls,
    MissedVisit,
    RateFigures,
    RateQuery,
    RateScope,
    TierCount,
    TierWindow,
    WeeklyQuery,
)
from service.visits.repository.visits import SCHEDULES

_COUNTS = {
    "due": {"$sum": 1},
    "visited": {"$sum": {"$cond": ["$counted", 1, 0]}},
    "visited_human": {"$sum": {"$cond": ["$human", 1, 0]}},
    "visited_with_machine": {"$sum": {"$cond": ["$any_contact", 1, 0]}},
}


def scope_match(scope: RateScope) -> dict[str, Any]:
    """The schedules of ``scope`` (a new dict, the caller's to extend)."""
    query: dict[str, Any] = {}
    if scope.station_id is not None:
        query["station_id"] = scope.station_id
    if scope.township_prefix:
        query["township"] = {"$regex": f"^{re.escape(scope.township_prefix)}"}
    return query


def window_match(w: TierWindow) -> dict[str, Any]:
    """The schedules of one tier's window."""
    if w.period is not None:
        return {"kind": w.kind, "period": w.period}
    return {"kind": w.kind, "period_end": {"$gt": w.ends_after, "$lte": w.ends_by}}


def machine_counts_expr(calls: MachineCalls) -> Any:
    """The aggregation expression "a machine call counts in this schedule's county"."""
    if calls.by_default:
        return {"$not": [{"$in": ["$county_code", list(calls.exceptions)]}]}
    return {"$in": ["$county_code", list(calls.exceptions)]}


def counted_expr(calls: MachineCalls) -> Any:
    """Visited by a person, or reached by a machine call where the county counts those."""
    machine = {"$and": [{"$eq": ["$machine_reached", True]}, machine_counts_expr(calls)]}
    return {"$or": [{"$eq": ["$visited", True]}, machine]}


def _with_counted(calls: MachineCalls) -> dict[str, Any]:
    return {
        "$addFields": {
            "counted": counted_expr(calls),
            "human": {"$eq": ["$visited", True]},
            "any_contact": {"$or": [{"$eq": ["$visited", True]}, {"$eq": ["$machine_reached", True]}]},
        }
    }


def rate_pipeline(q: RateQuery) -> list[dict[str, Any]]:
    """The aggregation behind the visit rate: per tier (each on its own window), by method, by group, misses.

    ``visited`` follows each county's setting for machine calls; ``visited_human`` never counts
    them and ``visited_with_machine`` always does, so the figure is shown both ways.
    """
    return [
        {"$match": {**scope_match(q.scope), "withdrawn": None, "$or": [window_match(w) for w in q.windows]}},
        _with_counted(q.machine_calls),
        {
            "$facet": {
                "by_tier": [{"$group": {"_id": "$tier", **_COUNTS}}],
                "by_method": [
                    {"$match": {"tier": q.method_tier, "counted": True}},
                    {
                        "$group": {
                            "_id": {"$cond": ["$human", "$method", q.machine_method]},
                            "visited": {"$sum": 1},
                        }
                    },
                ],
                "groups": [
                    {"$group": {"_id": {"key": f"${q.group_field}", "tier": "$tier"}, **_COUNTS}},
                    {"$sort": {"_id.key": 1}},
                ],
                "misses": [
                    {"$match": {"counted": False}},
                    {"$sort": {"period_end": 1, "elder_id": 1}},
                    {"$limit": q.max_misses},
                    {
                        "$project": {
                            "elder_id": 1,
                            "station_id": 1,
                            "tier": 1,
                            "period": 1,
                            "period_end": 1,
                            "name_masked": 1,
                        }
                    },
                ],
            }
        },
    ]


def weekly_pipeline(q: WeeklyQuery) -> list[dict[str, Any]]:
    """The aggregation behind the weekly series: one tier's due and visited per period."""
    return [
        {
            "$match": {
                **scope_match(q.scope),
                "kind": q.kind,
                "tier": q.tier,
                "withdrawn": None,
                "period_end": {"$gt": q.ends_after, "$lte": q.ends_by},
            }
        },
        _with_counted(q.machine_calls),
        {"$group": {"_id": "$period", "due": {"$sum": 1}, "visited": {"$sum": {"$cond": ["$counted", 1, 0]}}}},
        {"$sort": {"_id": 1}},
    ]


def _count(row: dict[str, Any]) -> TierCount:
    return TierCount(
        due=int(row.get("due", 0)),
        visited=int(row.get("visited", 0)),
        visited_human=int(row.get("visited_human", 0)),
        visited_with_machine=int(row.get("visited_with_machine", 0)),
    )


def _missed(d: dict[str, Any]) -> MissedVisit:
    return MissedVisit(
        elder_id=d["elder_id"],
        station_id=d["station_id"],
        tier=d["tier"],
        period=d["period"],
        period_end=d["period_end"],
        name_masked=d.get("name_masked"),
    )


class VisitRatesRepository:
    """Counts of due and visited schedules, read by the visit rate."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.col = db[SCHEDULES]

    async def rate_figures(self, q: RateQuery) -> RateFigures:
        """Due and visited per tier, per method, per group key and tier, and the first misses."""
        [facets] = await (await self.col.aggregate(rate_pipeline(q))).to_list()
        groups: dict[str, dict[str, TierCount]] = {}
        for g in facets["groups"]:
            groups.setdefault(g["_id"]["key"], {})[g["_id"]["tier"]] = _count(g)
        return RateFigures(
            by_tier={r["_id"]: _count(r) for r in facets["by_tier"]},
            by_method={r["_id"]: int(r["visited"]) for r in facets["by_method"]},
            groups=groups,
            misses=tuple(_missed(m) for m in facets["misses"]),
        )

    async def weekly_counts(self, q: WeeklyQuery) -> dict[str, TierCount]:
        """Due and visited (as each county counts machine calls) per period id."""
        return {r["_id"]: _count(r) async for r in await self.col.aggregate(weekly_pipeline(q))}
