"""The plan's indicators as live figures: target, actual, gap and how each was computed.

Targets come from ``config/plan_targets.toml`` (:mod:`service.workforce.targets`). Figures
come from the records: the register and training records (this area), the reference
figures (this area, imported), station coverage and six-haves (六有) compliance (the station
network's read port ``service.network.service.division_coverage``: one definition, the same
figures as ``GET /api/v1/stats/stations``), the weekly visit rate (the visits service).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from service.common.context import Context
from service.common.errors import PermissionDeniedError, ValidationFailedError
from service.common.models import Principal
from service.network import service as network
from service.network.models import DivisionFigures
from service.stations.divisions_data import division_table
from service.visits import stats as visits
from service.visits.periods import local_date, period_of
from service.workforce import rules
from service.workforce.figures import figure_total
from service.workforce.models import DivisionFigure, Indicator, PlanBreakdown, PlanReport
from service.workforce.repository.store import WorkforceRepository
from service.workforce.targets import PlanPeriod, plan_targets

NAMES: dict[str, tuple[str, str, str]] = {
    "social_workers_total": ("社会工作专业人才总量", "Professional social workers in post", "persons"),
    "social_workers_growth": ("社会工作专业人才年增长率", "Growth of social workers on the year before", "fraction"),
    "trained_certified": ("持证社会工作者培训人数", "Certified social workers trained this year", "persons"),
    "trained_managers": ("社会工作管理人才培训人数", "Managers trained this year", "persons"),
    "trained_supervisors": ("社会工作督导人才培训人数", "Supervisors trained this year", "persons"),
    "trained_elderly_care": (
        "养老护理员培训人次（规划期累计）",
        "Elderly-care worker trainings in the plan period",
        "person-times",
    ),
    "social_workers_per_1000_older": ("每千名老年人社会工作者数", "Social workers per 1,000 older people", "per 1,000"),
    "social_workers_per_100_beds": (
        "每百张养老床位社会工作者数",
        "Social workers in care homes per 100 beds",
        "per 100",
    ),
    "station_coverage": ("乡镇（街道）社工站覆盖率", "Townships with a social-work station", "fraction"),
    "six_haves_compliance": ("社工站“六有”达标率", "Stations meeting the six-haves standard", "fraction"),
    "weekly_visit_rate": (
        "特殊困难老年人周探访率",
        "Weekly visit rate of older people in special difficulty",
        "fraction",
    ),
}
TRAINED = {"trained_certified": "certified", "trained_managers": "manager", "trained_supervisors": "supervisor"}


@dataclasses.dataclass(frozen=True, slots=True)
class Figure:
    """An indicator's actual figure and how it was computed, or why there is none."""

    actual: float | None
    computation: dict[str, Any]
    reason: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Scope:
    """What one plan request covers."""

    principal: Principal
    code: str
    prefix: str
    level: str
    year: int
    as_of: date
    before: date
    period: PlanPeriod
    now: datetime
    # Figures read from other areas once per request (the two network indicators share one read).
    borrowed: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, hash=False)  # by kind:code


# ---------------------------------------------------------------- figures from other areas


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


# ---------------------------------------------------------------- the indicators


def _indicator(scope: Scope, code: str, figure: Figure) -> Indicator:
    target, note = scope.period.target_for(code, scope.code, scope.level)
    gap, progress, met = rules.compare(target, figure.actual)
    name, name_en, unit = NAMES[code]
    return Indicator(
        code=code,
        name=name,
        name_en=name_en,
        unit=unit,
        target=target,
        target_note=note,
        actual=figure.actual,
        gap=gap,
        progress=progress,
        met=met,
        available=figure.actual is not None,
        reason=figure.reason if figure.actual is None else None,
        computation={**figure.computation, "as_of": scope.as_of.isoformat(), "computed_at": scope.now},
    )


