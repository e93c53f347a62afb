"""Acting on a case (POST /cases/{id}/{action}): the plan of each action and its conditional write."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Mapping
from datetime import datetime
from typing import Any

from service.cases import lifecycle, states
from service.cases.access import access_of, case_facts, ensure_visible
from service.cases.changes import adjust_load, event_doc, history_entry, station_placement
from service.cases.inputs import ActionInput
from service.cases.models import Case, CaseChange, region_codes
from service.cases.repository.cases import CasesRepository
from service.cases.repository.events import EventsRepository
from service.cases.views import CaseView, view
from service.common import worktime
from service.common.context import Context
from service.common.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from service.common.models import Principal
from service.identity import directory
from service.stations import routing
from service.stations import service as stations
from service.storage.transactions import in_transaction
from service.uploads import service as uploads

MAX_RETURNS = 2


async def act(
    *,
    ctx: Context,
    principal: Principal,
    case_id: str,
    action: str,
    data: ActionInput,
    ready: Awaitable[None] | None = None,
) -> CaseView:
    """Perform one lifecycle action; exactly one of several concurrent actions wins, the rest get 409.

    ``ready``: the check of the caller's token still under way (it raises for a revoked one),
    awaited once the case is read and before anything is checked, looked up or written.
    """
    repo = CasesRepository(ctx.db)
    try:
        case = await repo.get(case_id)
    finally:
        if ready is not None:
            await ready
    rel = ensure_visible(principal, case)
    now = ctx.now()
    # State before relationship: when a colleague has just signed for the case, "already
    # accepted" (409) is the answer that tells this caller what happened.
    transition = lifecycle.check_transition(case.status, action, principal.role)
    lifecycle.check_transition(case.status, action, principal.role, rel, case_facts(case, now))
    lifecycle.check_fields(action, data)
    if data.expected_version is not None and data.expected_version != case.version:
        raise ConflictError(
            "case_changed", "The case changed since you read it; reload and try again.", current_version=case.version
        )
    plan = await _plan(ctx, principal, case, action, data, now)
    to_state = plan.to_state or transition.target(case.status)
    event_type = plan.event_type or transition.event
    sets = {**plan.fields, "status": to_state, "updated_at": now}
    # The events name the case where the change leaves it.
    post = dataclasses.replace(case.ref, **{k: sets[k] for k in ("station_id", "division") if k in sets})
    seq = case.version + 1
    event = event_doc(
        post,
        seq=seq,
        event_type=event_type,
        actor=principal,
        from_state=case.status,
        to_state=to_state,
        now=now,
        data=plan.event_data,
    )
    events = [event]
    if to_state == "unrouted" and case.status != "unrouted":
        events.append(
            event_doc(
                post,
                seq=seq,
                event_type=states.EVENT_UNROUTED,
                actor=principal,
                from_state=case.status,
                to_state=to_state,
                now=now,
                data=plan.event_data,
            )
        )
    entry = history_entry(
        event_id=event.id,
        action=action,
        actor=principal,
        from_state=case.status,
        to_state=to_state,
        now=now,
        note=plan.note,
        data=plan.event_data,
    )

    async def write(session: Any) -> Case | None:
        # The case as this change leaves it comes from the copy read above, not from a read back.
        changed = await repo.apply_to_read(
            case, fields=sets, increments=plan.increments, history=entry, session=session
        )
        if changed is not None:
            await EventsRepository(ctx.db).append(*events, session=session)
        return changed

    fresh = await in_transaction(ctx, write)
    if fresh is None:
        raise ConflictError("case_changed", "Someone else acted on this case at the same moment; reload it.")
    await adjust_load(ctx, list(plan.load))
    return view(fresh, principal, access_of(principal, fresh.parties), now)


def manual_routing(previous: Mapping[str, Any], target: Any, principal: Principal, now: datetime) -> dict[str, Any]:
    """Pure: the routing record after a dispatch by hand: where the case went, who sent it and when,
    with the system's own decision kept under ``system`` (the first one, across repeated dispatches)."""
    system = previous.get("system") or {
        k: v for k, v in previous.items() if k not in ("dispatched_at", "dispatched_by")
    }
    return {
        "method": "manual",
        "station_id": target.id,
        "station_code": target.code,
        "station_name": target.name,
        "county_code": target.county_code,
        "distance_km": None,
        "candidates": list(previous.get("candidates") or []),
        "excluded": list(previous.get("excluded") or []),
        "reason": f"人工派单：{target.name} (manual dispatch by the {principal.role}: {target.name})",
        "dispatched_at": now,
        "dispatched_by": {"role": principal.role},
        "in_service_area": True,
        "system": system,
    }


