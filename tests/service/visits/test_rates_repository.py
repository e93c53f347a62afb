"""The visit rate's counts over the due visits, read through their repository: per tier, per method,
per group, the misses, the weekly series, and machine calls counted as each county says."""

from __future__ import annotations

from dataclasses import replace

from service.common.context import Context
from service.common.models import SYSTEM
from service.visits.models import MachineCalls, RateScope, TierCount
from service.visits.periods import period_of
from service.visits.repository.rates import VisitRatesRepository
from service.visits.stats import rate_query, weekly_query
from tests.factories import TOWNSHIP, id_card, make_elder, make_staff, make_station, make_visit

COUNTY = TOWNSHIP[:6]


async def test_the_weeks_figures_count_due_and_visited_per_tier_method_and_station(ctx: Context) -> None:
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    # Three people on the weekly tier (living alone): one visited at home, one by phone, one missed.
    home, phone, missed = [await make_elder(ctx) for _ in range(3)]
    await make_visit(ctx, worker, home.id, method="home")
    await make_visit(ctx, worker, phone.id, method="phone")
    await make_visit(ctx, worker, missed.id, method="phone", reached=False)  # not reached: not counted
    week = period_of("week", ctx.now())
    figures = await VisitRatesRepository(ctx.db).rate_figures(
        rate_query(RateScope(station_id=station.id), week, "station")
    )
    assert figures.by_tier["high"] == TierCount(due=3, visited=2, visited_human=2, visited_with_machine=2)
    assert figures.by_method == {"home": 1, "phone": 1}
    assert figures.groups == {station.id: {"high": TierCount(3, 2, 2, 2)}}
    [miss] = figures.misses
    assert (miss.elder_id, miss.station_id, miss.tier, miss.period) == (missed.id, station.id, "high", week.id)


async def test_a_scope_counts_only_its_own_due_visits(ctx: Context) -> None:
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    elder = await make_elder(ctx)
    await make_visit(ctx, worker, elder.id)
    repo = VisitRatesRepository(ctx.db)
    week = period_of("week", ctx.now())
    inside = await repo.rate_figures(rate_query(RateScope(township_prefix=COUNTY), week, "county"))
    assert inside.groups == {COUNTY: {"high": TierCount(1, 1, 1, 1)}}
    elsewhere = await repo.rate_figures(rate_query(RateScope(township_prefix="3401"), week, "county"))
    assert (elsewhere.by_tier, elsewhere.groups, elsewhere.misses) == ({}, {}, ())


async def test_a_machine_call_counts_only_where_the_county_counts_machine_calls(ctx: Context) -> None:
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    called, visited = await make_elder(ctx), await make_elder(ctx)
    await make_visit(ctx, SYSTEM, called.id, method="ai_call")
    await make_visit(ctx, worker, visited.id, method="video")
    repo = VisitRatesRepository(ctx.db)
    week = period_of("week", ctx.now())
    scope = RateScope(station_id=station.id)

    async def high(calls: MachineCalls) -> tuple[TierCount, dict[str, int]]:
        figures = await repo.rate_figures(replace(rate_query(scope, week, "station"), machine_calls=calls))
        return figures.by_tier["high"], figures.by_method

    # Not counted anywhere; counted everywhere; counted everywhere but this county; counted only here.
    assert await high(MachineCalls(by_default=False)) == (TierCount(2, 1, 1, 2), {"video": 1})
    assert await high(MachineCalls(by_default=True)) == (TierCount(2, 2, 1, 2), {"video": 1, "ai_call": 1})
    assert (await high(MachineCalls(by_default=True, exceptions=(COUNTY,))))[0] == TierCount(2, 1, 1, 2)
    assert (await high(MachineCalls(by_default=False, exceptions=(COUNTY,))))[0] == TierCount(2, 2, 1, 2)


async def test_the_weekly_series_counts_each_week_of_the_plans_tier(ctx: Context) -> None:
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    first, second = await make_elder(ctx), await make_elder(ctx)
    # Sixty-six and living with a spouse: the monthly tier, outside the weekly series.
    await make_elder(ctx, id_card=id_card("19600101", 900, region=COUNTY), flags=["empty_nest"])
    await make_visit(ctx, worker, first.id)
    await make_visit(ctx, worker, second.id, reached=False)
    week = period_of("week", ctx.now())
    repo = VisitRatesRepository(ctx.db)
    q = weekly_query(RateScope(station_id=station.id), week, week)
    assert await repo.weekly_counts(q) == {week.id: TierCount(due=2, visited=1)}
    assert await repo.weekly_counts(weekly_query(RateScope(township_prefix="3401"), week, week)) == {}
