"""Volunteer attendance: one record per activity and volunteer, changed only at the version read,
its history appended with every change, a volunteer's records in check-in order.

Records are made by the organiser's recording and hour confirmation (the volunteers service);
the repository is then read and driven directly.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from service.common.context import Context
from service.common.errors import ConflictError, InvalidStateError, NotFoundError
from service.common.ids import is_id
from service.common.models import utcnow
from service.volunteers import attendance as volunteer_attendance
from service.volunteers import hours, signups
from service.volunteers.inputs import AttendanceInput
from service.volunteers.models import Activity, Attendance, HistoryEntry, VolunteerScope
from service.volunteers.repository.attendance import AttendanceRepository
from tests.factories import (
    Who,
    make_activity,
    make_confirmed_volunteer,
    make_staff,
    make_station,
    principal_of,
)

HOUR = timedelta(hours=1)
SECOND_CODE = "341002002"


def whole_second_now() -> datetime:
    """Now, in whole seconds: the store keeps milliseconds, so values read back equal the ones written."""
    return utcnow().replace(microsecond=0)


async def record(
    ctx: Context, organiser: Who, activity: Activity, volunteer_id: str, *, start: datetime, end: datetime
) -> Attendance:
    """The organiser records a volunteer's attendance from ``start`` to ``end``."""
    return await volunteer_attendance.record_attendance(
        ctx=ctx,
        principal=principal_of(organiser),
        activity_id=activity.id,
        data=AttendanceInput(volunteer_id=volunteer_id, check_in_at=start, check_out_at=end),
    )


async def test_a_recorded_attendance_reads_back_as_written_and_a_second_record_conflicts(ctx: Context) -> None:
    now = whole_second_now()
    ctx.clock = lambda: now
    organiser = await make_staff(ctx)
    activity = await make_activity(ctx, organiser, start_at=now - 2 * HOUR, end_at=now + HOUR)
    _, volunteer = await make_confirmed_volunteer(ctx, activity, organiser)
    _, absent = await make_confirmed_volunteer(ctx, activity, organiser)
    made = await record(ctx, organiser, activity, volunteer.id, start=now - 2 * HOUR, end=now)
    repo = AttendanceRepository(ctx.db)
    got = await repo.get(made.id)
    assert got == made and is_id(got.id)
    assert (got.status, got.method, got.hours, got.version) == ("checked_out", "organiser", 2.0, 1)
    assert got.check_in_at == now - 2 * HOUR and got.check_in_at.tzinfo is not None  # type: ignore[union-attr]
    [entry] = got.history
    assert entry.action == "recorded" and entry.changes["check_out_at"] == {"old": None, "new": now}
    assert entry.at.utcoffset() == timedelta(0) and entry.by.subject == organiser.id
    assert await repo.find(activity.id, volunteer.id) == made
    assert await repo.find(activity.id, absent.id) is None
    with pytest.raises(ConflictError) as exc:  # the same volunteer at the same activity again
        await record(ctx, organiser, activity, volunteer.id, start=now - HOUR, end=now)
    assert exc.value.code == "already_checked_in"
    assert [a.id for a in await repo.for_activity(activity.id)] == [made.id]
    with pytest.raises(NotFoundError) as nf:
        await repo.get(activity.id)
    assert nf.value.code == "attendance_not_found"


async def test_a_change_at_a_stale_version_is_refused_and_of_concurrent_changes_one_wins(ctx: Context) -> None:
    now = whole_second_now()
    ctx.clock = lambda: now
    organiser = await make_staff(ctx)
    activity = await make_activity(ctx, organiser, start_at=now - 2 * HOUR, end_at=now + HOUR)
    _, volunteer = await make_confirmed_volunteer(ctx, activity, organiser)
    made = await record(ctx, organiser, activity, volunteer.id, start=now - 2 * HOUR, end=now)
    by = made.history[0].by

    def correction(hours_: float) -> HistoryEntry:
        return HistoryEntry(
            at=now, by=by, action="corrected", changes={"hours": {"old": 2.0, "new": hours_}}, reason=f"更正为 {hours_}"
        )

    repo = AttendanceRepository(ctx.db)
    tries = (1.0, 1.5, 0.5)
    won = await asyncio.gather(*(repo.apply(made.id, version=1, sets={"hours": h}, entry=correction(h)) for h in tries))
    assert sorted(won) == [False, False, True]
    [winner] = [h for h, ok in zip(tries, won, strict=True) if ok]
    after = await repo.get(made.id)
    assert (after.hours, after.version) == (winner, 2)
    assert after.history == (made.history[0], correction(winner))  # the losers left no trace
    assert not await repo.apply(made.id, version=1, sets={"hours": 0.25}, entry=correction(0.25))  # read before
    assert await repo.get(made.id) == after
    assert await repo.apply(made.id, version=2, sets={"hours": 0.25}, entry=correction(0.25))
    assert [e.changes["hours"]["new"] for e in (await repo.get(made.id)).history[1:]] == [winner, 0.25]
    assert not await repo.apply(activity.id, version=1, sets={"hours": 1.0}, entry=correction(1.0))  # no such record


