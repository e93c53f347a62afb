"""Requests to record missing service (补录申请): a volunteer who took part but has no attendance record
asks the activity's organiser to record it (民政部令第67号: a volunteer may ask for a wrong or missing
record to be corrected, and the recording organisation answers).

The request changes no hours. The organiser settles it by recording the attendance through the
ordinary organiser path (``attendance.record_attendance``), which closes the open request, or
declines it with a reason. Both outcomes stay in the request's append-only history.
"""

from __future__ import annotations

from typing import Any

from service.cases.models import Subject
from service.common.context import Context
from service.common.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from service.common.ids import new_id
from service.common.models import Principal
from service.volunteers import rules
from service.volunteers.access import (
    CHECKIN_GRACE,
    EVENT_RECORD_REQUEST_DECLINED,
    EVENT_RECORD_REQUEST_RECORDED,
    EVENT_RECORD_REQUESTED,
    actor_of,
    append_event,
    aware,
    can_see_station,
    my_volunteer,
    require_organiser,
)
from service.volunteers.inputs import RecordRequestInput
from service.volunteers.models import Activity, Attendance, HistoryEntry, RecordRequest
from service.volunteers.repository.activities import ActivitiesRepository, SignupsRepository
from service.volunteers.repository.attendance import AttendanceRepository, history_doc
from service.volunteers.repository.people import VolunteersRepository
from service.volunteers.repository.record_requests import RecordRequestsRepository

SUBJECT_KIND = "record_request"


def _not_found(request_id: str) -> NotFoundError:
    return NotFoundError("record_request_not_found", f"There is no record request {request_id!r}.")


