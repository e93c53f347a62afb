"""Attendance: check-in codes, checking in and out by code, attendance recorded by organisers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from service.common.context import Context
from service.common.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationFailedError,
)
from service.common.ids import new_id
from service.common.models import Principal
from service.volunteers import record_requests, rules
from service.volunteers.access import CHECKIN_GRACE, actor_of, aware, can_see_station, my_volunteer, require_organiser
from service.volunteers.inputs import AttendanceInput
from service.volunteers.models import (
    Activity,
    Attendance,
    CheckinCode,
    HistoryEntry,
    IssuedCode,
)
from service.volunteers.repository.activities import ActivitiesRepository, SignupsRepository
from service.volunteers.repository.attendance import AttendanceRepository, history_doc
from service.volunteers.repository.people import VolunteersRepository

# ---------------------------------------------------------------- attendance


async def issue_checkin_code(*, ctx: Context, principal: Principal, activity_id: str, purpose: str) -> IssuedCode:
    """A short-lived signed code for the organiser's screen (the QR code volunteers scan)."""
    activity = await ActivitiesRepository(ctx.db).get(activity_id)
    await require_organiser(ctx, principal, activity)
    if activity.status != "published":
        raise InvalidStateError("activity_not_open", "The activity is cancelled.")
    code = rules.make_checkin_code(
        activity_id=activity.id, purpose=purpose, now=ctx.now(), ttl_seconds=ctx.settings.volunteer_checkin_code_seconds
    )
    key = rules.code_key(ctx.settings.data_key_bytes)
    text = rules.sign_checkin_code(key, code)
    window = rules.code_window(ctx.now(), ctx.settings.volunteer_checkin_code_seconds)
    short = rules.short_checkin_code(key, activity_id=activity.id, purpose=purpose, window=window)
    return IssuedCode(code=text, purpose=purpose, expires_at=code.expires_at, activity_id=activity.id, short_code=short)


async def check_overlap(
    ctx: Context, volunteer_id: str, start: datetime, end: datetime, *, except_activity: str
) -> None:
    """Refuse attendance that overlaps the volunteer's attendance at another activity."""
    for other in await AttendanceRepository(ctx.db).for_volunteer(volunteer_id):
        if other.activity_id == except_activity or other.check_in_at is None:
            continue
        other_end = other.check_out_at
        if other_end is None:  # still checked in there: it runs until that activity's end
            other_end = (await ActivitiesRepository(ctx.db).get(other.activity_id)).end_at
        if rules.overlaps(start, end, other.check_in_at, other_end):
            raise ConflictError(
                "attendance_overlap",
                "The volunteer was recorded at another activity at the same time.",
                other_activity_id=other.activity_id,
            )


SHORT_CODE_TRIES = 10  # wrong typed codes a volunteer may send in SHORT_CODE_TRIES_WINDOW
SHORT_CODE_TRIES_WINDOW = 600


async def _typed_code(ctx: Context, volunteer_id: str, code: str, activity_id: str | None) -> CheckinCode:
    """The typed 6-character code of ``activity_id`` as a check-in code (its window is the nonce).

    Wrong guesses are counted per volunteer, so the 887 million codes cannot be tried one by one.
    """
    if not activity_id:
        detail = "A typed code needs the activity it belongs to (activity_id)."
        raise ValidationFailedError("checkin_code_invalid", detail, errors={"activity_id": [detail]})
    tries_key = ctx.key("volunteer-code-tries", volunteer_id)
    tries = int(await ctx.redis.get(tries_key) or 0)
    if tries >= SHORT_CODE_TRIES:
        ttl = await ctx.redis.ttl(tries_key)
        raise RateLimitedError(
            "checkin_code_tries", "Too many wrong codes; scan the QR code or wait a few minutes.", retry_after=ttl
        )
    activity = await ActivitiesRepository(ctx.db).get(activity_id)
    step = ctx.settings.volunteer_checkin_code_seconds
    try:
        purpose, window = rules.verify_short_code(
            rules.code_key(ctx.settings.data_key_bytes), code, activity_id=activity.id, now=ctx.now(), step_seconds=step
        )
    except rules.CodeProblem:
        tries = await ctx.redis.incr(tries_key)
        if tries == 1:
            await ctx.redis.expire(tries_key, SHORT_CODE_TRIES_WINDOW)
        raise
    return CheckinCode(
        activity_id=activity.id,
        purpose=purpose,
        nonce=f"{activity.id}-w{window}-{purpose}",
        expires_at=datetime.fromtimestamp((window + 2) * step, UTC),
    )


