"""Key performance indicators of cases per station, county or city."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.cases.queries import scope_of
from service.cases.repository.cases import CasesRepository
from service.common.context import Context
from service.common.errors import (
    PermissionDeniedError,
)
from service.common.models import Principal


async def kpis(
    *,
    ctx: Context,
    principal: Principal,
    division: str | None,
    date_from: datetime | None,
    date_to: datetime | None,
    group_by: str | None,
) -> dict[str, Any]:
    """Counts and rates computed by aggregation over the cases the caller may see."""
    if principal.role not in ("supervisor", "admin", "station_head", "worker"):
        raise PermissionDeniedError("role_not_allowed", "Only staff can read KPIs.")
    if division and principal.role == "supervisor" and not division.startswith(principal.division_prefix or ""):
        raise PermissionDeniedError("division_outside_scope", "That division is outside yours.")
    facets = await CasesRepository(ctx.db).kpi_facets(
        scope_of(principal), division=division, date_from=date_from, date_to=date_to, group_by=group_by
    )
    breakdown: dict[str, dict[str, dict[str, int]]] = {}
    for name in ("by_status", "by_scenario"):
        for row in facets[name]:
            key = str(row["_id"].get("k"))
            breakdown.setdefault(key, {}).setdefault(name, {})[str(row["_id"].get("v") or "unknown")] = row["n"]
    groups = [_kpi_group(row, breakdown.get(str(row["_id"]), {})) for row in facets["totals"]]
    groups.sort(key=lambda g: str(g["key"]))
    return {"division": division, "from": date_from, "to": date_to, "group_by": group_by, "groups": groups}


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _median_hours(values: list[float | None]) -> float | None:
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    mid = len(vals) // 2
    ms = vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2
    return round(ms / 3_600_000, 2)


def _kpi_group(row: dict[str, Any], breakdown: dict[str, dict[str, int]]) -> dict[str, Any]:
    by_status = breakdown.get("by_status", {})
    closable = row["total"] - by_status.get("cancelled", 0) - by_status.get("rejected", 0)
    return {
        "key": None if row["_id"] == "all" else row["_id"],
        "total": row["total"],
        "by_status": by_status,
        "by_scenario": breakdown.get("by_scenario", {}),
        "response_rate": _ratio(row["signed_on_time"], row["signed"]),
        "resolution_rate": _ratio(row["done"], closable),
        "on_time_resolution_rate": _ratio(row["resolved_on_time"], row["resolved"]),
        "satisfaction_rate": _ratio(row["satisfied"], row["rated"]),
        "median_hours_to_sign": _median_hours(row["sign_ms"]),
        "median_hours_to_resolve": _median_hours(row["resolve_ms"]),
        "overdue": row["overdue"],
    }
