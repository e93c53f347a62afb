"""Visit rates: how many elders due in a period were visited, per tier, station, county or city, and weekly series."""

from __future__ import annotations

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
from service.visits.models import MachineCalls, RateQuery, RateScope, TierCount, TierWindow, WeeklyQuery
from service.visits.periods import TIER_KIND, TIER_NAMES, TIERS, Period, period_of
from service.visits.records import HUMAN_METHODS, MACHINE_METHOD, MAX_MISSES, METHOD_NAMES, METHODS
from service.visits.repository.elders import EldersRepository
from service.visits.repository.rates import VisitRatesRepository

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


def stats_scope(principal: Principal, division: str | None) -> RateScope:
    """The due visits ``principal`` may count, narrowed to ``division`` (PermissionDeniedError outside theirs)."""
    if principal.role not in ("worker", "station_head", "supervisor", "admin"):
        raise PermissionDeniedError("staff_only", "The visit rate is for staff.")
    station_id: str | None = None
    if principal.role == "supervisor":
        prefix = principal.division_prefix or ""
        if not prefix:
            raise PermissionDeniedError("no_division", "Your account has no division assigned.")
        if division and not division.startswith(prefix):
            raise PermissionDeniedError("outside_your_area", "That division is outside yours.")
        division = division or prefix
    elif principal.role in ("worker", "station_head"):
        station_id = principal.station_id or ""
    return RateScope(station_id=station_id, township_prefix=division or None)


def tier_windows(p: Period) -> tuple[TierWindow, ...]:
    """Per tier, the schedules a report of period ``p`` counts.

    A tier whose periods are as long as ``p`` or shorter counts its periods ending within
    ``p`` (a week report: that week of the weekly tier); a tier with longer periods counts
    its period in progress at the end of ``p`` (a week report: the month and the quarter
    of the week's last day), so each tier is measured on its own period, never mixed.
    """
    out: list[TierWindow] = []
    for tier in TIERS:
        kind = TIER_KIND[tier]
        if KIND_ORDER[kind] <= KIND_ORDER[p.kind]:
            out.append(TierWindow(tier=tier, kind=kind, ends_after=p.start, ends_by=p.end))
        else:
            out.append(TierWindow(tier=tier, kind=kind, period=period_of(kind, p.end - timedelta(microseconds=1)).id))
    return tuple(out)


def _covers(p: Period, tier: str) -> tuple[str | None, str]:
    [window] = [w for w in tier_windows(p) if w.tier == tier]
    if window.period is not None:
        return window.period, window.period
    kind = TIER_KIND[tier]
    if kind == p.kind:
        return p.id, p.id
    return None, f"{kind}s ending in {p.id}"


def machine_calls(rules: CountyRules) -> MachineCalls:
    """Pure: where a machine call counts, from the county table (the default and the counties that differ)."""
    own = [c for c in rules.counties if c != "default"]
    by_default = rules.counties["default"].machine_calls_count
    return MachineCalls(
        by_default=by_default,
        exceptions=tuple(c for c in own if rules.counties[c].machine_calls_count != by_default),
    )


def rate_query(
    scope: RateScope, p: Period, group_by: str, max_misses: int = MAX_MISSES, rules: CountyRules | None = None
) -> RateQuery:
    """Pure: what the visit rate of period ``p`` reads, grouped by ``group_by`` (a key of GROUPS)."""
    return RateQuery(
        scope=scope,
        windows=tier_windows(p),
        group_field=GROUPS[group_by],
        method_tier=PLAN_TIER,
        machine_method=MACHINE_METHOD,
        machine_calls=machine_calls(rules or load_county_rules()),
        max_misses=max_misses,
    )


def weekly_query(scope: RateScope, first: Period, last: Period, rules: CountyRules | None = None) -> WeeklyQuery:
    """Pure: what the weekly series from week ``first`` to week ``last`` reads (the plan's tier only)."""
    return WeeklyQuery(
        scope=scope,
        tier=PLAN_TIER,
        kind="week",
        ends_after=first.start,
        ends_by=last.end,
        machine_calls=machine_calls(rules or load_county_rules()),
    )


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


