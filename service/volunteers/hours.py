"""Service hours: organisers confirm and correct them; volunteers may only ask for a correction."""

from __future__ import annotations

from typing import Any

from service.cases.models import Subject
from service.common.context import Context
from service.common.errors import (
    InvalidStateError,
    NotFoundError,
    ValidationFailedError,
)
from service.common.models import Principal
from service.volunteers import rules
from service.volunteers.access import (
    CHECKIN_GRACE,
    EVENT_CORRECTED,
    EVENT_CORRECTION_REQUESTED,
    EVENT_HOURS_CONFIRMED,
    actor_of,
    append_event,
    aware,
    my_volunteer,
    require_organiser,
)
from service.volunteers.attendance import change_attendance, check_overlap
from service.volunteers.inputs import CorrectionInput
from service.volunteers.models import (
    Attendance,
    HistoryEntry,
)
from service.volunteers.repository.activities import ActivitiesRepository
from service.volunteers.repository.attendance import AttendanceRepository
from service.volunteers.repository.codecs import actor_doc


async def confirm_hours(
    *, ctx: Context, principal: Principal, attendance_id: str, hours: float | None = None, evaluation: str | None = None
) -> Attendance:
    """The organiser confirms the hours computed from attendance (or fewer/more within the activity's length)."""
    attendance = await AttendanceRepository(ctx.db).get(attendance_id)
    activity = await ActivitiesRepository(ctx.db).get(attendance.activity_id)
    await require_organiser(ctx, principal, activity)
    if attendance.status == "confirmed":
        raise InvalidStateError("hours_already_confirmed", "These hours are confirmed; change them by a correction.")
    if attendance.status != "checked_out" or attendance.hours is None:
        raise InvalidStateError("not_checked_out", "Hours are confirmed after the check-out.")
    final = rules.check_hours(
        attendance.hours if hours is None else hours, start=activity.start_at, end=activity.end_at
    )
    now = ctx.now()
    changes: dict[str, dict[str, Any]] = {"status": {"old": attendance.status, "new": "confirmed"}}
    if final != attendance.hours:
        changes["hours"] = {"old": attendance.hours, "new": final}
    entry = HistoryEntry(at=now, by=actor_of(principal), action="confirmed", changes=changes)
    updated = await change_attendance(
        ctx,
        attendance,
        sets={
            "hours": final,
            "status": "confirmed",
            "confirmed_at": now,
            "confirmed_by": actor_doc(actor_of(principal)),
            "evaluation": evaluation,
        },
        entry=entry,
    )
    await append_event(
        ctx,
        type=EVENT_HOURS_CONFIRMED,
        subject=Subject("attendance", attendance.id),
        seq=updated.version,
        principal=principal,
        station=activity.station_id,
        division=activity.township,
        data={
            "attendance_id": attendance.id,
            "activity_id": activity.id,
            "volunteer_id": attendance.volunteer_id,
            "hours": final,
        },
    )
    return updated


async def correct_attendance(
    *, ctx: Context, principal: Principal, attendance_id: str, data: CorrectionInput
) -> Attendance:
    """The recording organisation corrects a record; the old values and the reason stay in its history."""
    attendance = await AttendanceRepository(ctx.db).get(attendance_id)
    activity = await ActivitiesRepository(ctx.db).get(attendance.activity_id)
    await require_organiser(ctx, principal, activity)
    reason = data.reason.strip()
    check_in = aware(data.check_in_at) if data.check_in_at else attendance.check_in_at
    check_out = aware(data.check_out_at) if data.check_out_at else attendance.check_out_at
    if check_in is None or check_out is None:
        raise InvalidStateError("not_checked_out", "Correct a record after its check-out.")
    rules.check_attendance_window(
        check_in, check_out, start=activity.start_at, end=activity.end_at, grace=CHECKIN_GRACE
    )
    await check_overlap(ctx, attendance.volunteer_id, check_in, check_out, except_activity=activity.id)
    if data.hours is not None:
        hours = rules.check_hours(float(data.hours), start=activity.start_at, end=activity.end_at)
    elif data.check_in_at or data.check_out_at:
        hours = rules.attended_hours(check_in, check_out, activity.start_at, activity.end_at)
    else:
        hours = attendance.hours or 0.0
    changes: dict[str, dict[str, Any]] = {}
    for name, old, new in (
        ("check_in_at", attendance.check_in_at, check_in),
        ("check_out_at", attendance.check_out_at, check_out),
        ("hours", attendance.hours, hours),
    ):
        if old != new:
            changes[name] = {"old": old, "new": new}
    if not changes:
        raise ValidationFailedError(
            "nothing_to_correct", "The correction changes nothing.", errors={"hours": ["Give a value that differs."]}
        )
    entry = HistoryEntry(at=ctx.now(), by=actor_of(principal), action="corrected", changes=changes, reason=reason)
    updated = await change_attendance(
        ctx, attendance, sets={"check_in_at": check_in, "check_out_at": check_out, "hours": hours}, entry=entry
    )
    await append_event(
        ctx,
        type=EVENT_CORRECTED,
        subject=Subject("attendance", attendance.id),
        seq=updated.version,
        principal=principal,
        station=activity.station_id,
        division=activity.township,
        data={
            "attendance_id": attendance.id,
            "volunteer_id": attendance.volunteer_id,
            "old_hours": attendance.hours,
            "hours": hours,
            "reason": reason,
        },
    )
    return updated


async def request_correction(
    *, ctx: Context, principal: Principal, attendance_id: str, reason: str, proposed_hours: float | None = None
) -> Attendance:
    """A volunteer asks the recording organisation to correct a wrong or missing record (nothing changes yet)."""
    me = await my_volunteer(ctx, principal)
    attendance = await AttendanceRepository(ctx.db).get(attendance_id)
    if attendance.volunteer_id != me.id:
        raise NotFoundError("attendance_not_found", f"There is no attendance record {attendance_id!r}.")
    activity = await ActivitiesRepository(ctx.db).get(attendance.activity_id)
    if proposed_hours is not None:
        rules.check_hours(proposed_hours, start=activity.start_at, end=activity.end_at, field="proposed_hours")
    entry = HistoryEntry(
        at=ctx.now(),
        by=actor_of(principal),
        action="correction_requested",
        changes={"hours": {"old": attendance.hours, "new": proposed_hours}} if proposed_hours is not None else {},
        reason=reason.strip(),
    )
    updated = await change_attendance(ctx, attendance, sets={"correction_requested": True}, entry=entry)
    await append_event(
        ctx,
        type=EVENT_CORRECTION_REQUESTED,
        subject=Subject("attendance", attendance.id),
        seq=updated.version,
        principal=principal,
        station=activity.station_id,
        division=activity.township,
        data={"attendance_id": attendance.id, "activity_id": activity.id, "reason": reason.strip()},
    )
    return updated
