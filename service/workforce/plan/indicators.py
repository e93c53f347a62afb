"""The plan's indicators: their names and units, a computed figure, and an indicator made of its target and figure."""

from __future__ import annotations

import dataclasses
from typing import Any

from service.workforce import rules
from service.workforce.models import Indicator
from service.workforce.plan.scope import Scope

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


@dataclasses.dataclass(frozen=True, slots=True)
class Figure:
    """An indicator's actual figure and how it was computed, or why there is none."""

    actual: float | None
    computation: dict[str, Any]
    reason: str | None = None


def build_indicator(scope: Scope, code: str, figure: Figure) -> Indicator:
    """One indicator of the scope: its target for the division, the figure, and the gap between them."""
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