def _both_ways(row: TierCount) -> dict[str, Any]:
    """The figure without and with machine calls, shown beside the county's own setting."""
    due = row.due
    human, machine = row.visited_human, row.visited_with_machine
    return {
        "visited_without_machine": human,
        "rate_without_machine": _rate(human, due),
        "visited_with_machine": machine,
        "rate_with_machine": _rate(machine, due),
    }


def _tier_rows(p: Period, rows: dict[str, TierCount]) -> list[dict[str, Any]]:
    out = []
    for t in TIERS:
        period, covers = _covers(p, t)
        row = rows.get(t, TierCount())
        due, visited = row.due, row.visited
        out.append(
            {
                "tier": t,
                "period": period,
                "covers": covers,
                "due": due,
                "visited": visited,
                "rate": _rate(visited, due),
                **_both_ways(row),
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
    scope = stats_scope(principal, division)
    rules = load_county_rules(ctx.settings.county_rules_file)
    figures = await VisitRatesRepository(ctx.db).rate_figures(rate_query(scope, p, group_by, misses_limit, rules))
    by_tier = figures.by_tier
    plan = by_tier.get(PLAN_TIER, TierCount())
    names: dict[str, str] = {}
    if group_by == "station":
        names = {s.id: s.name for s in await stations.stations_by_id(ctx=ctx, ids=list(figures.groups))}
    misses = figures.misses
    elders = await EldersRepository(ctx.db).get_many([m.elder_id for m in misses])
    unvisited = sum(r.due - r.visited for r in by_tier.values())
    plan_period, plan_covers = _covers(p, PLAN_TIER)
    return {
        "period": p.id,
        "period_start": p.start,
        "period_end": p.end,
        "closed": p.end <= now,
        "division": division or principal.division_prefix,
        "group_by": group_by,
        "plan": {**plan_statement(rules), "period": plan_period, "covers": plan_covers},
        "due": plan.due,
        "visited": plan.visited,
        "rate": _rate(plan.visited, plan.due),
        **_both_ways(plan),
        "by_tier": _tier_rows(p, by_tier),
        "by_method": [{"method": m, "visited": figures.by_method.get(m, 0)} for m in METHODS],
        "groups": [
            {
                "key": key,
                "name": names.get(key),
                "due": rows.get(PLAN_TIER, TierCount()).due,
                "visited": rows.get(PLAN_TIER, TierCount()).visited,
                "rate": _rate(rows.get(PLAN_TIER, TierCount()).visited, rows.get(PLAN_TIER, TierCount()).due),
                **_both_ways(rows.get(PLAN_TIER, TierCount())),
                "by_tier": _tier_rows(p, rows),
            }
            for key, rows in sorted(figures.groups.items())
        ],
        "misses": [
            {
                "elder_id": m.elder_id,
                "name_masked": m.name_masked,
                "station_id": m.station_id,
                "tier": m.tier,
                "period": m.period,
                "last_visited_at": elders[m.elder_id].last_visited_at if m.elder_id in elders else None,
            }
            for m in misses
        ],
        "misses_truncated": unvisited > len(misses),
    }


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
    query = weekly_query(stats_scope(principal, division), series[0], last, rules)
    rows = await VisitRatesRepository(ctx.db).weekly_counts(query)
    return {
        "division": division or principal.division_prefix,
        "plan": plan_statement(rules),
        "items": [
            {
                "period": w.id,
                "period_start": w.start,
                "period_end": w.end,
                "closed": w.end <= now,
                "due": rows.get(w.id, TierCount()).due,
                "visited": rows.get(w.id, TierCount()).visited,
                "rate": _rate(rows.get(w.id, TierCount()).visited, rows.get(w.id, TierCount()).due),
            }
            for w in series
        ],
    }
