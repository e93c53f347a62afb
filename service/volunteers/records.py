"""A volunteer's service record: the confirmed service lines, in local dates."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from service.common.context import Context
from service.common.models import Principal
from service.volunteers.access import LOCAL
from service.volunteers.models import (
    Attendance,
    ServiceLine,
)
from service.volunteers.registration import shown_to, visible_volunteer
from service.volunteers.repository.activities import ActivitiesRepository
from service.volunteers.repository.attendance import AttendanceRepository
from service.volunteers.repository.certificates import CertificatesRepository

# ---------------------------------------------------------------- records


def local_date(value: datetime) -> date:
    return value.astimezone(LOCAL).date()


async def service_lines(
    ctx: Context, volunteer_id: str, *, station_id: str | None, start: date | None, end: date | None
) -> list[tuple[Attendance, ServiceLine]]:
    records = await AttendanceRepository(ctx.db).for_volunteer(volunteer_id, status="confirmed", station_id=station_id)
    activities = await ActivitiesRepository(ctx.db).many([r.activity_id for r in records])
    out = []
    for r in records:
        a = activities.get(r.activity_id)
        if a is None or r.check_in_at is None or r.check_out_at is None:
            continue
        day = local_date(r.check_in_at)
        if (start and day < start) or (end and day > end):
            continue
        line = ServiceLine(
            activity_id=a.id,
            title=a.title,
            content=a.content,
            place=f"{a.station_name} {a.location}".strip() if a.location != a.station_name else a.station_name,
            start_at=r.check_in_at,
            end_at=r.check_out_at,
            hours=float(r.hours or 0),
        )
        out.append((r, line))
    return out


async def volunteer_record(*, ctx: Context, principal: Principal, volunteer_id: str) -> dict[str, Any]:
    """A volunteer's record: every confirmed service with hours, training, awards, evaluations and certificates."""
    volunteer = await visible_volunteer(ctx, principal, volunteer_id)
    lines = await service_lines(ctx, volunteer.id, station_id=None, start=None, end=None)
    certificates = await CertificatesRepository(ctx.db).for_volunteer(volunteer.id)
    return {
        "volunteer": shown_to(principal, volunteer),
        "services": [
            {**_line_dict(line), "attendance_id": att.id, "station_id": att.station_id, "evaluation": att.evaluation}
            for att, line in lines
        ],
        "total_hours": round(sum(line.hours for _, line in lines), 1),
        "records": list(volunteer.records),
        "certificates": certificates,
    }


def _line_dict(line: ServiceLine) -> dict[str, Any]:
    return {
        "activity_id": line.activity_id,
        "title": line.title,
        "content": line.content,
        "place": line.place,
        "start_at": line.start_at,
        "end_at": line.end_at,
        "hours": line.hours,
    }
