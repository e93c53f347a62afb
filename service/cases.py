"""Cases (工单): submitting, following and acting on requests, with time limits and KPIs.

A case is one document; every state change is a conditional update on the case's expected
status and version (so of two concurrent actions exactly one wins) written in the same
transaction as its event document (the outbox that webhooks and notifications read).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from datetime import datetime, timedelta
from typing import Any

from service import case_privacy, catalog, geo, lifecycle, pii, routing, stations, uploads, worktime
from service.case_access import Access, access_of
from service.case_numbers import next_case_number
from service.context import Context
from service.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from service.ids import new_id
from service.loops import pause
from service.models import Page, Principal
from service.storage.audit import AuditRepository
from service.storage.cases import CasesRepository
from service.storage.events import CaseEvent, EventsRepository
from service.storage.idempotency import record_id
from service.storage.residents import ResidentsRepository
from service.storage.staff import StaffRepository
from service.storage.transactions import in_transaction

log = logging.getLogger("huimin.cases")

REOPEN_WINDOW = timedelta(days=7)
AUTO_CLOSE_AFTER = timedelta(days=7)
MAX_RETURNS = 2
DIVISION_PROVINCE = "340000"


# ---------------------------------------------------------------- who is the caller to this case


def lifecycle_relationship(principal: Principal, access: Access, case: dict[str, Any]) -> lifecycle.Relationship:
    """The lifecycle table's view of the caller: owner, at station, assignee, division."""
    return lifecycle.Relationship(
        owner=access.owner or (principal.is_client and access.creator),
        at_station=access.station,
        assignee=access.assignee,
        assigned=bool(case.get("assignee_id")),
        covers_division=access.division,
    )


def case_facts(case: dict[str, Any], now: datetime) -> lifecycle.CaseFacts:
    """What the lifecycle table's guards need to know about this case now."""
    return lifecycle.CaseFacts(
        extension_pending=(case.get("extension") or {}).get("status") == "requested",
        within_reopen_window=_within_reopen_window(case, now),
    )


def allowed_actions(principal: Principal, access: Access, case: dict[str, Any], now: datetime) -> list[str]:
    """What the caller may do next on this case: exactly the actions that would succeed now."""
    return lifecycle.allowed_actions(
        case["status"], principal.role, lifecycle_relationship(principal, access, case), case_facts(case, now)
    )


def _ensure_visible(principal: Principal, case: dict[str, Any]) -> Access:
    rel = access_of(principal, case)
    if not rel.can_view:
        # Same answer as a missing case: do not reveal that the id exists.
        raise NotFoundError("case_not_found", f"No case with id {case['_id']!r}.")
    return rel


# ---------------------------------------------------------------- output view


def view(
    case: dict[str, Any], principal: Principal, rel: Access, now: datetime, *, with_history: bool = True
) -> dict[str, Any]:
    """The case as this caller may see it: one privacy rule (``case_privacy``) for every personal field."""
    hidden = ("_id", "history", "contact", "served_person", "answers_secure", "personal")
    out = {k: v for k, v in case.items() if k not in hidden}
    out["id"] = case["_id"]
    seen = case_privacy.disclosure(rel, case)
    hide_reporter = not seen.reporter
    out["contact"] = case_privacy.shown_contact(case, seen)
    if hide_reporter:
        out["created_by"] = {"role": (case.get("created_by") or {}).get("role")}
    out["served_person"] = case_privacy.shown_served_person(case, seen)
    out["answers"] = case_privacy.shown_answers(case, seen)
    out["allowed_actions"] = allowed_actions(principal, rel, case, now)
    out["status_label"] = lifecycle.STATE_LABELS.get(case["status"])
    if with_history:
        out["history"] = [_history_view(h, hide_reporter) for h in case.get("history", [])]
    return out


def _history_view(entry: dict[str, Any], hide_reporter: bool) -> dict[str, Any]:
    entry = dict(entry)
    if hide_reporter and (entry.get("actor") or {}).get("role") in ("resident", "client"):
        entry["actor"] = {"role": entry["actor"]["role"]}
    return entry


def _within_reopen_window(case: dict[str, Any], now: datetime) -> bool:
    resolved_at = case.get("resolved_at")
    return case.get("status") == "resolved" and resolved_at is not None and now - resolved_at <= REOPEN_WINDOW


# ---------------------------------------------------------------- submission


def _event_doc(
    case: dict[str, Any],
    *,
    event_type: str,
    actor: Principal | None,
    from_state: str | None,
    to_state: str,
    now: datetime,
    data: dict[str, Any],
) -> CaseEvent:
    """The outbox event for a change that leaves the case at ``case['version']``."""
    return CaseEvent(
        type=event_type,
        case_id=case["_id"],
        seq=case["version"],
        actor_subject=actor.subject if actor else "system",
        actor_role=actor.role if actor else "system",
        time=now,
        case_number=case["number"],
        station_id=case.get("station_id"),
        division=case.get("division"),
        from_state=from_state,
        to_state=to_state,
        data=data,
    )


def _history_entry(
    *,
    event_id: str,
    action: str,
    actor: Principal,
    from_state: str | None,
    to_state: str,
    now: datetime,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "action": action,
        "actor": {"subject": actor.subject, "role": actor.role},
        "from_state": from_state,
        "to_state": to_state,
        "at": now,
        "note": note,
        "data": data or {},
    }


