"""Volunteer tasks made from cases: an activity that serves one case."""

from __future__ import annotations

from service.cases import actions as case_actions
from service.cases import queries as case_queries
from service.cases.inputs import ActionInput
from service.common.context import Context
from service.common.errors import (
    InvalidStateError,
    PermissionDeniedError,
)
from service.common.models import STATION_STAFF_ROLES, Principal, require_role
from service.volunteers.activities import publish_activity
from service.volunteers.inputs import ActivityInput, TaskFromCase
from service.volunteers.models import (
    Activity,
)
from service.volunteers.repository.activities import ActivitiesRepository


async def task_from_case(*, ctx: Context, principal: Principal, data: TaskFromCase) -> Activity:
    """Turn a case (a home visit, an errand) into a volunteer task; the case's history notes it."""
    require_role(
        principal,
        (*STATION_STAFF_ROLES, "admin"),
        code="not_allowed",
        detail="Station staff turn cases into volunteer tasks.",
    )
    case = await case_queries.get_case(ctx=ctx, principal=principal, case_id=data.case_id)
    if "note" not in case.get("allowed_actions", []):
        raise InvalidStateError("case_not_open", "Only an open case of your station can become a volunteer task.")
    if principal.role in STATION_STAFF_ROLES and case.get("station_id") != principal.station_id:
        raise PermissionDeniedError("other_station", "The case is not your station's.")
    service = case.get("service") or {}
    content = data.content if data.content is not None else case.get("description") or service.get("name_zh") or ""
    body = ActivityInput(
        title=data.title,
        scenario=service.get("scenario") or "community",
        content=content if str(content).strip() else data.title,
        start_at=data.start_at,
        end_at=data.end_at,
        slots=data.slots,
        skills_wanted=data.skills_wanted,
        location=data.location,
        team_id=data.team_id,
        station_id=case.get("station_id"),
    )
    activity = await publish_activity(ctx=ctx, principal=principal, data=body, case_id=data.case_id)
    try:
        await case_actions.act(
            ctx=ctx,
            principal=principal,
            case_id=data.case_id,
            action="note",
            data=ActionInput(text=f"已转为志愿服务任务 (volunteer task): {activity.title} [{activity.id}]"),
        )
    except Exception:
        await ActivitiesRepository(ctx.db).delete(activity.id)  # nothing half-written
        raise
    return activity