async def test_concurrent_hour_confirmations_confirm_once(ctx: Context) -> None:
    now = whole_second_now()
    ctx.clock = lambda: now
    organiser = await make_staff(ctx)
    activity = await make_activity(ctx, organiser, start_at=now - 2 * HOUR, end_at=now + HOUR)
    _, volunteer = await make_confirmed_volunteer(ctx, activity, organiser)
    made = await record(ctx, organiser, activity, volunteer.id, start=now - 2 * HOUR, end=now)

    async def confirm() -> str:
        try:
            await hours.confirm_hours(ctx=ctx, principal=principal_of(organiser), attendance_id=made.id)
        except (ConflictError, InvalidStateError) as exc:  # lost the race, or read the confirmed record
            return exc.code
        return "confirmed"

    outcomes = await asyncio.gather(*(confirm() for _ in range(4)))
    assert outcomes.count("confirmed") == 1
    assert set(outcomes) - {"confirmed"} <= {"attendance_changed", "hours_already_confirmed"}
    after = await AttendanceRepository(ctx.db).get(made.id)
    assert (after.status, after.version, [e.action for e in after.history]) == (
        "confirmed",
        2,
        ["recorded", "confirmed"],
    )


async def test_a_volunteers_records_come_in_check_in_order_filtered_by_status_and_station(ctx: Context) -> None:
    now = whole_second_now()
    clock = [now]
    ctx.clock = lambda: clock[0]
    organiser = await make_staff(ctx)
    elsewhere = await make_station(ctx, code=SECOND_CODE, name="老街街道社工站", point=(118.33, 29.71))
    other_organiser = await make_staff(ctx, station_id=elsewhere.id)
    early = await make_activity(ctx, organiser, start_at=now - 2 * HOUR, end_at=now + HOUR)
    late = await make_activity(ctx, other_organiser, start_at=now + 3 * HOUR, end_at=now + 5 * HOUR)
    resident, volunteer = await make_confirmed_volunteer(ctx, early, organiser)
    signup = await signups.sign_up(ctx=ctx, principal=principal_of(resident), activity_id=late.id)
    await signups.decide_signup(
        ctx=ctx, principal=principal_of(other_organiser), signup_id=signup.id, decision="confirm"
    )
    clock[0] = now + 5 * HOUR + timedelta(minutes=30)
    # The later service is recorded first: the order is the check-in time's, not the record's.
    second = await record(ctx, other_organiser, late, volunteer.id, start=now + 3 * HOUR, end=now + 5 * HOUR)
    first = await record(ctx, organiser, early, volunteer.id, start=now - 2 * HOUR, end=now)
    assert first.id > second.id
    repo = AttendanceRepository(ctx.db)
    assert [a.id for a in await repo.for_volunteer(volunteer.id)] == [first.id, second.id]
    assert [a.id for a in await repo.for_volunteer(volunteer.id, station_id=elsewhere.id)] == [second.id]
    assert await repo.for_volunteer(volunteer.id, status="confirmed") == []
    await hours.confirm_hours(ctx=ctx, principal=principal_of(other_organiser), attendance_id=second.id)
    assert [a.id for a in await repo.for_volunteer(volunteer.id, status="confirmed")] == [second.id]
    assert [a.id for a in await repo.for_volunteer(volunteer.id, status="checked_out")] == [first.id]
    assert [a.id async for a in repo.confirmed(volunteer_id=volunteer.id)] == [second.id]
    assert [a.id async for a in repo.confirmed(VolunteerScope(station_id=organiser.station_id))] == []
    assert await repo.for_volunteer(resident.id) == []  # an account id is not a volunteer id
    assert all(a.check_in_at and a.check_in_at.tzinfo == UTC for a in await repo.for_volunteer(volunteer.id))