def _deadlines(service_type: Any, start: datetime) -> tuple[datetime, datetime]:
    sign_due = worktime.add_hours(start, service_type.sign_within_hours, service_type.clock)
    resolve_due = worktime.add_days(start, service_type.resolve_within_days, service_type.clock)
    return sign_due, resolve_due


def _placement(decision: routing.RoutingDecision) -> dict[str, Any]:
    """Fields that say where a case sits after a routing decision."""
    if decision.station_id:
        return {
            "status": "dispatched",
            "station_id": decision.station_id,
            "station_code": decision.station_code,
            "station_name": decision.station_name,
            "division": decision.station_code,
            "county_code": decision.county_code,
        }
    return {
        "status": "unrouted",
        "station_id": None,
        "station_code": None,
        "station_name": None,
        "division": decision.county_code or DIVISION_PROVINCE,
        "county_code": decision.county_code,
    }


async def submit_case(
    *, ctx: Context, principal: Principal, data: dict[str, Any], idempotency_key: str | None = None
) -> dict[str, Any]:
    """File a new case: validate against its service type, route it, number it, store it and its event.

    With ``idempotency_key`` the case is stored with it, and a second call with the same key
    by the same caller returns the first case instead of filing another.
    """
    if principal.role not in ("resident", "client", "worker", "station_head", "supervisor", "admin"):
        raise PermissionDeniedError("role_not_allowed", "This role cannot submit cases.")
    idempotency_id = record_id(principal.subject, idempotency_key) if idempotency_key else None
    if idempotency_id and (earlier := await CasesRepository(ctx.db).find_by_idempotency(idempotency_id)):
        return view(earlier, principal, access_of(principal, earlier), ctx.now())
    try:
        service_type = await catalog.get_service(ctx=ctx, code=data["service_code"])
    except NotFoundError:
        raise ValidationFailedError(
            "unknown_service",
            f"No service with code {data['service_code']!r}.",
            errors={"service_code": ["Unknown service code."]},
        ) from None
    answers = catalog.validate_answers(service_type, data.get("answers") or {})
    location, division_code = data.get("location"), data.get("division_code")
    if not location and not division_code:
        raise ValidationFailedError(
            "location_required",
            "Give a location or a township division code.",
            errors={"location": ["A location or division_code is required."]},
        )
    if getattr(service_type, "address_required", False) and not (data.get("address") or "").strip():
        raise ValidationFailedError(
            "address_required",
            "This service is delivered at an address: give it as address.",
            errors={"address": ["Required for this service."]},
        )
    if service_type.booking and not data.get("preferred_window"):
        raise ValidationFailedError(
            "preferred_window_required",
            "This service is a booking: give a preferred time.",
            errors={"preferred_window": ["Required for bookings."]},
        )
    if data.get("anonymous") and not getattr(service_type, "allows_anonymous", False):
        raise ValidationFailedError(
            "anonymity_not_allowed",
            "Only confidential services may be filed anonymously.",
            errors={"anonymous": ["Not allowed for this service."]},
        )
    if principal.role == "resident" and not data.get("anonymous") and not (data.get("contact") or {}).get("phone"):
        raise ValidationFailedError(
            "contact_required",
            "Give a contact name and phone so the station can reach you.",
            errors={"contact": ["Required unless filing anonymously."]},
        )
    served = data.get("served_person")
    if served and served.get("id_card"):
        served = dict(served)
        number = pii.validate_id_card(served.pop("id_card"))
        served["id_card_masked"] = pii.mask_id_card(number)
        served["id_card_enc"] = pii.encrypt(ctx.settings.data_key_bytes, number)
        served["id_card_hash"] = pii.lookup_hash(ctx.settings.data_key_bytes, number)
    # Anonymous means not stored: nothing in the answers that identifies the reporter is kept.
    answers = case_privacy.stored_answers(service_type, answers, anonymous=bool(data.get("anonymous")))
    answers_out, answers_secure = _protect_answers(ctx, service_type, answers)
    photos = list(data.get("photos") or [])
    await _check_photos(ctx, principal, photos)
    decision = await routing.route_request(
        ctx=ctx, service_code=service_type.code, location=location, division_code=division_code
    )
    if not decision.in_service_area:
        # Nobody would ever see a case here: say so now instead of filing it into no queue.
        raise ValidationFailedError(
            "outside_service_area",
            "该位置不在服务范围内（安徽省）。The location is outside the service area (Anhui province): "
            "no county holds it and no station is within reach.",
            errors={"location": ["Outside the service area (Anhui province)."]},
        )
    now = ctx.now()
    sign_due, resolve_due = _deadlines(service_type, now)
    placement = _placement(decision)
    case_id = new_id()
    number = await _case_number(ctx, placement.get("county_code") or (division_code or "")[:6], now)
    case: dict[str, Any] = {
        "_id": case_id,
        "number": number,
        "version": 1,
        "service": {
            "code": service_type.code,
            "version": service_type.version,
            "scenario": service_type.scenario,
            "name_zh": service_type.name_zh,
            "name_en": service_type.name_en,
            "confidential": service_type.confidential,
            "booking": service_type.booking,
            "urgent": bool(getattr(service_type, "urgent", False) or data.get("urgent")),
            "clock": service_type.clock,
        },
        "answers": answers_out,
        "answers_secure": answers_secure,
        "personal": case_privacy.personal_marks(service_type),
        "description": data.get("description"),
        "location": _geo_point(location),
        "location_input": location,
        "division_code": division_code,
        "address": data.get("address"),
        "contact": None if data.get("anonymous") else data.get("contact"),
        "served_person": served,
        "preferred_window": data.get("preferred_window"),
        "anonymous": bool(data.get("anonymous")),
        "photos": photos,
        "owner": await _owner_for(ctx, principal, data),
        "created_by": {"subject": principal.subject, "role": principal.role},
        "source": data.get("source") or {"channel": _channel(principal)},
        **placement,
        "routing": decision.to_dict(),
        "returned_by": [],
        "return_count": 0,
        "assignee_id": None,
        "sign_due_at": sign_due,
        "resolve_due_at": resolve_due,
        "next_due_at": sign_due,
        "overdue": {"sign": False, "resolve": False},
        "urge_count": 0,
        "created_at": now,
        "updated_at": now,
    }
    if data.get("source"):
        case["source"] = {**data["source"], "channel": data["source"].get("channel", _channel(principal))}
    if idempotency_id:
        case["idempotency_id"] = idempotency_id
    event = _event_doc(
        case,
        event_type="case.created",
        actor=principal,
        from_state=None,
        to_state=case["status"],
        now=now,
        data={"routing_method": decision.method, "reason": decision.reason},
    )
    case["history"] = [
        _history_entry(
            event_id=event.id,
            action="submit",
            actor=principal,
            from_state=None,
            to_state=case["status"],
            now=now,
            note=decision.reason,
        )
    ]

    events = [event]
    if case["status"] == "unrouted":
        events.append(
            _event_doc(
                case,
                event_type=lifecycle.EVENT_UNROUTED,
                actor=principal,
                from_state=None,
                to_state="unrouted",
                now=now,
                data={"reason": decision.reason},
            )
        )

    async def write(session: Any) -> None:
        await CasesRepository(ctx.db).insert(case, session=session)
        await EventsRepository(ctx.db).append(*events, session=session)

    try:
        await in_transaction(ctx, write)
    except ConflictError:
        # A concurrent or taken-over request with the same key stored its case first.
        earlier = await CasesRepository(ctx.db).find_by_idempotency(idempotency_id) if idempotency_id else None
        if earlier is None:
            raise
        return view(earlier, principal, access_of(principal, earlier), ctx.now())
    await _adjust_load(ctx, [(case["station_id"], +1)] if case["station_id"] else [])
    return view(case, principal, access_of(principal, case), now)


