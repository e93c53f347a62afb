"""The figures of this area's own records: the social-work register and the training records, aggregated
per division and year (the aggregations stored and reused while the register is unchanged), and the
ratios to the imported reference figures (older population, care-home beds)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

from service.common.context import Context
from service.workforce import rules
from service.workforce.figures import figure_total
from service.workforce.models import RegisterCounts, RegisterWindow
from service.workforce.plan.indicators import Figure
from service.workforce.plan.scope import Scope
from service.workforce.repository.register_counts import RegisterCountsRepository
from service.workforce.repository.store import WorkforceRepository

TRAINED = {"trained_certified": "certified", "trained_managers": "manager", "trained_supervisors": "supervisor"}
SNAPSHOT_MAX_AGE = timedelta(hours=1)
SNAPSHOT_RULE = (
    "The register and training aggregations of a division, year and as-of day are stored with the register's "
    "change counter; they are reused while no person or training record has been written since (the counter is "
    "unchanged) and for at most an hour, else computed again."
)


async def register_figures(ctx: Context, scope: Scope) -> dict[str, Figure]:
    """The register, training and per-reference-figure indicators of the scope, each with how it was computed."""
    window = RegisterWindow(
        prefix=scope.prefix,
        as_of=scope.as_of,
        before=scope.before,
        year_start=date(scope.year, 1, 1),
        period_start=date(scope.period.start_year, 1, 1),
    )
    as_of, before = window.as_of.isoformat(), window.before.isoformat()
    year_start, period_start = window.year_start.isoformat(), window.period_start.isoformat()
    counts, snapshot = await _register_counts(ctx, scope, window)
    by_kind = dict(counts.in_post_by_kind)
    total = sum(by_kind.values())
    previous = counts.in_post_before
    per_category = counts.trained_by_category
    elderly = counts.elderly_care_completions
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


async def _register_counts(ctx: Context, scope: Scope, w: RegisterWindow) -> tuple[RegisterCounts, dict[str, Any]]:
    """The people and training counts of the window: stored ones while fresh (SNAPSHOT_RULE), else counted."""
    key = "|".join([w.prefix, *(d.isoformat() for d in (w.as_of, w.before, w.year_start, w.period_start))])
    repo = RegisterCountsRepository(ctx.db)
    # read before the aggregations, so a write during them shows later
    version = await WorkforceRepository(ctx.db).register_version()
    stored = await repo.stored(key)
    if (
        stored is not None
        and stored.version == version
        and scope.now - stored.computed_at <= SNAPSHOT_MAX_AGE
        and stored.computed_at <= scope.now
    ):
        info = {
            "rule": SNAPSHOT_RULE,
            "reused": True,
            "computed_at": stored.computed_at.isoformat(),
            "version": version,
        }
        return stored.counts, info
    counts = await repo.count(w)
    await repo.store(key, counts, version=version, computed_at=scope.now)
    info = {"rule": SNAPSHOT_RULE, "reused": False, "computed_at": scope.now.isoformat(), "version": version}
    return counts, info
