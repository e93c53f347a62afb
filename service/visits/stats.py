"""Visit rates: how many elders due in a period were visited, per tier, station, county or city, and weekly series."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from config.county_rules import CountyRules, load_county_rules
from service.common.context import Context
from service.common.errors import (
    PermissionDeniedError,
    ValidationFailedError,
)
from service.common.models import Principal
from service.stations import service as stations
from service.visits.due import parse
from service.visits.periods import TIER_KIND, TIER_NAMES, TIERS, Period, period_of
from service.visits.records import HUMAN_METHODS, MACHINE_METHOD, MAX_MISSES, METHOD_NAMES, METHODS
from service.visits.repository.elders import EldersRepository
from service.visits.repository.visits import VisitSchedulesRepository

# What the plan's weekly figure counts, stated beside it.
PLAN_TIER = "high"


PLAN_NAME = "周探访率 weekly visit rate"


COUNTING_RULE = (
    "本周（周一至周日，北京时间）内至少一次联系到本人的电话、视频或上门探访计为已探访；未联系到本人的不计；"
    "智能外呼（机器人电话）接通是否计入由各县（市、区）设定，并与不计智能外呼的探访率并列显示。"
    "A person on the weekly tier counts as visited when, within the ISO week (Monday to Sunday, Beijing "
    "time), at least one phone, video or home visit reached them; unreached attempts do not count; whether "
    "an answered machine (AI) call counts is each county's setting, and the rate without machine calls is "
    "always shown beside it."
)


KIND_ORDER = {"week": 0, "month": 1, "quarter": 2}


MAX_SERIES_WEEKS = 104


GROUPS = {"station": "station_id", "county": "county_code", "city": "city_code"}


def _rate(visited: int, due: int) -> float | None:
    return round(visited / due, 4) if due else None


def _stats_scope(principal: Principal, division: str | None) -> dict[str, Any]:
    if principal.role not in ("worker", "station_head", "supervisor", "admin"):
        raise PermissionDeniedError("staff_only", "The visit rate is for staff.")
    query: dict[str, Any] = {}
    if principal.role == "supervisor":
        prefix = principal.division_prefix or ""
        if not prefix:
            raise PermissionDeniedError("no_division", "Your account has no division assigned.")
        if division and not division.startswith(prefix):
            raise PermissionDeniedError("outside_your_area", "That division is outside yours.")
        division = division or prefix
    elif principal.role in ("worker", "station_head"):
        query["station_id"] = principal.station_id or ""
    if division:
        query["township"] = {"$regex": f"^{re.escape(division)}"}
    return query


def tier_scopes(p: Period) -> dict[str, dict[str, Any]]:
    """Per tier, the schedules a report of period ``p`` counts.

    A tier whose periods are as long as ``p`` or shorter counts its periods ending within
    ``p`` (a week report: that week of the weekly tier); a tier with longer periods counts
    its period in progress at the end of ``p`` (a week report: the month and the quarter
    of the week's last day), so each tier is measured on its own period, never mixed.
    """
    out = {}
    for tier in TIERS:
        kind = TIER_KIND[tier]
        if KIND_ORDER[kind] <= KIND_ORDER[p.kind]:
            out[tier] = {"kind": kind, "period_end": {"$gt": p.start, "$lte": p.end}}
        else:
            out[tier] = {"kind": kind, "period": period_of(kind, p.end - timedelta(microseconds=1)).id}
    return out


def _covers(p: Period, tier: str) -> tuple[str | None, str]:
    scope = tier_scopes(p)[tier]
    if "period" in scope:
        return scope["period"], scope["period"]
    kind = TIER_KIND[tier]
    if kind == p.kind:
        return p.id, p.id
    return None, f"{kind}s ending in {p.id}"


def machine_counts_expr(rules: CountyRules) -> Any:
    """Pure: the aggregation expression "a machine call counts in this schedule's county"."""
    own = [c for c in rules.counties if c != "default"]
    if rules.counties["default"].machine_calls_count:
        return {"$not": [{"$in": ["$county_code", [c for c in own if not rules.counties[c].machine_calls_count]]}]}
    return {"$in": ["$county_code", [c for c in own if rules.counties[c].machine_calls_count]]}


def counted_expr(rules: CountyRules) -> Any:
    """Pure: visited by a person, or reached by a machine call where the county counts those."""
    machine = {"$and": [{"$eq": ["$machine_reached", True]}, machine_counts_expr(rules)]}
    return {"$or": [{"$eq": ["$visited", True]}, machine]}


def _with_counted(rules: CountyRules) -> dict[str, Any]:
    return {
        "$addFields": {
            "counted": counted_expr(rules),
            "human": {"$eq": ["$visited", True]},
            "any_contact": {"$or": [{"$eq": ["$visited", True]}, {"$eq": ["$machine_reached", True]}]},
        }
    }


def rate_pipeline(
    match: dict[str, Any],
    scopes: dict[str, dict[str, Any]],
    group_field: str,
    max_misses: int = MAX_MISSES,
    rules: CountyRules | None = None,
) -> list[dict[str, Any]]:
    """The aggregation behind the visit rate: per tier (each on its own period), by method, by group, misses.

    ``visited`` follows each county's setting for machine calls; ``visited_human`` never counts
    them and ``visited_with_machine`` always does, so the figure is shown both ways.
    """
    rules = rules or load_county_rules()
    counts = {
        "due": {"$sum": 1},
        "visited": {"$sum": {"$cond": ["$counted", 1, 0]}},
        "visited_human": {"$sum": {"$cond": ["$human", 1, 0]}},
        "visited_with_machine": {"$sum": {"$cond": ["$any_contact", 1, 0]}},
    }
    return [
        {"$match": {**match, "withdrawn": None, "$or": list(scopes.values())}},
        _with_counted(rules),
        {
            "$facet": {
                "by_tier": [{"$group": {"_id": "$tier", **counts}}],
                "by_method": [
                    {"$match": {"tier": PLAN_TIER, "counted": True}},
                    {
                        "$group": {
                            "_id": {"$cond": ["$human", "$method", MACHINE_METHOD]},
                            "visited": {"$sum": 1},
                        }
                    },
                ],
                "groups": [
                    {"$group": {"_id": {"key": f"${group_field}", "tier": "$tier"}, **counts}},
                    {"$sort": {"_id.key": 1}},
                ],
                "misses": [
                    {"$match": {"counted": False}},
                    {"$sort": {"period_end": 1, "elder_id": 1}},
                    {"$limit": max_misses},
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


def plan_statement(rules: CountyRules | None = None) -> dict[str, Any]:
    """What the plan's figure counts, shown beside it, with the counties that count machine calls."""
    rules = rules or load_county_rules()
    default = rules.counties["default"].machine_calls_count
    return {
        "name": PLAN_NAME,
        "tier": PLAN_TIER,
        "tier_name": TIER_NAMES[PLAN_TIER],
        "counted_methods": [{"method": m, "name": METHOD_NAMES[m]} for m in HUMAN_METHODS],
        "not_counted": ["unreached attempts 未联系到本人"],
        "machine_calls": {
            "method": MACHINE_METHOD,
            "name": METHOD_NAMES[MACHINE_METHOD],
            "counted_by_default": default,
            "counties": [
                {"county": c, "name": r.name, "counted": r.machine_calls_count}
                for c, r in sorted(rules.counties.items())
                if c != "default"
            ],
        },
        "rule": COUNTING_RULE,
    }


def _both_ways(row: dict[str, Any]) -> dict[str, Any]:
    """The figure without and with machine calls, shown beside the county's own setting."""
    due = row.get("due", 0)
    human, machine = row.get("visited_human", 0), row.get("visited_with_machine", 0)
    return {
        "visited_without_machine": human,
        "rate_without_machine": _rate(human, due),
        "visited_with_machine": machine,
        "rate_with_machine": _rate(machine, due),
    }


def _tier_rows(p: Period, rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for t in TIERS:
        period, covers = _covers(p, t)
        due, visited = rows.get(t, {}).get("due", 0), rows.get(t, {}).get("visited", 0)
        out.append(
            {
                "tier": t,
                "period": period,
                "covers": covers,
                "due": due,
                "visited": visited,
                "rate": _rate(visited, due),
                **_both_ways(rows.get(t, {})),
            }
        )
    return out


async def visit_stats(
    *,
    ctx: Context,
    principal: Principal,
    division: str | None = None,
    period: str | None = None,
    group_by: str = "station",
    misses_limit: int = 100,
) -> dict[str, Any]:
    """The plan's weekly rate (weekly tier only) by station/county/city, the other tiers beside it, and the misses."""
    if group_by not in GROUPS:
        raise ValidationFailedError(
            "invalid_group_by", "Unknown grouping.", {"group_by": [f"Use {', '.join(GROUPS)}."]}
        )
    now = ctx.now()
    p = parse(period) if period else period_of("week", now)
    scope = _stats_scope(principal, division)
    scopes = tier_scopes(p)
    rules = load_county_rules(ctx.settings.county_rules_file)
    [facets] = await VisitSchedulesRepository(ctx.db).aggregate(
        rate_pipeline(scope, scopes, GROUPS[group_by], misses_limit, rules)
    )
    by_tier = {r["_id"]: r for r in facets["by_tier"]}
    plan = by_tier.get(PLAN_TIER, {"due": 0, "visited": 0})
    grouped: dict[str, dict[str, dict[str, Any]]] = {}
    for g in facets["groups"]:
        grouped.setdefault(g["_id"]["key"], {})[g["_id"]["tier"]] = g
    names: dict[str, str] = {}
    if group_by == "station":
        names = {s.id: s.name for s in await stations.stations_by_id(ctx=ctx, ids=list(grouped))}
    misses = facets["misses"]
    elders = await EldersRepository(ctx.db).get_many([m["elder_id"] for m in misses])
    unvisited = sum(r["due"] - r["visited"] for r in by_tier.values())
    plan_period, plan_covers = _covers(p, PLAN_TIER)
    return {
        "period": p.id,
        "period_start": p.start,
        "period_end": p.end,
        "closed": p.end <= now,
        "division": division or principal.division_prefix,
        "group_by": group_by,
        "plan": {**plan_statement(rules), "period": plan_period, "covers": plan_covers},
        "due": plan["due"],
        "visited": plan["visited"],
        "rate": _rate(plan["visited"], plan["due"]),
        **_both_ways(plan),
        "by_tier": _tier_rows(p, by_tier),
        "by_method": [
            {"method": m, "visited": next((r["visited"] for r in facets["by_method"] if r["_id"] == m), 0)}
            for m in METHODS
        ],
        "groups": [
            {
                "key": key,
                "name": names.get(key),
                "due": rows.get(PLAN_TIER, {}).get("due", 0),
                "visited": rows.get(PLAN_TIER, {}).get("visited", 0),
                "rate": _rate(rows.get(PLAN_TIER, {}).get("visited", 0), rows.get(PLAN_TIER, {}).get("due", 0)),
                **_both_ways(rows.get(PLAN_TIER, {})),
                "by_tier": _tier_rows(p, rows),
            }
            for key, rows in sorted(grouped.items())
        ],
        "misses": [
            {
                "elder_id": m["elder_id"],
                "name_masked": m.get("name_masked"),
                "station_id": m["station_id"],
                "tier": m["tier"],
                "period": m["period"],
                "last_visited_at": elders[m["elder_id"]].last_visited_at if m["elder_id"] in elders else None,
            }
            for m in misses
        ],
        "misses_truncated": unvisited > len(misses),
    }


def weekly_pipeline(
    match: dict[str, Any], first: Period, last: Period, rules: CountyRules | None = None
) -> list[dict[str, Any]]:
    """The aggregation behind the weekly series: the weekly tier's due and visited per ISO week."""
    return [
        {
            "$match": {
                **match,
                "kind": "week",
                "tier": PLAN_TIER,
                "withdrawn": None,
                "period_end": {"$gt": first.start, "$lte": last.end},
            }
        },
        _with_counted(rules or load_county_rules()),
        {"$group": {"_id": "$period", "due": {"$sum": 1}, "visited": {"$sum": {"$cond": ["$counted", 1, 0]}}}},
        {"$sort": {"_id": 1}},
    ]


async def weekly_series(
    *,
    ctx: Context,
    principal: Principal,
    division: str | None = None,
    weeks: int = 12,
    until: str | None = None,
) -> dict[str, Any]:
    """The plan's weekly rate for each of the last ``weeks`` ISO weeks up to ``until`` (default: this week)."""
    now = ctx.now()
    last = parse(until) if until else period_of("week", now)
    if last.kind != "week":
        raise ValidationFailedError(
            "invalid_period", "Give an ISO week such as 2026-W48.", {"until": ["Must be an ISO week."]}
        )
    if not 1 <= weeks <= MAX_SERIES_WEEKS:
        raise ValidationFailedError(
            "invalid_weeks", "Too many or too few weeks.", {"weeks": [f"Must be 1 to {MAX_SERIES_WEEKS}."]}
        )
    rules = load_county_rules(ctx.settings.county_rules_file)
    series = [last]
    while len(series) < weeks:
        series.insert(0, period_of("week", series[0].start - timedelta(days=1)))
    rows = {
        r["_id"]: r
        for r in await VisitSchedulesRepository(ctx.db).aggregate(
            weekly_pipeline(_stats_scope(principal, division), series[0], last, rules)
        )
    }
    return {
        "division": division or principal.division_prefix,
        "plan": plan_statement(rules),
        "items": [
            {
                "period": w.id,
                "period_start": w.start,
                "period_end": w.end,
                "closed": w.end <= now,
                "due": rows.get(w.id, {}).get("due", 0),
                "visited": rows.get(w.id, {}).get("visited", 0),
                "rate": _rate(rows.get(w.id, {}).get("visited", 0), rows.get(w.id, {}).get("due", 0)),
            }
            for w in series
        ],
    }