async def _owner_for(ctx: Context, principal: Principal, data: dict[str, Any]) -> str | None:
    """The resident who follows the case: the filer, or for staff entry (代录) the resident with
    the contact's phone number, so the request appears in their own app."""
    if principal.role == "resident":
        return principal.subject
    phone = pii.mobile_or_none((data.get("contact") or {}).get("phone"))
    if principal.is_staff and phone and not data.get("anonymous"):
        resident = await ResidentsRepository(ctx.db).find_by_phone(phone)
        return resident.id if resident else None
    return None


def _channel(principal: Principal) -> str:
    return {"resident": "mini_program", "client": "api"}.get(principal.role, "staff_entry")


def _geo_point(location: dict[str, Any] | None) -> dict[str, Any] | None:
    """The case's location as a WGS-84 GeoJSON point (input may be GCJ-02 or BD-09)."""
    if not location:
        return None
    point = geo.to_wgs84(location["lon"], location["lat"], location.get("coord_system") or "wgs84")
    return {"type": "Point", "coordinates": [point.lon, point.lat]}


def _protect_answers(ctx: Context, service_type: Any, answers: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """ID-number answers are stored encrypted with a lookup hash; the plain view shows them masked."""
    plain, secure = dict(answers), {}
    for f in service_type.fields:
        if f.type == "id_card" and plain.get(f.code):
            number = plain[f.code]
            plain[f.code] = pii.mask_id_card(number)
            secure[f.code] = {
                "enc": pii.encrypt(ctx.settings.data_key_bytes, number),
                "hash": pii.lookup_hash(ctx.settings.data_key_bytes, number),
            }
    return plain, secure


async def _check_photos(ctx: Context, principal: Principal, photos: list[str]) -> None:
    missing = []
    for upload_id in photos:
        try:
            await uploads.get_upload(ctx=ctx, principal=principal, upload_id=upload_id)
        except NotFoundError:
            missing.append(upload_id)
    if missing:
        raise ValidationFailedError(
            "unknown_photo",
            "Some photos were not found; upload them first.",
            errors={"photos": [f"Unknown upload id {m!r}." for m in missing]},
        )


async def _case_number(ctx: Context, county_code: str, now: datetime) -> str:
    county = county_code if len(county_code) == 6 and county_code.isdigit() else DIVISION_PROVINCE
    return await next_case_number(ctx=ctx, county_code=county, local_date=now.astimezone(worktime.TZ).date())


# ---------------------------------------------------------------- reading


def in_coord_system(case_view: dict[str, Any], coord_system: str) -> dict[str, Any]:
    """A case view with its location in ``coord_system`` (gcj02 for WeChat/Tencent maps, bd09 for Baidu)."""
    if coord_system == "wgs84" or not case_view.get("location"):
        return case_view
    return {**case_view, "location": geo.point_doc_in(case_view["location"], coord_system)}


async def get_case(*, ctx: Context, principal: Principal, case_id: str, coord_system: str = "wgs84") -> dict[str, Any]:
    """One case with its history, routing reason, deadlines and the caller's allowed actions."""
    case = await CasesRepository(ctx.db).get(case_id)
    rel = _ensure_visible(principal, case)
    result = view(case, principal, rel, ctx.now())
    await _audit_sensitive_read(ctx, principal, rel, case)
    return in_coord_system(result, coord_system)


async def _audit_sensitive_read(ctx: Context, principal: Principal, rel: Access, case: dict[str, Any]) -> None:
    """Staff shown unmasked phone numbers leave an audit record (PIPL)."""
    shown = case_privacy.clear_phones(case, case_privacy.disclosure(rel, case))
    if principal.is_staff and rel.assignee and shown:
        await AuditRepository(ctx.db).record(
            at=ctx.now(),
            actor_subject=principal.subject,
            actor_role=principal.role,
            action="read_sensitive",
            target_kind="case",
            target_id=case["_id"],
            fields=shown,
        )


SORTS = {
    "newest": [("created_at", -1), ("_id", -1)],
    "due": [("next_due_at", 1), ("_id", 1)],
}


def _scope_filter(principal: Principal) -> dict[str, Any]:
    """What this caller may list at all."""
    role = principal.role
    if role == "resident":
        return {"owner": principal.subject}
    if role == "client":
        return {"created_by.subject": principal.subject}
    if role in ("worker", "station_head"):
        return {"station_id": principal.station_id or "\x00none"}
    if role == "supervisor":
        return {"division": division_range(principal.division_prefix or "")}
    return {}


def division_range(prefix: str) -> dict[str, str]:
    """Division codes under ``prefix``, as an index range rather than a regex.

    Division codes are digits only, so every code that starts with the prefix sorts in
    [prefix, prefix + ":") (":" follows "9"); an index on ``division`` answers this with
    tight bounds on every server, where a regex may be evaluated document by document.
    """
    return {"$gte": prefix, "$lt": prefix + ":"}


def all_of(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    """One filter requiring every condition: a plain document when no field repeats, else ``$and``.

    A plain document keeps the filter index-eligible on servers whose planner does not look
    inside ``$and`` (the embedded server scans the whole collection for ``{"$and": [...]}``).
    """
    conditions = [c for c in conditions if c]
    merged: dict[str, Any] = {}
    for condition in conditions:
        if any(key in merged for key in condition):
            return {"$and": conditions}
        merged.update(condition)
    return merged


def _encode_cursor(doc: dict[str, Any], sort: str) -> str:
    key = "created_at" if sort == "newest" else "next_due_at"
    value = doc.get(key)
    payload = {"v": value.isoformat() if isinstance(value, datetime) else None, "id": doc["_id"]}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> dict[str, Any]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value = datetime.fromisoformat(payload["v"]) if payload["v"] else None
        case_id = str(payload["id"])
    except (ValueError, KeyError, TypeError):
        raise BadRequestError("invalid_cursor", "The cursor is not valid; start again without it.") from None
    key = "created_at" if sort == "newest" else "next_due_at"
    op = "$lt" if sort == "newest" else "$gt"
    if value is None:
        return {key: None, "_id": {op: case_id}}
    return {"$or": [{key: {op: value}}, {key: value, "_id": {op: case_id}}]}


async def list_cases(*, ctx: Context, principal: Principal, query: dict[str, Any]) -> Page[dict[str, Any]]:
    """Cases the caller may see, filtered, newest first or by due time, cursor-paginated."""
    filt, sort_keys, limit = list_query(principal, query)
    sort = query.get("sort") or "newest"
    docs = await CasesRepository(ctx.db).page(filt, sort=sort_keys, limit=limit + 1)
    more = len(docs) > limit
    docs = docs[:limit]
    now = ctx.now()
    items = []
    for doc in docs:
        items.append(view(doc, principal, access_of(principal, doc), now, with_history=False))
    coord_system = query.get("coord_system") or "wgs84"
    items = [in_coord_system(item, coord_system) for item in items]
    return Page(items=items, next_cursor=_encode_cursor(docs[-1], sort) if more and docs else None)


def list_query(principal: Principal, query: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, int]], int]:
    """Pure: the filter, sort and page size a list request becomes (one more is fetched to see if more exist)."""
    conditions: list[dict[str, Any]] = [_scope_filter(principal)]
    for field, key in (
        ("status", "status"),
        ("scenario", "service.scenario"),
        ("service", "service.code"),
        ("station", "station_id"),
        ("assignee", "assignee_id"),
    ):
        value = query.get(field)
        if value:
            conditions.append({key: {"$in": list(value)} if isinstance(value, list) else value})
    if query.get("overdue") is not None:
        flag = {"$or": [{"overdue.sign": True}, {"overdue.resolve": True}]}
        conditions.append(flag if query["overdue"] else {"overdue.sign": False, "overdue.resolve": False})
    if query.get("created_from"):
        conditions.append({"created_at": {"$gte": query["created_from"]}})
    if query.get("created_to"):
        conditions.append({"created_at": {"$lt": query["created_to"]}})
    sort = query.get("sort") or "newest"
    if query.get("cursor"):
        conditions.append(_decode_cursor(query["cursor"], sort))
    limit = int(query.get("limit") or 20)
    return all_of(conditions), SORTS[sort], limit


