"""The plan's indicators as live figures: target, actual, gap and how each was computed, for a division
(``plan_indicators``) or one indicator for each division under it (``plan_breakdown``).

Targets come from ``config/plan_targets.toml`` (:mod:`service.workforce.targets`). Figures
come from the records: the register and training records (this area, :mod:`.register_figures`),
the reference figures (this area, imported), station coverage and six-haves (六有) compliance (the
station network's read port), the weekly visit rate (the visits service) (:mod:`.borrowed`).
"""

from __future__ import annotations

import dataclasses

from service.common.context import Context
from service.common.errors import ValidationFailedError
from service.common.models import Principal
from service.stations.divisions_data import division_table
from service.workforce import rules
from service.workforce.models import DivisionFigure, PlanBreakdown, PlanReport
from service.workforce.plan.borrowed import BORROWED
from service.workforce.plan.indicators import NAMES, Figure, build_indicator
from service.workforce.plan.register_figures import register_figures
from service.workforce.plan.scope import Scope, plan_scope
from service.workforce.targets import plan_targets

CHILD_LEVELS = {"province": ("city",), "city": ("county", "development_zone"), "county": ("township",)}


async def plan_indicators(
    *, ctx: Context, principal: Principal, division: str | None = None, year: int | None = None
) -> PlanReport:
    """Every plan indicator for a division and year: target, actual, gap and how it was computed."""
    scope = plan_scope(ctx, principal, division, year)
    figures = await register_figures(ctx, scope)
    for code, compute in BORROWED.items():
        figures[code] = await compute(ctx, scope)
    table = division_table()
    known = table.by_code.get(scope.code)
    return PlanReport(
        division=scope.code,
        division_name=known.name if known else None,
        level=scope.level,
        year=scope.year,
        as_of=scope.as_of.isoformat(),
        computed_at=scope.now,
        plan_period={
            "id": scope.period.id,
            "name": scope.period.name,
            "basis": scope.period.basis,
            "start_year": scope.period.start_year,
            "end_year": scope.period.end_year,
            "targets_source": f"config/{plan_targets().source}",
        },
        indicators=tuple(build_indicator(scope, code, figures[code]) for code in NAMES),
    )


async def _one_figure(ctx: Context, scope: Scope, code: str) -> Figure:
    if code in BORROWED:
        return await BORROWED[code](ctx, scope)
    return (await register_figures(ctx, scope))[code]


async def plan_breakdown(
    *, ctx: Context, principal: Principal, indicator: str, division: str | None = None, year: int | None = None
) -> PlanBreakdown:
    """One indicator for each division directly under ``division`` (the province's cities, a city's counties,
    a county's townships), each computed exactly as ``plan_indicators`` computes it for that division."""
    if indicator not in NAMES:
        raise ValidationFailedError(
            "unknown_indicator", f"No plan indicator {indicator!r}.", {"indicator": [f"One of {', '.join(NAMES)}."]}
        )
    scope = plan_scope(ctx, principal, division, year)
    table = division_table()
    levels = CHILD_LEVELS.get(scope.level, ())
    children = sorted(
        (d for d in table.by_code.values() if d.parent == scope.code),
        key=lambda d: d.code,
    )
    out = []
    for child in children:
        if child.level not in levels:
            continue
        prefix = rules.prefix_of(child.code)
        child_scope = dataclasses.replace(scope, code=child.code, prefix=prefix, level=child.level)
        figure = await _one_figure(ctx, child_scope, indicator)
        one = build_indicator(child_scope, indicator, figure)
        records = one.computation.get("records")
        out.append(
            DivisionFigure(
                division=child.code,
                name=child.name,
                level=child.level,
                target=one.target,
                actual=one.actual,
                progress=one.progress,
                met=one.met,
                available=one.available,
                reason=one.reason,
                records=records if isinstance(records, str) else None,
            )
        )
    known = table.by_code.get(scope.code)
    name, name_en, unit = NAMES[indicator]
    return PlanBreakdown(
        division=scope.code,
        division_name=known.name if known else None,
        level=scope.level,
        year=scope.year,
        as_of=scope.as_of.isoformat(),
        computed_at=scope.now,
        indicator=indicator,
        name=name,
        name_en=name_en,
        unit=unit,
        divisions=tuple(out),
    )
