"""Volunteer tasks made from cases: an activity that serves one case."""

from __future__ import annotations

from typing import Any

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
from service.volunteers.models import (
    Activity,
)
from service.volunteers.repository.activities import ActivitiesRepository


async def task_from_case(*, ctx: Context, principal: Principal, case_id: str, data: dict[str, Any]) -> Activity:
    """Turn a case (a home visit, an errand) into a volunteer task; the case's history notes it."""
    require_role(
        principal,
        (*STATION_STAFF_ROLES, "admin"),
        code="not_allowed",
        detail="Station staff turn cases into volunteer tasks.",
    )
    case = await case_queries.get_case(ctx=ctx, principal=principal, case_id=case_id)
    if "note" not in case.get("allowed_actions", []):
        raise InvalidStateError("case_not_open", "Only an open case of your station can become a volunteer task.")
    if principal.role in STATION_STAFF_ROLES and case.get("station_id") != principal.station_id:
        raise PermissionDeniedError("other_station", "The case is not your station's.")
    service = case.get("service") or {}
    body = {
        "scenario": service.get("scenario") or "community",
        "content": data.get("content") or case.get("description") or service.get("name_zh") or "",
        "station_id": case.get("station_id"),
        **{k: v for k, v in data.items() if v is not None},
    }
    if not str(body["content"]).strip():
        body["content"] = body["title"]
    activity = await publish_activity(ctx=ctx, principal=principal, data=body, case_id=case_id)
    try:
        await case_actions.act(
            ctx=ctx,
            principal=principal,
            case_id=case_id,
            action="note",
            data=ActionInput(text=f"已转为志愿服务任务 (volunteer task): {activity.title} [{activity.id}]"),
        )
    except Exception:
        await ActivitiesRepository(ctx.db).delete(activity.id)  # nothing half-written
        raise
    return activity
