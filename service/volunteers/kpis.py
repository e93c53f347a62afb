"""Volunteer KPIs and the CSV export for the national volunteer information system."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from service.common.context import Context
from service.common.errors import (
    PermissionDeniedError,
)
from service.common.models import STATION_STAFF_ROLES, Principal
from service.common.timestamps import rfc3339
from service.volunteers import rules
from service.volunteers.access import EXPORT_COLUMNS, LOCAL
from service.volunteers.models import (
    Kpis,
    TimeWindow,
    VolunteerScope,
)
from service.volunteers.repository.activities import ActivitiesRepository
from service.volunteers.repository.attendance import AttendanceRepository
from service.volunteers.repository.certificates import CertificatesRepository
from service.volunteers.repository.people import VolunteersRepository

# ---------------------------------------------------------------- KPIs and export


def _scope(principal: Principal, station_id: str | None, county: str | None) -> tuple[str, VolunteerScope]:
    """(label, scope) of what the caller may count: a station, a division prefix, or everything."""
    if principal.role in STATION_STAFF_ROLES:
        if station_id and station_id != principal.station_id:
            raise PermissionDeniedError("other_station", "Staff read their own station's figures.")
        return f"station:{principal.station_id}", VolunteerScope(station_id=principal.station_id or "")
    if principal.role == "supervisor":
        prefix = principal.division_prefix or "-"
        if county and not county.startswith(prefix):
            raise PermissionDeniedError("outside_division", "This county is outside your division.")
        prefix = county or prefix
        return f"division:{prefix}", VolunteerScope(station_id=station_id or None, township_prefix=prefix)
    if principal.role != "admin":
        raise PermissionDeniedError("staff_only", "Only staff read volunteer figures.")
    if station_id:
        return f"station:{station_id}", VolunteerScope(station_id=station_id)
    if county:
        return f"division:{county}", VolunteerScope(township_prefix=county)
    return "all", VolunteerScope()


def _period_bounds(start: date | None, end: date | None) -> TimeWindow:
    lo = datetime.combine(start, time.min, LOCAL).astimezone(UTC) if start else None
    hi = datetime.combine(end + timedelta(days=1), time.min, LOCAL).astimezone(UTC) if end else None
    return TimeWindow(lo, hi)


async def kpis(
    *,
    ctx: Context,
    principal: Principal,
    station_id: str | None = None,
    county: str | None = None,
    period_from: date | None = None,
    period_to: date | None = None,
) -> Kpis:
    """Registered and active volunteers, confirmed hours, activities held, certificates, per station."""
    label, scope = _scope(principal, station_id, county)
    period = _period_bounds(period_from, period_to)
    registered = await VolunteersRepository(ctx.db).count(scope)
    active: set[str] = set()
    hours = 0.0
    per_station: dict[str, dict[str, Any]] = {}
    async for att in AttendanceRepository(ctx.db).confirmed(scope, checked_in=period):
        active.add(att.volunteer_id)
        hours += float(att.hours or 0)
        row = per_station.setdefault(att.station_id, {"station_id": att.station_id, "hours": 0.0, "volunteers": set()})
        row["hours"] += float(att.hours or 0)
        row["volunteers"].add(att.volunteer_id)
    activities = ActivitiesRepository(ctx.db)
    started = TimeWindow(period.start, min(period.end or ctx.now(), ctx.now()))  # held: started by now
    held = await activities.count(scope, starting=started, status="published")
    published = await activities.count(scope, starting=period)
    certificates = await CertificatesRepository(ctx.db).count(scope, issued=period, status="valid")
    return Kpis(
        scope=label,
        registered_volunteers=registered,
        active_volunteers=len(active),
        hours=round(hours, 1),
        activities_held=held,
        activities_published=published,
        certificates_issued=certificates,
        by_station=[
            {"station_id": k, "hours": round(v["hours"], 1), "active_volunteers": len(v["volunteers"])}
            for k, v in sorted(per_station.items())
        ],
    )


async def export_records_csv(
    *,
    ctx: Context,
    principal: Principal,
    station_id: str | None = None,
    county: str | None = None,
    period_from: date | None = None,
    period_to: date | None = None,
) -> str:
    """Confirmed service records as CSV (UTF-8 with BOM) in the documented columns (docs/volunteers.md)."""
    _, scope = _scope(principal, station_id, county)
    period = _period_bounds(period_from, period_to)
    rows = [att async for att in AttendanceRepository(ctx.db).confirmed(scope, checked_in=period)]
    activities = await ActivitiesRepository(ctx.db).many(list({r.activity_id for r in rows}))
    volunteers = await VolunteersRepository(ctx.db).many(list({r.volunteer_id for r in rows}))
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for r in rows:
        a, v = activities.get(r.activity_id), volunteers.get(r.volunteer_id)
        if a is None or v is None:
            continue
        confirmed = next((h.at for h in reversed(r.history) if h.action == "confirmed"), None)
        writer.writerow(
            [
                r.id, v.id, _csv_safe(v.name), v.id_card_masked, a.id, _csv_safe(a.title), a.scenario,
                _csv_safe(a.station_name), a.township, _csv_safe(a.location), rfc3339(a.start_at), rfc3339(a.end_at),
                rfc3339(r.check_in_at) if r.check_in_at else "", rfc3339(r.check_out_at) if r.check_out_at else "",
                rules.format_hours(float(r.hours or 0)), rfc3339(confirmed) if confirmed else "", a.case_id or "",
            ]
        )  # fmt: skip
    return out.getvalue()


def _csv_safe(text: str) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