async def check_in_by_code(
    *, ctx: Context, principal: Principal, code: str, activity_id: str | None = None
) -> Attendance:
    """A volunteer scans the organiser's code (or types its 6-character form) to check in or out.

    Each code works once per volunteer, while fresh; a typed code names its activity.
    """
    volunteer = await my_volunteer(ctx, principal)
    now = ctx.now()
    try:
        if code.strip().startswith("v1."):
            parsed = rules.verify_checkin_code(rules.code_key(ctx.settings.data_key_bytes), code, now=now)
        else:
            parsed = await _typed_code(ctx, volunteer.id, code, activity_id)
    except rules.CodeProblem as problem:
        if problem.code == "checkin_code_expired":
            raise InvalidStateError("checkin_code_expired", problem.detail) from None
        raise ValidationFailedError("checkin_code_invalid", problem.detail, errors={"code": [problem.detail]}) from None
    if activity_id and parsed.activity_id != activity_id:
        detail = "This code belongs to another activity."
        raise ValidationFailedError("checkin_code_invalid", detail, errors={"code": [detail]})
    activity = await ActivitiesRepository(ctx.db).get(parsed.activity_id)
    signup = await SignupsRepository(ctx.db).find(activity.id, volunteer.id)
    if signup is None or signup.status != "confirmed":
        raise PermissionDeniedError("not_confirmed", "Only volunteers confirmed for this activity can check in.")
    if activity.status != "published":
        raise InvalidStateError("activity_not_open", "The activity is cancelled.")
    ttl = int((parsed.expires_at - now).total_seconds()) + 5
    used_key = ctx.key("volunteer-code", parsed.nonce, volunteer.id)
    if not await ctx.redis.set(used_key, "1", nx=True, ex=max(ttl, 1)):
        raise ConflictError("checkin_code_used", "This code was already used; scan the code on the screen again.")
    attendance_repo = AttendanceRepository(ctx.db)
    if parsed.purpose == "in":
        if now < activity.start_at - CHECKIN_GRACE or now > activity.end_at:
            raise InvalidStateError(
                "outside_activity_time", "Check-in opens 1 hour before the start and closes at the end."
            )
        await check_overlap(ctx, volunteer.id, now, activity.end_at, except_activity=activity.id)
        entry = HistoryEntry(
            at=now, by=actor_of(principal), action="check_in", changes={"check_in_at": {"old": None, "new": now}}
        )
        return await attendance_repo.insert(
            _attendance_doc(activity, volunteer.id, check_in=now, check_out=None, method="code", entry=entry)
        )
    current = await attendance_repo.find(activity.id, volunteer.id)
    if current is None or current.status != "checked_in" or current.check_in_at is None:
        raise InvalidStateError("not_checked_in", "Check in first; a check-out needs an open check-in.")
    if now > activity.end_at + CHECKIN_GRACE:
        raise InvalidStateError("outside_activity_time", "Check-out closes 1 hour after the end; ask the organiser.")
    hours = rules.attended_hours(current.check_in_at, now, activity.start_at, activity.end_at)
    entry = HistoryEntry(
        at=now,
        by=actor_of(principal),
        action="check_out",
        changes={"check_out_at": {"old": None, "new": now}, "hours": {"old": None, "new": hours}},
    )
    sets = {"check_out_at": now, "hours": hours, "status": "checked_out", "updated_at": now}
    if not await attendance_repo.apply(current.id, version=current.version, sets=sets, entry=entry):
        raise ConflictError("attendance_changed", "The record changed at the same moment; try again.")
    return await attendance_repo.get(current.id)


