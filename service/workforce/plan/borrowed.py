"""Figures the plan borrows from other areas, each through that area's own read port: station coverage
and six-haves (六有) compliance from the station network (``service.network.service.division_coverage``,
the same figures as ``GET /api/v1/stats/stations``), the weekly visit rate from the visits service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from service.common.context import Context
from service.network import service as network
from service.network.models import DivisionFigures
from service.stations.divisions_data import division_table
from service.visits import stats as visits
from service.visits.periods import local_date, period_of
from service.workforce import rules
from service.workforce.plan.indicators import Figure
from service.workforce.plan.scope import Scope

NOT_A_NETWORK_DIVISION = (
    "社工站覆盖率和“六有”达标率按省、市、县统计 The station network keeps these figures for the province, a city "
    "or a county; ask for the county this township belongs to."
)


async def _network_figures(ctx: Context, scope: Scope) -> DivisionFigures | None:
    """The station network's own figures of the division (its read port), or None for a division it does not
    keep figures for (a township, or a code the division list does not know)."""
    if len(scope.code) != 6 or scope.code not in division_table().by_code:
        return None
    key = f"network:{scope.code}"  # a scope copied for a child division shares this dict
    if key not in scope.borrowed:
        scope.borrowed[key] = await network.division_coverage(ctx=ctx, division_code=scope.code)
    figures: DivisionFigures = scope.borrowed[key]
    return figures


def _network_computation(scope: Scope, method: str, inputs: dict[str, Any]) -> dict[str, Any]:
    note = None if scope.as_of == local_date(scope.now) else "Station records keep no history: this is today's figure."
    return {
        "method": method,
        "sources": ["station construction records and sign-offs (the network service's division_coverage)"],
        "inputs": inputs,
        "note": note,
        "figures": f"/api/v1/stats/stations?division={scope.code}",
        "records": f"/api/v1/network/stations?division={scope.code}",
    }


async def six_haves_compliance(ctx: Context, scope: Scope) -> Figure:
    """Stations signed off as meeting the six haves (六有) at their current revision, of the division's
    stations: the station network's own figure (``service.network.service.division_coverage``)."""
    figures = await _network_figures(ctx, scope)
    method = (
        "Stations a supervisor signed off as meeting all six haves (六有) at their current revision / active "
        "stations of the division: the station network's compliance (division_coverage)."
    )
    if figures is None:
        return Figure(None, {"method": method, "sources": []}, reason=NOT_A_NETWORK_DIVISION)
    inputs = {"verified": figures.verified, "stations": figures.stations, "compliant_as_recorded": figures.compliant}
    return Figure(
        rules.ratio(figures.verified, figures.stations),
        _network_computation(scope, method, inputs),
        reason=None if figures.stations else "这一地区尚无社工站 The division has no active stations.",
    )


async def station_coverage(ctx: Context, scope: Scope) -> Figure:
    """Townships with an operating or model station, of the division's townships: the station network's
    own figure (``service.network.service.division_coverage``)."""
    figures = await _network_figures(ctx, scope)
    method = (
        "Townships with an operating or model station / townships of the division (the NBS list, plus "
        "township-like units that hold a station): the station network's coverage (division_coverage)."
    )
    if figures is None:
        return Figure(None, {"method": method, "sources": []}, reason=NOT_A_NETWORK_DIVISION)
    inputs = {"townships_with_station": figures.covered_townships, "townships": figures.townships}
    return Figure(
        rules.ratio(figures.covered_townships, figures.townships),
        _network_computation(scope, method, inputs),
        reason=None if figures.townships else "No townships of this division are in the division list.",
    )


async def weekly_visit_rate(ctx: Context, scope: Scope) -> Figure:
    """The plan's weekly visit rate of the last complete ISO week up to the as-of day (the visits service)."""
    if scope.as_of == local_date(scope.now):
        week = period_of("week", scope.now - timedelta(days=7))
    else:
        week = period_of("week", datetime(scope.as_of.year, 12, 28, 12, tzinfo=UTC))
    stats = await visits.visit_stats(
        ctx=ctx, principal=scope.principal, division=scope.prefix, period=week.id, misses_limit=1
    )
    return Figure(
        stats["rate"],
        {
            "method": "People of the weekly tier visited in the week / people of the weekly tier due that week.",
            "sources": ["visit schedules (the visits service)"],
            "inputs": {"period": week.id, "due": stats["due"], "visited": stats["visited"]},
            "records": f"/api/v1/stats/visits?division={scope.prefix}&period={week.id}",
        },
        reason=None if stats["due"] else "Nobody of the weekly tier was due that week.",
    )


# The indicators whose figure comes from another area, and how each is read.
BORROWED: dict[str, Callable[[Context, Scope], Awaitable[Figure]]] = {
    "station_coverage": station_coverage,
    "six_haves_compliance": six_haves_compliance,
    "weekly_visit_rate": weekly_visit_rate,
}
