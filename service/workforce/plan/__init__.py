"""The plan's indicators (十四五 social-work talent plan): targets, live figures and gaps per division
and year. :mod:`.reports` answers; :mod:`.scope` says what a request covers; the figures come from
:mod:`.register_figures` (this area's records) and :mod:`.borrowed` (other areas' read ports)."""

from service.workforce.plan.register_figures import SNAPSHOT_RULE
from service.workforce.plan.reports import plan_breakdown, plan_indicators

__all__ = ["SNAPSHOT_RULE", "plan_breakdown", "plan_indicators"]