def _attendance_doc(
    activity: Activity,
    volunteer_id: str,
    *,
    check_in: datetime,
    check_out: datetime | None,
    method: str,
    entry: HistoryEntry,
) -> dict[str, Any]:
    hours = (
        rules.attended_hours(check_in, check_out, activity.start_at, activity.end_at) if check_out is not None else None
    )
    return {
        "_id": new_id(),
        "activity_id": activity.id,
        "volunteer_id": volunteer_id,
        "station_id": activity.station_id,
        "township": activity.township,
        "check_in_at": check_in,
        "check_out_at": check_out,
        "method": method,
        "hours": hours,
        "status": "checked_in" if check_out is None else "checked_out",
        "evaluation": None,
        "history": [history_doc(entry)],
        "version": 1,
        "created_at": entry.at,
        "updated_at": entry.at,
    }


async def record_attendance(
    *, ctx: Context, principal: Principal, activity_id: str, data: AttendanceInput
) -> Attendance:
    """The organiser records a volunteer's attendance (confirmation by the organiser, for those without a phone).

    Also how an open request for a missing record (补录申请) is granted: recording closes it. A volunteer
    who asked may be recorded though their sign-up was never confirmed (they took part anyway).
    """
    activity = await ActivitiesRepository(ctx.db).get(activity_id)
    await require_organiser(ctx, principal, activity)
    volunteer_id = data.volunteer_id
    signup = await SignupsRepository(ctx.db).find(activity.id, volunteer_id)
    asked = signup is not None and await record_requests.has_open_request(ctx, activity.id, volunteer_id)
    if signup is None or (signup.status != "confirmed" and not asked):
        raise ValidationFailedError(
            "unknown_volunteer",
            "Not a volunteer confirmed for this activity.",
            errors={"volunteer_id": ["Not a volunteer confirmed for this activity."]},
        )
    check_in, check_out = aware(data.check_in_at), aware(data.check_out_at)
    if check_out > ctx.now() + timedelta(minutes=5):
        raise ValidationFailedError(
            "invalid_attendance_time",
            "Must not be in the future.",
            errors={"check_out_at": ["Must not be in the future."]},
        )
    rules.check_attendance_window(
        check_in, check_out, start=activity.start_at, end=activity.end_at, grace=CHECKIN_GRACE
    )
    await check_overlap(ctx, volunteer_id, check_in, check_out, except_activity=activity.id)
    entry = HistoryEntry(
        at=ctx.now(),
        by=actor_of(principal),
        action="recorded",
        changes={"check_in_at": {"old": None, "new": check_in}, "check_out_at": {"old": None, "new": check_out}},
    )
    attendance = await AttendanceRepository(ctx.db).insert(
        _attendance_doc(activity, volunteer_id, check_in=check_in, check_out=check_out, method="organiser", entry=entry)
    )
    await record_requests.settle_by_record(ctx, principal, activity, attendance)
    return attendance


async def list_attendance(*, ctx: Context, principal: Principal, activity_id: str) -> list[Attendance]:
    """An activity's attendance (its organisers and supervisors)."""
    activity = await ActivitiesRepository(ctx.db).get(activity_id)
    if not (principal.role == "supervisor" and can_see_station(principal, activity.station_id, activity.township)):
        await require_organiser(ctx, principal, activity)
    return await AttendanceRepository(ctx.db).for_activity(activity_id)


async def get_attendance(*, ctx: Context, principal: Principal, attendance_id: str) -> Attendance:
    """One attendance record with its history (the volunteer, the organisers, supervisors)."""
    attendance = await AttendanceRepository(ctx.db).get(attendance_id)
    if principal.role == "resident":
        me = await VolunteersRepository(ctx.db).by_resident(principal.subject)
        if me is not None and me.id == attendance.volunteer_id:
            return attendance
    activity = await ActivitiesRepository(ctx.db).get(attendance.activity_id)
    if principal.role == "supervisor" and can_see_station(principal, activity.station_id, activity.township):
        return attendance
    try:
        await require_organiser(ctx, principal, activity)
    except PermissionDeniedError:
        raise NotFoundError("attendance_not_found", f"There is no attendance record {attendance_id!r}.") from None
    return attendance


async def change_attendance(
    ctx: Context, attendance: Attendance, *, sets: dict[str, Any], entry: HistoryEntry
) -> Attendance:
    repo = AttendanceRepository(ctx.db)
    if not await repo.apply(
        attendance.id, version=attendance.version, sets={**sets, "updated_at": entry.at}, entry=entry
    ):
        raise ConflictError("attendance_changed", "Someone changed this record at the same moment; reload it.")
    return await repo.get(attendance.id)
