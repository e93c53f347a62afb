"""What one plan request covers (division, level, year, as-of day, plan period), and who may ask for it."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

from service.common.context import Context
from service.common.errors import PermissionDeniedError, ValidationFailedError
from service.common.models import Principal
from service.stations.divisions_data import division_table
from service.visits.periods import local_date
from service.workforce import rules
from service.workforce.targets import PlanPeriod, plan_targets


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


def plan_scope(ctx: Context, principal: Principal, division: str | None, year: int | None) -> Scope:
    """The scope of a plan request: the caller's own division unless another is named (a supervisor's
    only within theirs), the current year unless another that has begun is named."""
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
