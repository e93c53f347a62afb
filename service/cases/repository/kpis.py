"""The aggregation behind the cases' KPIs: counts, times and ratings per station, county or city."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.cases.models import CaseScope
from service.cases.repository.listing import all_of, division_range, scope_filter

GROUP_KEYS = {"station": "$station_id", "county": "$county_code", "city": {"$substrCP": ["$county_code", 0, 4]}}
NO_FACETS: dict[str, list[dict[str, Any]]] = {"totals": [], "by_status": [], "by_scenario": []}


def kpi_pipeline(
    scope: CaseScope,
    *,
    division: str | None,
    date_from: datetime | None,
    date_to: datetime | None,
    group_by: str | None,
) -> list[dict[str, Any]]:
    """Pure: the aggregation over the cases in ``scope`` (and ``division``, created in [from, to)), grouped
    by station, county or city (``group_by``; None: one group), as three facets: ``totals`` per group,
    and counts ``by_status`` and ``by_scenario`` keyed {k: group, v: value}."""
    conditions: list[dict[str, Any]] = [scope_filter(scope)]
    if division:
        conditions.append({"division": division_range(division)})
    if date_from:
        conditions.append({"created_at": {"$gte": date_from}})
    if date_to:
        conditions.append({"created_at": {"$lt": date_to}})
    match = all_of(conditions)
    key: Any = GROUP_KEYS.get(group_by or "")
    pipeline: list[dict[str, Any]] = [
        {"$match": match},
        {
            "$project": {
                "k": key if key is not None else "all",
                "status": 1,
                "scenario": "$service.scenario",
                "rating": 1,
                "signed": {"$cond": [{"$ifNull": ["$accepted_at", False]}, 1, 0]},
                "signed_on_time": {
                    "$cond": [{"$and": [{"$ifNull": ["$accepted_at", False]}, {"$ne": ["$signed_late", True]}]}, 1, 0]
                },
                "resolved": {"$cond": [{"$ifNull": ["$resolved_at", False]}, 1, 0]},
                "resolved_on_time": {
                    "$cond": [{"$and": [{"$ifNull": ["$resolved_at", False]}, {"$ne": ["$resolved_late", True]}]}, 1, 0]
                },
                "is_closed_or_resolved": {"$cond": [{"$in": ["$status", ["resolved", "closed"]]}, 1, 0]},
                "sign_ms": {
                    "$cond": [
                        {"$ifNull": ["$accepted_at", False]},
                        {"$subtract": ["$accepted_at", "$created_at"]},
                        None,
                    ]
                },
                "resolve_ms": {
                    "$cond": [
                        {"$ifNull": ["$resolved_at", False]},
                        {"$subtract": ["$resolved_at", "$created_at"]},
                        None,
                    ]
                },
                "overdue": {"$cond": [{"$or": ["$overdue.sign", "$overdue.resolve"]}, 1, 0]},
                "rated": {"$cond": [{"$ifNull": ["$rating", False]}, 1, 0]},
                "satisfied": {"$cond": [{"$gte": [{"$ifNull": ["$rating", 0]}, 4]}, 1, 0]},
            }
        },
    ]
    pipeline.append(
        {
            "$facet": {
                "totals": [
                    {
                        "$group": {
                            "_id": "$k",
                            "total": {"$sum": 1},
                            "signed": {"$sum": "$signed"},
                            "signed_on_time": {"$sum": "$signed_on_time"},
                            "resolved": {"$sum": "$resolved"},
                            "resolved_on_time": {"$sum": "$resolved_on_time"},
                            "done": {"$sum": "$is_closed_or_resolved"},
                            "overdue": {"$sum": "$overdue"},
                            "rated": {"$sum": "$rated"},
                            "satisfied": {"$sum": "$satisfied"},
                            "sign_ms": {"$push": "$sign_ms"},
                            "resolve_ms": {"$push": "$resolve_ms"},
                        }
                    }
                ],
                "by_status": [{"$group": {"_id": {"k": "$k", "v": "$status"}, "n": {"$sum": 1}}}],
                "by_scenario": [{"$group": {"_id": {"k": "$k", "v": "$scenario"}, "n": {"$sum": 1}}}],
            }
        }
    )
    return pipeline
