"""Sign-ups to activities: signing up, the organiser's decision, withdrawing, listing."""

from __future__ import annotations

from typing import Any

from service.common.context import Context
from service.common.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
)
from service.common.ids import new_id
from service.common.models import Principal
from service.volunteers import rules
from service.volunteers.access import CANCEL_BEFORE, can_see_station, is_team_organiser, my_volunteer, require_organiser
from service.volunteers.models import (
    Signup,
)
from service.volunteers.repository.activities import ActivitiesRepository, SignupsRepository
from service.volunteers.repository.attendance import AttendanceRepository

# ---------------------------------------------------------------- sign-up


async def sign_up(*, ctx: Context, principal: Principal, activity_id: str, note: str | None = None) -> Signup:
    """A volunteer signs up: pending the organiser's confirmation, or on the waiting list when full."""
    volunteer = await my_volunteer(ctx, principal)
    activity = await ActivitiesRepository(ctx.db).get(activity_id)
    now = ctx.now()
    if activity.status != "published" or activity.end_at <= now:
        raise InvalidStateError("activity_not_open", "This activity is not open for sign-up.")
    status = rules.signup_status(confirmed=activity.confirmed_count, slots=activity.slots, auto_confirm=False)
    return await SignupsRepository(ctx.db).insert(
        {
            "_id": new_id(),
            "activity_id": activity.id,
            "volunteer_id": volunteer.id,
            "status": status,
            "note": note,
            "created_at": now,
            "updated_at": now,
        }
    )


async def decide_signup(*, ctx: Context, principal: Principal, signup_id: str, decision: str) -> Signup:
    """The organiser confirms (if a slot is free) or declines a sign-up."""
    signups = SignupsRepository(ctx.db)
    activities = ActivitiesRepository(ctx.db)
    signup = await signups.get(signup_id)
    activity = await activities.get(signup.activity_id)
    await require_organiser(ctx, principal, activity)
    now = ctx.now()
    if decision == "decline":
        if not await signups.move(signup.id, expected=("pending", "waitlisted"), status="declined", now=now):
            raise InvalidStateError("signup_not_pending", "Only a pending or waiting sign-up can be declined.")
        return await signups.get(signup.id)
    if signup.status not in ("pending", "waitlisted"):
        raise InvalidStateError("signup_not_pending", "Only a pending or waiting sign-up can be confirmed.")
    if not await activities.take_slot(activity.id, slots=activity.slots, now=now):
        raise ConflictError("activity_full", "Every slot is taken; the sign-up stays on the waiting list.")
    if not await signups.move(signup.id, expected=("pending", "waitlisted"), status="confirmed", now=now):
        await activities.free_slot(activity.id, now)
        raise InvalidStateError("signup_not_pending", "The sign-up changed meanwhile; reload it.")
    return await signups.get(signup.id)


async def cancel_signup(*, ctx: Context, principal: Principal, signup_id: str) -> Signup:
    """The volunteer withdraws (a confirmed place only until 2 hours before the start); the first waiting moves up."""
    signups = SignupsRepository(ctx.db)
    signup = await signups.get(signup_id)
    me = await my_volunteer(ctx, principal)
    if signup.volunteer_id != me.id:
        raise NotFoundError("signup_not_found", f"There is no sign-up {signup_id!r}.")
    activity = await ActivitiesRepository(ctx.db).get(signup.activity_id)
    now = ctx.now()
    if signup.status == "confirmed" and activity.start_at - now < CANCEL_BEFORE:
        raise InvalidStateError(
            "cancellation_too_late",
            "A confirmed place can be given up until 2 hours before the start; call the organiser.",
        )
    if signup.status not in ("pending", "waitlisted", "confirmed") or not await signups.move(
        signup.id, expected=(signup.status,), status="cancelled", now=now
    ):
        raise InvalidStateError("signup_not_active", "This sign-up is no longer active.")
    if signup.status == "confirmed":
        await ActivitiesRepository(ctx.db).free_slot(activity.id, now)
        waiting = await signups.first_waiting(activity.id)
        if waiting is not None:
            await signups.move(waiting.id, expected=("waitlisted",), status="pending", now=now)
    return await signups.get(signup.id)


async def list_signups(*, ctx: Context, principal: Principal, activity_id: str) -> list[Signup]:
    """Sign-ups of an activity (its organisers), or the caller's own (a volunteer)."""
    activity = await ActivitiesRepository(ctx.db).get(activity_id)
    if principal.role == "resident" and not await is_team_organiser(ctx, principal, activity.team_id):
        me = await my_volunteer(ctx, principal)
        return [s for s in await SignupsRepository(ctx.db).for_activity(activity_id) if s.volunteer_id == me.id]
    if principal.role == "supervisor" and can_see_station(principal, activity.station_id, activity.township):
        return await SignupsRepository(ctx.db).for_activity(activity_id)
    await require_organiser(ctx, principal, activity)
    return await SignupsRepository(ctx.db).for_activity(activity_id)


async def my_signups(*, ctx: Context, principal: Principal) -> list[dict[str, Any]]:
    """The caller's sign-ups, newest first, each with its activity, the caller's attendance there and,
    while waiting, the place on the waiting list (what the resident app's 我的活动 shows)."""
    me = await my_volunteer(ctx, principal)
    signups = await SignupsRepository(ctx.db).for_volunteer(me.id)
    activities = await ActivitiesRepository(ctx.db).many([s.activity_id for s in signups])
    attendance = {a.activity_id: a for a in await AttendanceRepository(ctx.db).for_volunteer(me.id)}
    out: list[dict[str, Any]] = []
    for signup in signups:
        activity = activities.get(signup.activity_id)
        if activity is None:
            continue
        position = None
        if signup.status == "waitlisted":
            position = await SignupsRepository(ctx.db).waiting_ahead(activity.id, signup.id) + 1
        out.append(
            {
                **{f: getattr(signup, f) for f in ("id", "activity_id", "volunteer_id", "status", "note")},
                "created_at": signup.created_at,
                "updated_at": signup.updated_at,
                "activity": activity,
                "attendance": attendance.get(activity.id),
                "waiting_position": position,
            }
        )
    return out