async def _works_at(ctx: Context, staff_id: str, station_id: str | None) -> bool:
    """True if the staff member is an active worker or head of that station."""
    try:
        member = await directory.staff_member(ctx=ctx, staff_id=staff_id)
    except NotFoundError:
        return False
    return (
        bool(station_id)
        and member.active
        and member.station_id == station_id
        and member.role in ("worker", "station_head")
    )


async def _check_result_photos(ctx: Context, principal: Principal, case: Case, photos: list[str]) -> list[str]:
    """The photos a resolution shows: uploads by the resolver, or already on this case; 422 ``unknown_photo`` else."""
    wanted = list(dict.fromkeys(photos))  # the same photo twice is shown once
    refused = []
    for upload_id in wanted:
        if upload_id in case.photos:
            continue
        try:
            upload = await uploads.get_upload(ctx=ctx, principal=principal, upload_id=upload_id)
        except NotFoundError:
            refused.append(upload_id)
            continue
        if upload.owner != principal.subject:
            # Someone else's upload is not evidence of this handling: the same answer as an unknown id.
            refused.append(upload_id)
    if refused:
        raise ValidationFailedError(
            "unknown_photo",
            "Some photos were not found among your uploads; upload them first (POST /api/v1/uploads).",
            errors={"photos": [f"Unknown upload id {m!r}." for m in refused]},
        )
    return wanted