async def _register_figures(ctx: Context, scope: Scope) -> dict[str, Figure]:
    repo = WorkforceRepository(ctx.db)
    as_of, before = scope.as_of.isoformat(), scope.before.isoformat()
    year_start = date(scope.year, 1, 1).isoformat()
    period_start = date(scope.period.start_year, 1, 1).isoformat()
    people, trained, snapshot = await _register_counts(repo, scope, as_of, before, year_start, period_start)
    by_kind = {r["_id"]: r["n"] for r in people["now"]}
    total = sum(by_kind.values())
    previous = people["before"][0]["n"] if people["before"] else 0
    per_category = {r["_id"]: r["n"] for r in trained["year_people"]}
    elderly = trained["period_elderly_care"][0]["n"] if trained["period_elderly_care"] else 0
    people_link = f"/api/v1/workforce/people?division={scope.code}&occupation=social_work&in_post_on={as_of}"
    register = "workforce_people (this area's register)"
    out = {
        "social_workers_total": Figure(
            total,
            {
                "method": "Social workers (occupation social_work) in post on the as-of day: started on or before it, "
                "not left by it, in any status but left.",
                "sources": [register],
                "inputs": {"by_employer_kind": by_kind},
                "records": people_link,
            },
        ),
        "social_workers_growth": Figure(
            rules.ratio(total - previous, previous),
            {
                "method": "(social workers in post on the as-of day - those in post on 31 December of the year "
                "before) / those in post on 31 December of the year before.",
                "sources": [register],
                "inputs": {"now": total, "before": previous, "before_as_of": before},
                "records": people_link,
            },
            reason=None if previous else "No social workers were in post at the end of the year before.",
        ),
    }
    for code, category in TRAINED.items():
        out[code] = Figure(
            per_category.get(category, 0),
            {
                "method": f"Distinct people with a completed training record of category {category} completed from "
                f"{year_start} to the as-of day (where they worked when enrolled).",
                "sources": ["training_records (this area)"],
                "records": f"/api/v1/training/records?division={scope.code}&category={category}&status=completed"
                f"&completed_from={year_start}&completed_to={as_of}",
            },
        )
    out["trained_elderly_care"] = Figure(
        elderly,
        {
            "method": f"Completed elderly-care training records (person-times) from {period_start} to the as-of day.",
            "sources": ["training_records (this area)"],
            "records": f"/api/v1/training/records?division={scope.code}&category=elderly_care&status=completed"
            f"&completed_from={period_start}&completed_to={as_of}",
        },
    )
    figures_link = f"/api/v1/reference-figures?division={scope.code}&year={scope.year}"
    older = await figure_total(ctx, scope.prefix, scope.year, "older_population")
    beds = await figure_total(ctx, scope.prefix, scope.year, "care_home_beds")
    in_homes = by_kind.get("care_home", 0)
    for code, fig, count, per, what in (
        ("social_workers_per_1000_older", older, total, 1000, "older population"),
        ("social_workers_per_100_beds", beds, in_homes, 100, "care-home beds"),
    ):
        out[code] = Figure(
            rules.ratio(count, fig.value, per) if fig.value is not None else None,
            {
                "method": f"{'Social workers in post' if per == 1000 else 'Social workers employed by care homes'} "
                f"× {per} / {what} of {scope.year}" + (" (the sum of the county figures)" if fig.summed else ""),
                "sources": [register, "reference_figures (imported)"],
                "inputs": {
                    "social_workers": count,
                    what.replace(" ", "_").replace("-", "_"): fig.value,
                    "figures": [
                        {"division": r.division, "year": r.year, "source": r.source, "imported_at": r.imported_at}
                        for r in fig.rows
                    ],
                },
                "records": figures_link,
            },
            reason=None
            if fig.value
            else f"No {what} figure of {scope.year} has been imported for this division or its counties.",
        )
    return {
        code: dataclasses.replace(f, computation={**f.computation, "snapshot": snapshot}) for code, f in out.items()
    }


SNAPSHOT_MAX_AGE = timedelta(hours=1)
SNAPSHOT_RULE = (
    "The register and training aggregations of a division, year and as-of day are stored with the register's "
    "change counter; they are reused while no person or training record has been written since (the counter is "
    "unchanged) and for at most an hour, else computed again."
)


