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
from service.workforce.plan.indicators import Figure
from service.workforce.plan.scope import Scope
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