# ---------------------------------------------------------------- acting


async def act(*, ctx: Context, principal: Principal, case_id: str, action: str, data: dict[str, Any]) -> dict[str, Any]:
    """Perform one lifecycle action; exactly one of several concurrent actions wins, the rest get 409."""
    repo = CasesRepository(ctx.db)
    case = await repo.get(case_id)
    rel = _ensure_visible(principal, case)
    now = ctx.now()
    # State before relationship: when a colleague has just signed for the case, "already
    # accepted" (409) is the answer that tells this caller what happened.
    transition = lifecycle.check_transition(case["status"], action, principal.role)
    lifecycle.check_transition(
        case["status"], action, principal.role, lifecycle_relationship(principal, rel, case), case_facts(case, now)
    )
    lifecycle.check_fields(action, data)
    if data.get("expected_version") is not None and data["expected_version"] != case["version"]:
        raise ConflictError(
            "case_changed", "The case changed since you read it; reload and try again.", current_version=case["version"]
        )
    plan = await _plan(ctx, principal, case, action, data, now)
    to_state = plan.get("to_state") or transition.target(case["status"])
    event_type = plan.get("event_type") or transition.event
    sets = {**plan.get("set", {}), "status": to_state, "updated_at": now}
    post = {**case, **sets, "version": case["version"] + 1}
    event = _event_doc(
        post,
        event_type=event_type,
        actor=principal,
        from_state=case["status"],
        to_state=to_state,
        now=now,
        data=plan.get("event_data", {}),
    )
    events = [event]
    if to_state == "unrouted" and case["status"] != "unrouted":
        events.append(
            _event_doc(
                post,
                event_type=lifecycle.EVENT_UNROUTED,
                actor=principal,
                from_state=case["status"],
                to_state=to_state,
                now=now,
                data=plan.get("event_data", {}),
            )
        )
    entry = _history_entry(
        event_id=event.id,
        action=action,
        actor=principal,
        from_state=case["status"],
        to_state=to_state,
        now=now,
        note=plan.get("note"),
        data=plan.get("event_data"),
    )
    update: dict[str, Any] = {"$set": sets, "$push": {"history": entry}}
    if plan.get("inc"):
        update["$inc"] = dict(plan["inc"])

    async def write(session: Any) -> bool:
        if not await repo.apply(
            case_id, expected_version=case["version"], expected_status=case["status"], update=update, session=session
        ):
            return False
        await EventsRepository(ctx.db).append(*events, session=session)
        return True

    if not await in_transaction(ctx, write):
        raise ConflictError("case_changed", "Someone else acted on this case at the same moment; reload it.")
    await _adjust_load(ctx, plan.get("load", []))
    fresh = await repo.get(case_id)
    return view(fresh, principal, access_of(principal, fresh), now)