async def _register_counts(
    repo: WorkforceRepository, scope: Scope, as_of: str, before: str, year_start: str, period_start: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The people and training aggregations of the scope: stored ones while fresh (SNAPSHOT_RULE), else run."""
    key = f"{scope.prefix}|{as_of}|{before}|{year_start}|{period_start}"
    version = await repo.register_version()  # read before the aggregations, so a write during them shows later
    stored = await repo.get_snapshot(key)
    if (
        stored is not None
        and stored.get("version") == version
        and scope.now - stored["computed_at"] <= SNAPSHOT_MAX_AGE
        and stored["computed_at"] <= scope.now
    ):
        info = {
            "rule": SNAPSHOT_RULE,
            "reused": True,
            "computed_at": stored["computed_at"].isoformat(),
            "version": version,
        }
        return stored["people"], stored["trained"], info
    match = rules.scope_match(scope.prefix)
    [people] = await repo.aggregate_people(rules.people_pipeline(match, as_of, before))
    [trained] = await repo.aggregate_records(rules.training_pipeline(match, year_start, period_start, as_of))
    await repo.put_snapshot(key, {"version": version, "computed_at": scope.now, "people": people, "trained": trained})
    info = {"rule": SNAPSHOT_RULE, "reused": False, "computed_at": scope.now.isoformat(), "version": version}
    return people, trained, info


async def plan_indicators(
    *, ctx: Context, principal: Principal, division: str | None = None, year: int | None = None
) -> PlanReport:
    """Every plan indicator for a division and year: target, actual, gap and how it was computed."""
    scope = _scope(ctx, principal, division, year)
    figures = await _register_figures(ctx, scope)
    for code, compute in SOURCES.items():
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
        indicators=tuple(_indicator(scope, code, figures[code]) for code in NAMES),
    )


SOURCES: dict[str, Callable[[Context, Scope], Awaitable[Figure]]] = {
    "station_coverage": station_coverage,
    "six_haves_compliance": six_haves_compliance,
    "weekly_visit_rate": weekly_visit_rate,
}
CHILD_LEVELS = {"province": ("city",), "city": ("county", "development_zone"), "county": ("township",)}


async def _one_figure(ctx: Context, scope: Scope, code: str) -> Figure:
    if code in SOURCES:
        return await SOURCES[code](ctx, scope)
    return (await _register_figures(ctx, scope))[code]


async def plan_breakdown(
    *, ctx: Context, principal: Principal, indicator: str, division: str | None = None, year: int | None = None
) -> PlanBreakdown:
    """One indicator for each division directly under ``division`` (the province's cities, a city's counties,
    a county's townships), each computed exactly as ``plan_indicators`` computes it for that division."""
    if indicator not in NAMES:
        raise ValidationFailedError(
            "unknown_indicator", f"No plan indicator {indicator!r}.", {"indicator": [f"One of {', '.join(NAMES)}."]}
        )
    scope = _scope(ctx, principal, division, year)
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
        one = _indicator(child_scope, indicator, figure)
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


def _scope(ctx: Context, principal: Principal, division: str | None, year: int | None) -> Scope:
    rules.require_manager(principal, detail="The plan's figures are for supervisors and administrators.")
    if division is None:
        division_code = rules.home_division(principal)
    else:
        try:
            division_code = rules.normalise_division(division)
        except ValueError as exc:
            raise ValidationFailedError("invalid_division", str(exc), {"division": [str(exc)]}) from None
    prefix = rules.prefix_of(division_code)
    if principal.role == "supervisor" and not rules.may_see_division(principal, prefix):
        raise PermissionDeniedError("outside_your_area", "That division is outside yours.")
    now = ctx.now()
    today = local_date(now)
    year = year or today.year
    if year > today.year:
        raise ValidationFailedError("invalid_year", "The year has not begun.", {"year": [f"At most {today.year}."]})
    period = plan_targets().period_of(year)
    if period is None:
        raise ValidationFailedError(
            "no_plan_period",
            f"No plan period in config/plan_targets.toml covers {year}.",
            {"year": ["No plan period covers this year."]},
        )
    known = division_table().by_code.get(division_code)
    level = known.level if known else rules.level_of(prefix)
    return Scope(
        principal=principal,
        code=division_code,
        prefix=prefix,
        level=level,
        year=year,
        as_of=rules.as_of_date(year, today),
        before=date(year - 1, 12, 31),
        period=period,
        now=now,
    )