async def request_record(
    *, ctx: Context, principal: Principal, activity_id: str, data: RecordRequestInput
) -> RecordRequest:
    """A volunteer signed up for an ended activity, with no attendance record there, asks its organiser to record it."""
    me = await my_volunteer(ctx, principal)
    activity = await ActivitiesRepository(ctx.db).get(activity_id)
    signup = await SignupsRepository(ctx.db).find(activity.id, me.id)
    if signup is None:
        raise PermissionDeniedError(
            "not_signed_up", "Only a volunteer who signed up for this activity can ask for its service to be recorded."
        )
    existing = await AttendanceRepository(ctx.db).find(activity.id, me.id)
    if existing is not None:
        raise ConflictError(
            "record_exists",
            "You already have a record for this activity; ask for a correction of that record instead "
            f"(POST /api/v1/volunteer-attendance/{existing.id}/correction-requests).",
            attendance_id=existing.id,
        )
    if activity.status != "published":
        raise InvalidStateError("activity_not_open", "The activity is cancelled.")
    now = ctx.now()
    if now < activity.end_at:
        raise InvalidStateError(
            "activity_not_ended", "Ask for a missing record after the activity has ended.", end_at=activity.end_at
        )
    check_in, check_out, hours = _proposal(activity, data)
    reason = data.reason.strip()
    changes: dict[str, dict[str, Any]] = {
        name: {"old": None, "new": value}
        for name, value in (("check_in_at", check_in), ("check_out_at", check_out), ("hours", hours))
        if value is not None
    }
    entry = HistoryEntry(at=now, by=actor_of(principal), action="requested", changes=changes, reason=reason)
    request = await RecordRequestsRepository(ctx.db).insert(
        {
            "_id": new_id(),
            "activity_id": activity.id,
            "volunteer_id": me.id,
            "station_id": activity.station_id,
            "township": activity.township,
            "reason": reason,
            "proposed_check_in_at": check_in,
            "proposed_check_out_at": check_out,
            "proposed_hours": hours,
            "status": "open",
            "attendance_id": None,
            "decline_reason": None,
            "history": [history_doc(entry)],
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
    )
    await append_event(
        ctx,
        type=EVENT_RECORD_REQUESTED,
        subject=Subject(SUBJECT_KIND, request.id),
        seq=request.version,
        principal=principal,
        station=activity.station_id,
        division=activity.township,
        data={"request_id": request.id, "activity_id": activity.id, "volunteer_id": me.id, "reason": reason},
    )
    return request


def _proposal(activity: Activity, data: RecordRequestInput) -> tuple[Any, Any, float | None]:
    """The proposed times and hours, checked against the activity like any other hours."""
    raw_in, raw_out = data.proposed_check_in_at, data.proposed_check_out_at
    if (raw_in is None) != (raw_out is None):
        field = "proposed_check_out_at" if raw_out is None else "proposed_check_in_at"
        raise ValidationFailedError(
            "invalid_attendance_time",
            "Propose both the check-in and the check-out time, or neither.",
            errors={field: ["Give both times, or neither."]},
        )
    check_in = aware(raw_in) if raw_in is not None else None
    check_out = aware(raw_out) if raw_out is not None else None
    if check_in is not None and check_out is not None:
        try:
            rules.check_attendance_window(
                check_in, check_out, start=activity.start_at, end=activity.end_at, grace=CHECKIN_GRACE
            )
        except ValidationFailedError as problem:
            errors = {f"proposed_{k}": v for k, v in problem.errors.items()}
            raise ValidationFailedError("invalid_attendance_time", problem.detail, errors=errors) from None
    hours = data.proposed_hours
    if hours is not None:
        hours = rules.check_hours(float(hours), start=activity.start_at, end=activity.end_at, field="proposed_hours")
    elif check_in is not None and check_out is not None:
        hours = rules.attended_hours(check_in, check_out, activity.start_at, activity.end_at)
    return check_in, check_out, hours


async def _may_settle(ctx: Context, principal: Principal, request: RecordRequest) -> Activity:
    activity = await ActivitiesRepository(ctx.db).get(request.activity_id)
    try:
        await require_organiser(ctx, principal, activity)
    except PermissionDeniedError:
        if principal.role == "resident":  # another volunteer: the request does not exist for them
            raise _not_found(request.id) from None
        raise
    return activity


async def get_record_request(*, ctx: Context, principal: Principal, request_id: str) -> RecordRequest:
    """One request with its history (the volunteer who asked, the activity's organisers, supervisors)."""
    request = await RecordRequestsRepository(ctx.db).get(request_id)
    if principal.role == "resident":
        me = await VolunteersRepository(ctx.db).by_resident(principal.subject)
        if me is not None and me.id == request.volunteer_id:
            return request
    if principal.role == "supervisor" and can_see_station(principal, request.station_id, request.township):
        return request
    activity = await ActivitiesRepository(ctx.db).get(request.activity_id)
    try:
        await require_organiser(ctx, principal, activity)
    except PermissionDeniedError:
        raise _not_found(request_id) from None
    return request


async def list_record_requests(
    *, ctx: Context, principal: Principal, activity_id: str, status: str | None = None
) -> list[RecordRequest]:
    """An activity's record requests, oldest first (its organisers and supervisors)."""
    activity = await ActivitiesRepository(ctx.db).get(activity_id)
    if not (principal.role == "supervisor" and can_see_station(principal, activity.station_id, activity.township)):
        await require_organiser(ctx, principal, activity)
    return await RecordRequestsRepository(ctx.db).for_activity(activity.id, status=status)


async def my_record_requests(*, ctx: Context, principal: Principal) -> list[RecordRequest]:
    """The caller's record requests, newest first."""
    me = await my_volunteer(ctx, principal)
    return await RecordRequestsRepository(ctx.db).for_volunteer(me.id)


async def decline_record_request(*, ctx: Context, principal: Principal, request_id: str, reason: str) -> RecordRequest:
    """The organiser declines an open request, with a reason the volunteer sees."""
    repo = RecordRequestsRepository(ctx.db)
    request = await repo.get(request_id)
    activity = await _may_settle(ctx, principal, request)
    if request.status != "open":
        raise InvalidStateError(
            "record_request_settled", f"This request is already {request.status}.", request_status=request.status
        )
    reason = reason.strip()
    entry = HistoryEntry(
        at=ctx.now(),
        by=actor_of(principal),
        action="declined",
        changes={"status": {"old": "open", "new": "declined"}},
        reason=reason,
    )
    if not await repo.settle(
        request.id, version=request.version, sets={"status": "declined", "decline_reason": reason}, entry=entry
    ):
        raise ConflictError("record_request_changed", "Someone settled this request at the same moment; reload it.")
    updated = await repo.get(request.id)
    await append_event(
        ctx,
        type=EVENT_RECORD_REQUEST_DECLINED,
        subject=Subject(SUBJECT_KIND, request.id),
        seq=updated.version,
        principal=principal,
        station=activity.station_id,
        division=activity.township,
        data={"request_id": request.id, "activity_id": activity.id, "volunteer_id": request.volunteer_id},
    )
    return updated


async def settle_by_record(
    ctx: Context, principal: Principal, activity: Activity, attendance: Attendance
) -> RecordRequest | None:
    """Close the volunteer's open request, if any, now that the organiser recorded the attendance."""
    repo = RecordRequestsRepository(ctx.db)
    request = await repo.find_open(activity.id, attendance.volunteer_id)
    if request is None:
        return None
    entry = HistoryEntry(
        at=ctx.now(),
        by=actor_of(principal),
        action="recorded",
        changes={"status": {"old": "open", "new": "recorded"}, "hours": {"old": None, "new": attendance.hours}},
    )
    if not await repo.settle(
        request.id, version=request.version, sets={"status": "recorded", "attendance_id": attendance.id}, entry=entry
    ):
        return None  # declined or recorded at the same moment: that outcome stands next to the new record
    updated = await repo.get(request.id)
    await append_event(
        ctx,
        type=EVENT_RECORD_REQUEST_RECORDED,
        subject=Subject(SUBJECT_KIND, request.id),
        seq=updated.version,
        principal=principal,
        station=activity.station_id,
        division=activity.township,
        data={
            "request_id": request.id,
            "activity_id": activity.id,
            "volunteer_id": request.volunteer_id,
            "attendance_id": attendance.id,
            "hours": attendance.hours,
        },
    )
    return updated


async def has_open_request(ctx: Context, activity_id: str, volunteer_id: str) -> bool:
    """Whether the volunteer asked for this activity's service to be recorded and awaits the answer."""
    return await RecordRequestsRepository(ctx.db).find_open(activity_id, volunteer_id) is not None