def manual_routing(previous: dict[str, Any], target: Any, principal: Principal, now: datetime) -> dict[str, Any]:
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
        member = await StaffRepository(ctx.db).get(staff_id)
    except NotFoundError:
        return False
    return (
        bool(station_id)
        and member.active
        and member.station_id == station_id
        and member.role in ("worker", "station_head")
    )


async def _adjust_load(ctx: Context, changes: list[tuple[str, int]]) -> None:
    """Keep stations' open-case counts (used for capacity) in step; best effort after the commit."""
    for station_id, delta in changes:
        if station_id:
            try:
                await stations.adjust_open_cases(ctx=ctx, station_id=station_id, delta=delta)
            except NotFoundError:
                log.warning("open-case count not adjusted: station %s is gone", station_id)


async def _plan(
    ctx: Context, principal: Principal, case: dict[str, Any], action: str, data: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """What an action changes, beyond the status: pure except for routing and staff look-ups.

    The action's required fields were checked by ``lifecycle.check_fields`` before this runs.
    """
    station = case.get("station_id")
    if action == "accept":
        late = now > case["sign_due_at"]
        return {
            "set": {
                "accepted_at": now,
                "signed_late": late,
                # Whoever signs for a case holds it, a station head included, until it is assigned on.
                "assignee_id": case.get("assignee_id") or principal.subject,
                "next_due_at": case["resolve_due_at"],
            },
            "event_data": {"signed_late": late},
        }
    if action == "return":
        reason = data["reason"]
        returned = [*case.get("returned_by", []), station] if station else list(case.get("returned_by", []))
        count = case.get("return_count", 0) + 1
        load = [(station, -1)] if station else []
        if count >= MAX_RETURNS:
            decision = routing.RoutingDecision(
                method="unrouted",
                station_id=None,
                station_code=None,
                station_name=None,
                county_code=case.get("county_code"),
                distance_km=None,
                candidates=(),
                excluded=tuple(returned),
                reason=f"已退单 {count} 次，转县区民政部门人工派单 (returned {count} times: queued for the county "
                "supervisor to dispatch by hand)",
            )
        else:
            decision = await routing.route_request(
                ctx=ctx,
                service_code=case["service"]["code"],
                location=case.get("location_input"),
                division_code=case.get("division_code"),
                exclude=frozenset(returned),
            )
            if decision.county_code is None:
                # No other station reaches the place: the county that held it keeps it in its queue.
                decision = dataclasses.replace(
                    decision,
                    county_code=case.get("county_code"),
                    reason="无其他可派社工站，转县区民政部门人工派单 (no other station can take it: queued for the "
                    "county supervisor to dispatch by hand)",
                )
        placement = _placement(decision)
        if placement["station_id"]:
            load.append((placement["station_id"], +1))
        return {
            "to_state": placement.pop("status"),
            "event_type": "case.returned",
            "note": reason,
            "set": {
                **placement,
                "routing": decision.to_dict(),
                "returned_by": returned,
                "assignee_id": None,
                "accepted_at": None,
                "next_due_at": case["sign_due_at"],
            },
            "inc": {"return_count": 1},
            "load": load,
            "event_data": {
                "reason": reason,
                "returned_by_station": station,
                "next_station": placement["station_id"],
                "routing_method": decision.method,
            },
        }
    if action == "dispatch":
        station_id = data["station_id"]
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
        return {
            "to_state": "dispatched",
            "note": data.get("note"),
            "load": load,
            "set": {
                "station_id": target.id,
                "station_code": target.code,
                "station_name": target.name,
                "division": target.code,
                "county_code": target.county_code,
                "assignee_id": None,
                "routing": manual_routing(case.get("routing") or {}, target, principal, now),
            },
            "event_data": {"station_id": target.id, "note": data.get("note")},
        }
    if action == "assign":
        assignee = data["assignee_id"]
        if not await _works_at(ctx, assignee, station):
            raise ValidationFailedError(
                "assignee_not_at_station",
                "The assignee is not active staff of this station.",
                errors={"assignee_id": ["Not active staff of this station."]},
            )
        return {"set": {"assignee_id": assignee}, "note": data.get("note"), "event_data": {"assignee_id": assignee}}
    if action == "start":
        return {"set": {"started_at": now}, "note": data.get("note")}
    if action == "schedule":
        at = data["scheduled_at"]
        return {"set": {"scheduled_at": at}, "note": data.get("note"), "event_data": {"scheduled_at": at}}
    if action == "note":
        text = data["text"]
        return {"note": text, "event_data": {"text": text}}
    if action == "request_extension":
        days = data["extra_days"]
        reason = data["reason"]
        return {
            "set": {
                "extension": {
                    "status": "requested",
                    "extra_days": days,
                    "reason": reason,
                    "requested_at": now,
                    "requested_by": principal.subject,
                }
            },
            "note": reason,
            "event_data": {"extra_days": days, "reason": reason},
        }
    if action in ("approve_extension", "deny_extension"):
        ext = case.get("extension") or {}
        if action == "deny_extension":
            return {
                "set": {"extension": {**ext, "status": "denied", "decided_at": now}},
                "note": data.get("reason"),
                "event_data": {"reason": data.get("reason")},
            }
        clock = (case.get("service") or {}).get("clock") or "working"
        # Requests stored before the field took the API's name (extra_days) kept it as "days".
        new_due = worktime.add_days(case["resolve_due_at"], int(ext.get("extra_days") or ext["days"]), clock)
        sets: dict[str, Any] = {
            "extension": {**ext, "status": "approved", "decided_at": now},
            "resolve_due_at": new_due,
            "overdue.resolve": False,
        }
        if case["status"] != "dispatched":
            sets["next_due_at"] = new_due
        return {"set": sets, "note": data.get("note"), "event_data": {"resolve_due_at": new_due}}
    if action == "resolve":
        result = data["result"]
        return {
            "set": {
                "resolved_at": now,
                "result": result,
                "resolved_late": now > case["resolve_due_at"],
                "next_due_at": None,
            },
            "note": result,
            "load": [(station, -1)] if station else [],
            "event_data": {"result": result},
        }
    if action == "reopen":
        reason = data["reason"]
        return {
            "set": {"reopened_at": now, "resolved_at": None, "result": None, "next_due_at": case["resolve_due_at"]},
            "inc": {"reopen_count": 1},
            "note": reason,
            "load": [(station, +1)] if station else [],
            "event_data": {"reason": reason},
        }
    if action == "rate":
        rating = data["rating"]
        return {
            "event_type": "case.rated",
            "set": {"rating": rating, "rating_comment": data.get("comment"), "closed_at": now, "rated_at": now},
            "note": data.get("comment"),
            "event_data": {"rating": rating},
        }
    if action == "cancel":
        return {
            "set": {"cancelled_at": now, "next_due_at": None},
            "note": data.get("reason"),
            "load": [(station, -1)] if station and case["status"] in ("dispatched", "accepted") else [],
            "event_data": {"reason": data.get("reason")},
        }
    if action == "reject":
        reason = data["reason"]
        return {
            "set": {"rejected_at": now, "next_due_at": None},
            "note": reason,
            "load": [(station, -1)] if station else [],
            "event_data": {"reason": reason},
        }
    if action == "urge":
        return {
            "set": {"urged_at": now},
            "inc": {"urge_count": 1},
            "note": data.get("note"),
            "event_data": {"note": data.get("note")},
        }
    raise BadRequestError("unknown_action", f"Unknown action {action!r}.")


# ---------------------------------------------------------------- sweeps: overdue flags and auto-close


async def sweep_once(*, ctx: Context, limit: int = 500) -> dict[str, int]:
    """Flag overdue cases once (督办) and auto-close cases resolved 7 days ago; safe with several sweepers."""
    repo = CasesRepository(ctx.db)
    now = ctx.now()
    counts = {"sign_overdue": 0, "resolve_overdue": 0, "auto_closed": 0}
    checks = (
        ("sign", {"status": "dispatched", "overdue.sign": False, "sign_due_at": {"$lt": now}}),
        (
            "resolve",
            {"status": {"$in": ["accepted", "in_progress"]}, "overdue.resolve": False, "resolve_due_at": {"$lt": now}},
        ),
    )
    for kind, query in checks:
        for doc in await repo.due_for(query, limit=limit):
            if await _flag_overdue(ctx, doc, kind, now):
                counts[f"{kind}_overdue"] += 1
    for doc in await repo.due_for({"status": "resolved", "resolved_at": {"$lt": now - AUTO_CLOSE_AFTER}}, limit=limit):
        if await _auto_close(ctx, doc, now):
            counts["auto_closed"] += 1
    return counts


SYSTEM_ACTOR = Principal(subject="system", role="admin")


async def _flag_overdue(ctx: Context, doc: dict[str, Any], kind: str, now: datetime) -> bool:
    repo = CasesRepository(ctx.db)
    due = doc["sign_due_at"] if kind == "sign" else doc["resolve_due_at"]
    event = _event_doc(
        {**doc, "version": doc["version"] + 1},
        event_type="case.overdue",
        actor=None,
        from_state=doc["status"],
        to_state=doc["status"],
        now=now,
        data={"kind": kind, "due_at": due},
    )
    entry = _history_entry(
        event_id=event.id,
        action="overdue",
        actor=SYSTEM_ACTOR,
        from_state=doc["status"],
        to_state=doc["status"],
        now=now,
        note=f"超时督办 overdue ({kind})",
        data={"kind": kind},
    )
    entry["actor"] = {"subject": "system", "role": "system"}

    async def write(session: Any) -> bool:
        if not await repo.flag(
            doc["_id"],
            condition={"status": doc["status"], f"overdue.{kind}": False},
            update={"$set": {f"overdue.{kind}": True, "overdue_flagged_at": now}, "$push": {"history": entry}},
            session=session,
        ):
            return False
        await EventsRepository(ctx.db).append(event, session=session)
        return True

    return bool(await in_transaction(ctx, write))


async def _auto_close(ctx: Context, doc: dict[str, Any], now: datetime) -> bool:
    repo = CasesRepository(ctx.db)
    event = _event_doc(
        {**doc, "version": doc["version"] + 1},
        event_type="case.closed",
        actor=None,
        from_state="resolved",
        to_state="closed",
        now=now,
        data={"auto": True},
    )
    entry = _history_entry(
        event_id=event.id,
        action="auto_close",
        actor=SYSTEM_ACTOR,
        from_state="resolved",
        to_state="closed",
        now=now,
        note="7 天未评价，自动归档 auto-closed without a rating",
    )
    entry["actor"] = {"subject": "system", "role": "system"}

    async def write(session: Any) -> bool:
        if not await repo.apply(
            doc["_id"],
            expected_version=doc["version"],
            expected_status="resolved",
            update={"$set": {"status": "closed", "closed_at": now, "updated_at": now}, "$push": {"history": entry}},
            session=session,
        ):
            return False
        await EventsRepository(ctx.db).append(event, session=session)
        return True

    return bool(await in_transaction(ctx, write))


async def sweep_loop(ctx: Context) -> None:
    """Background loop: sweep every ``case_sweep_seconds``."""
    while True:
        async with ctx.loops.guard("case-sweep"):
            counts = await sweep_once(ctx=ctx)
            if any(counts.values()):
                log.info("case sweep", extra=counts)
        await pause(ctx.settings.case_sweep_seconds)


# ---------------------------------------------------------------- KPIs


GROUP_KEYS = {"station": "$station_id", "county": "$county_code", "city": {"$substrCP": ["$county_code", 0, 4]}}


async def kpis(
    *,
    ctx: Context,
    principal: Principal,
    division: str | None,
    date_from: datetime | None,
    date_to: datetime | None,
    group_by: str | None,
) -> dict[str, Any]:
    """Counts and rates computed by aggregation over the cases the caller may see."""
    if principal.role not in ("supervisor", "admin", "station_head", "worker"):
        raise PermissionDeniedError("role_not_allowed", "Only staff can read KPIs.")
    conditions: list[dict[str, Any]] = [_scope_filter(principal)]
    if division:
        if principal.role == "supervisor" and not division.startswith(principal.division_prefix or ""):
            raise PermissionDeniedError("division_outside_scope", "That division is outside yours.")
        conditions.append({"division": division_range(division)})
    if date_from:
        conditions.append({"created_at": {"$gte": date_from}})
    if date_to:
        conditions.append({"created_at": {"$lt": date_to}})
    match = all_of(conditions)
    key: Any = GROUP_KEYS.get(group_by or "")
    pipeline: list[dict[str, Any]] = [
        {"$match": match},
        {
            "$project": {
                "k": key if key is not None else "all",
                "status": 1,
                "scenario": "$service.scenario",
                "rating": 1,
                "signed": {"$cond": [{"$ifNull": ["$accepted_at", False]}, 1, 0]},
                "signed_on_time": {
                    "$cond": [{"$and": [{"$ifNull": ["$accepted_at", False]}, {"$ne": ["$signed_late", True]}]}, 1, 0]
                },
                "resolved": {"$cond": [{"$ifNull": ["$resolved_at", False]}, 1, 0]},
                "resolved_on_time": {
                    "$cond": [{"$and": [{"$ifNull": ["$resolved_at", False]}, {"$ne": ["$resolved_late", True]}]}, 1, 0]
                },
                "is_closed_or_resolved": {"$cond": [{"$in": ["$status", ["resolved", "closed"]]}, 1, 0]},
                "sign_ms": {
                    "$cond": [
                        {"$ifNull": ["$accepted_at", False]},
                        {"$subtract": ["$accepted_at", "$created_at"]},
                        None,
                    ]
                },
                "resolve_ms": {
                    "$cond": [
                        {"$ifNull": ["$resolved_at", False]},
                        {"$subtract": ["$resolved_at", "$created_at"]},
                        None,
                    ]
                },
                "overdue": {"$cond": [{"$or": ["$overdue.sign", "$overdue.resolve"]}, 1, 0]},
                "rated": {"$cond": [{"$ifNull": ["$rating", False]}, 1, 0]},
                "satisfied": {"$cond": [{"$gte": [{"$ifNull": ["$rating", 0]}, 4]}, 1, 0]},
            }
        },
    ]
    pipeline.append(
        {
            "$facet": {
                "totals": [
                    {
                        "$group": {
                            "_id": "$k",
                            "total": {"$sum": 1},
                            "signed": {"$sum": "$signed"},
                            "signed_on_time": {"$sum": "$signed_on_time"},
                            "resolved": {"$sum": "$resolved"},
                            "resolved_on_time": {"$sum": "$resolved_on_time"},
                            "done": {"$sum": "$is_closed_or_resolved"},
                            "overdue": {"$sum": "$overdue"},
                            "rated": {"$sum": "$rated"},
                            "satisfied": {"$sum": "$satisfied"},
                            "sign_ms": {"$push": "$sign_ms"},
                            "resolve_ms": {"$push": "$resolve_ms"},
                        }
                    }
                ],
                "by_status": [{"$group": {"_id": {"k": "$k", "v": "$status"}, "n": {"$sum": 1}}}],
                "by_scenario": [{"$group": {"_id": {"k": "$k", "v": "$scenario"}, "n": {"$sum": 1}}}],
            }
        }
    )
    [facets] = await CasesRepository(ctx.db).aggregate(pipeline) or [{"totals": [], "by_status": [], "by_scenario": []}]
    breakdown: dict[str, dict[str, dict[str, int]]] = {}
    for name in ("by_status", "by_scenario"):
        for row in facets[name]:
            key = str(row["_id"].get("k"))
            breakdown.setdefault(key, {}).setdefault(name, {})[str(row["_id"].get("v") or "unknown")] = row["n"]
    groups = [_kpi_group(row, breakdown.get(str(row["_id"]), {})) for row in facets["totals"]]
    groups.sort(key=lambda g: str(g["key"]))
    return {"division": division, "from": date_from, "to": date_to, "group_by": group_by, "groups": groups}


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _median_hours(values: list[float | None]) -> float | None:
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    mid = len(vals) // 2
    ms = vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2
    return round(ms / 3_600_000, 2)


def _kpi_group(row: dict[str, Any], breakdown: dict[str, dict[str, int]]) -> dict[str, Any]:
    by_status = breakdown.get("by_status", {})
    closable = row["total"] - by_status.get("cancelled", 0) - by_status.get("rejected", 0)
    return {
        "key": None if row["_id"] == "all" else row["_id"],
        "total": row["total"],
        "by_status": by_status,
        "by_scenario": breakdown.get("by_scenario", {}),
        "response_rate": _ratio(row["signed_on_time"], row["signed"]),
        "resolution_rate": _ratio(row["done"], closable),
        "on_time_resolution_rate": _ratio(row["resolved_on_time"], row["resolved"]),
        "satisfaction_rate": _ratio(row["satisfied"], row["rated"]),
        "median_hours_to_sign": _median_hours(row["sign_ms"]),
        "median_hours_to_resolve": _median_hours(row["resolve_ms"]),
        "overdue": row["overdue"],
    }