async def _plan(
    ctx: Context, principal: Principal, case: Case, action: str, data: ActionInput, now: datetime
) -> CaseChange:
    """What an action changes, beyond the status: pure except for routing and staff look-ups.

    The action's required fields were checked by ``lifecycle.check_fields`` before this runs.
    """
    station = case.placement.station_id
    if action == "accept":
        late = now > case.sign_due_at
        return CaseChange(
            fields={
                "accepted_at": now,
                "signed_late": late,
                # Whoever signs for a case holds it, a station head included, until it is assigned on.
                "assignee_id": case.assignee_id or principal.subject,
                "next_due_at": case.resolve_due_at,
            },
            event_data={"signed_late": late},
        )
    if action == "return":
        reason = data.reason
        returned = [*case.returned_by, station] if station else list(case.returned_by)
        count = case.return_count + 1
        load = [(station, -1)] if station else []
        if count >= MAX_RETURNS:
            decision = routing.RoutingDecision(
                method="unrouted",
                station_id=None,
                station_code=None,
                station_name=None,
                county_code=case.placement.county_code,
                distance_km=None,
                candidates=(),
                excluded=tuple(returned),
                reason=f"已退单 {count} 次，转县区民政部门人工派单 (returned {count} times: queued for the county "
                "supervisor to dispatch by hand)",
            )
        else:
            decision = await routing.route_request(
                ctx=ctx,
                service_code=case.service.code,
                location=dict(case.location_input) if case.location_input is not None else None,
                division_code=case.division_code,
                exclude=frozenset(returned),
            )
            if decision.county_code is None:
                # No other station reaches the place: the county that held it keeps it in its queue.
                decision = dataclasses.replace(
                    decision,
                    county_code=case.placement.county_code,
                    reason="无其他可派社工站，转县区民政部门人工派单 (no other station can take it: queued for the "
                    "county supervisor to dispatch by hand)",
                )
        placement = station_placement(decision)
        if placement["station_id"]:
            load.append((placement["station_id"], +1))
        return CaseChange(
            to_state=placement.pop("status"),
            event_type="case.returned",
            note=reason,
            fields={
                **placement,
                "routing": decision.to_dict(),
                "returned_by": returned,
                "assignee_id": None,
                "accepted_at": None,
                "next_due_at": case.sign_due_at,
            },
            increments={"return_count": 1},
            load=load,
            event_data={
                "reason": reason,
                "returned_by_station": station,
                "next_station": placement["station_id"],
                "routing_method": decision.method,
            },
        )
    if action == "dispatch":
        station_id = str(data.station_id)  # required: checked by lifecycle.check_fields
        try:
            target = await stations.get_station(ctx=ctx, station_id=station_id)
        except NotFoundError:
            raise ValidationFailedError(
                "unknown_station", "No such station.", errors={"station_id": ["Unknown station."]}
            ) from None
        if not target.active:
            raise ValidationFailedError(
                "station_inactive", "That station is not active.", errors={"station_id": ["Station is inactive."]}
            )
        if principal.division_prefix and not target.code.startswith(principal.division_prefix):
            raise PermissionDeniedError("station_outside_division", "That station is outside your division.")
        load = [(target.id, +1)]
        if station:
            load.append((station, -1))
        return CaseChange(
            to_state="dispatched",
            note=data.note,
            load=load,
            fields={
                "station_id": target.id,
                "station_code": target.code,
                "station_name": target.name,
                "division": target.code,
                "county_code": target.county_code,
                **region_codes(target.code),
                "assignee_id": None,
                "routing": manual_routing(case.routing or {}, target, principal, now),
            },
            event_data={"station_id": target.id, "note": data.note},
        )
    if action == "assign":
        assignee = str(data.assignee_id)  # required: checked by lifecycle.check_fields
        if not await _works_at(ctx, assignee, station):
            raise ValidationFailedError(
                "assignee_not_at_station",
                "The assignee is not active staff of this station.",
                errors={"assignee_id": ["Not active staff of this station."]},
            )
        return CaseChange(fields={"assignee_id": assignee}, note=data.note, event_data={"assignee_id": assignee})
    if action == "start":
        return CaseChange(fields={"started_at": now}, note=data.note)
    if action == "schedule":
        at = data.scheduled_at
        return CaseChange(fields={"scheduled_at": at}, note=data.note, event_data={"scheduled_at": at})
    if action == "note":
        text = data.text
        return CaseChange(note=text, event_data={"text": text})
    if action == "request_extension":
        days = data.extra_days
        reason = data.reason
        return CaseChange(
            fields={
                "extension": {
                    "status": "requested",
                    "extra_days": days,
                    "reason": reason,
                    "requested_at": now,
                    "requested_by": principal.subject,
                }
            },
            note=reason,
            event_data={"extra_days": days, "reason": reason},
        )
    if action in ("approve_extension", "deny_extension"):
        ext = case.extension or {}
        if action == "deny_extension":
            return CaseChange(
                fields={"extension": {**ext, "status": "denied", "decided_at": now}},
                note=data.reason,
                event_data={"reason": data.reason},
            )
        clock = case.service.clock or "working"
        # Requests stored before the field took the API's name (extra_days) kept it as "days".
        new_due = worktime.add_days(case.resolve_due_at, int(ext.get("extra_days") or ext["days"]), clock)
        sets: dict[str, Any] = {
            "extension": {**ext, "status": "approved", "decided_at": now},
            "resolve_due_at": new_due,
            "overdue.resolve": False,
        }
        if case.status != "dispatched":
            sets["next_due_at"] = new_due
        return CaseChange(fields=sets, note=data.note, event_data={"resolve_due_at": new_due})
    if action == "resolve":
        result = data.result
        photos = await _check_result_photos(ctx, principal, case, list(data.photos))
        return CaseChange(
            fields={
                "resolved_at": now,
                "result": result,
                "result_photos": photos,
                "resolved_late": now > case.resolve_due_at,
                "next_due_at": None,
            },
            note=result,
            load=[(station, -1)] if station else [],
            event_data={"result": result, "photos": photos} if photos else {"result": result},
        )
    if action == "reopen":
        reason = data.reason
        return CaseChange(
            fields={
                "reopened_at": now,
                "resolved_at": None,
                "result": None,
                "result_photos": [],
                "next_due_at": case.resolve_due_at,
            },
            increments={"reopen_count": 1},
            note=reason,
            load=[(station, +1)] if station else [],
            event_data={"reason": reason},
        )
    if action == "rate":
        rating = data.rating
        return CaseChange(
            event_type="case.rated",
            fields={"rating": rating, "rating_comment": data.comment, "closed_at": now, "rated_at": now},
            note=data.comment,
            event_data={"rating": rating},
        )
    if action == "cancel":
        return CaseChange(
            fields={"cancelled_at": now, "next_due_at": None},
            note=data.reason,
            load=[(station, -1)] if station and case.status in ("dispatched", "accepted") else [],
            event_data={"reason": data.reason},
        )
    if action == "reject":
        reason = data.reason
        return CaseChange(
            fields={"rejected_at": now, "next_due_at": None},
            note=reason,
            load=[(station, -1)] if station else [],
            event_data={"reason": reason},
        )
    if action == "urge":
        return CaseChange(
            fields={"urged_at": now},
            increments={"urge_count": 1},
            note=data.note,
            event_data={"note": data.note},
        )
    raise BadRequestError("unknown_action", f"Unknown action {action!r}.")
