"""Submitting a case: validation of the form, routing to a station, the case number and the first event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.cases import privacy as case_privacy
from service.cases import states
from service.cases.access import access_of
from service.cases.changes import adjust_load, event_doc, history_entry, station_placement
from service.cases.inputs import CaseSubmission, LocationInput
from service.cases.models import DIVISION_PROVINCE, CaseRef
from service.cases.numbers import next_case_number
from service.cases.repository.cases import CasesRepository, case_from_document, history_doc
from service.cases.repository.events import EventsRepository
from service.cases.views import CaseView, view
from service.catalog import service as catalog
from service.common import geo, pii, worktime
from service.common.context import Context
from service.common.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from service.common.ids import new_id
from service.common.models import Principal
from service.identity import directory
from service.stations import routing
from service.storage.transactions import in_transaction
from service.uploads import service as uploads


def _deadlines(service_type: Any, start: datetime) -> tuple[datetime, datetime]:
    sign_due = worktime.add_hours(start, service_type.sign_within_hours, service_type.clock)
    resolve_due = worktime.add_days(start, service_type.resolve_within_days, service_type.clock)
    return sign_due, resolve_due


async def submit_case(
    *, ctx: Context, principal: Principal, data: CaseSubmission, case_id: str | None = None
) -> CaseView:
    """File a new case: validate against its service type, route it, number it, store it and its event.

    ``case_id`` is the id the case gets: a keyed request passes the one its Idempotency-Key
    holds, so a retry after a crash finds the case stored before it instead of filing another.
    """
    if principal.role not in ("resident", "client", "worker", "station_head", "supervisor", "admin"):
        raise PermissionDeniedError("role_not_allowed", "This role cannot submit cases.")
    try:
        service_type = await catalog.current_service(ctx=ctx, code=data.service_code)
    except NotFoundError:
        raise ValidationFailedError(
            "unknown_service",
            f"No service with code {data.service_code!r}.",
            errors={"service_code": ["Unknown service code."]},
        ) from None
    answers = catalog.validate_answers(service_type, dict(data.answers))
    location, division_code = data.location, data.division_code
    if not location and not division_code:
        raise ValidationFailedError(
            "location_required",
            "Give a location or a township division code.",
            errors={"location": ["A location or division_code is required."]},
        )
    if getattr(service_type, "address_required", False) and not (data.address or "").strip():
        raise ValidationFailedError(
            "address_required",
            "This service is delivered at an address: give it as address.",
            errors={"address": ["Required for this service."]},
        )
    if service_type.booking and not data.preferred_window:
        raise ValidationFailedError(
            "preferred_window_required",
            "This service is a booking: give a preferred time.",
            errors={"preferred_window": ["Required for bookings."]},
        )
    if data.anonymous and not getattr(service_type, "allows_anonymous", False):
        raise ValidationFailedError(
            "anonymity_not_allowed",
            "Only confidential services may be filed anonymously.",
            errors={"anonymous": ["Not allowed for this service."]},
        )
    if principal.role == "resident" and not data.anonymous and not (data.contact and data.contact.get("phone")):
        raise ValidationFailedError(
            "contact_required",
            "Give a contact name and phone so the station can reach you.",
            errors={"contact": ["Required unless filing anonymously."]},
        )
    served: dict[str, Any] | None = dict(data.served_person) if data.served_person is not None else None
    if served and served.get("id_card"):
        number = pii.validate_id_card(served.pop("id_card"))
        served["id_card_masked"] = pii.mask_id_card(number)
        served["id_card_enc"] = pii.encrypt(ctx.settings.data_key_bytes, number)
        served["id_card_hash"] = pii.lookup_hash(ctx.settings.data_key_bytes, number)
    # Anonymous means not stored: nothing in the answers that identifies the reporter is kept.
    answers = case_privacy.stored_answers(service_type, answers, anonymous=data.anonymous)
    answers_out, answers_secure = _protect_answers(ctx, service_type, answers)
    photos = list(data.photos)
    await _check_photos(ctx, principal, photos)
    if service_type.retired:
        raise ValidationFailedError(
            "service_retired",
            f"Service {service_type.code!r} is no longer offered.",
            {"service_code": ["This service is retired."]},
        )
    # By capability: the service type was read above, so routing need not read it again.
    decision = await routing.route_request(
        ctx=ctx,
        capability=service_type.capability,
        location=dict(location) if location is not None else None,
        division_code=division_code,
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
    placement = station_placement(decision)
    case_id = case_id or new_id()
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
            "urgent": bool(getattr(service_type, "urgent", False) or data.urgent),
            "clock": service_type.clock,
        },
        "answers": answers_out,
        "answers_secure": answers_secure,
        "personal": case_privacy.personal_marks(service_type),
        "description": data.description,
        "location": _geo_point(location),
        "location_input": location,
        "division_code": division_code,
        "address": data.address,
        "contact": None if data.anonymous else data.contact,
        "served_person": served,
        "preferred_window": data.preferred_window,
        "anonymous": data.anonymous,
        "photos": photos,
        "owner": await _owner_for(ctx, principal, data),
        "created_by": {"subject": principal.subject, "role": principal.role},
        "source": data.source or {"channel": _channel(principal)},
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
    if data.source:
        case["source"] = {**data.source, "channel": data.source.get("channel", _channel(principal))}
    ref = CaseRef(case_id, number, case["station_id"], case["division"])
    event = event_doc(
        ref,
        seq=1,
        event_type="case.created",
        actor=principal,
        from_state=None,
        to_state=case["status"],
        now=now,
        data={"routing_method": decision.method, "reason": decision.reason},
    )
    case["history"] = [
        history_doc(
            history_entry(
                event_id=event.id,
                action="submit",
                actor=principal,
                from_state=None,
                to_state=case["status"],
                now=now,
                note=decision.reason,
            )
        )
    ]

    events = [event]
    if case["status"] == "unrouted":
        events.append(
            event_doc(
                ref,
                seq=1,
                event_type=states.EVENT_UNROUTED,
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
        # A retry that took over an abandoned Idempotency-Key: its first attempt stored the case
        # (and counted it at its station).
        earlier = await CasesRepository(ctx.db).get_if_any(case_id)
        if earlier is None:
            raise
        return view(earlier, principal, access_of(principal, earlier.parties), ctx.now())
    # The station's open-case count (best effort, as after every change) goes up once the case is
    # stored. Not while it is written: the embedded server answers one request at a time, and the
    # count sent beside the transaction made a filing 1.5 ms slower there (bench.overhead).
    if case["station_id"]:
        await adjust_load(ctx, [(case["station_id"], +1)])
    filed = case_from_document(case)
    return view(filed, principal, access_of(principal, filed.parties), now)


async def _owner_for(ctx: Context, principal: Principal, data: CaseSubmission) -> str | None:
    """The resident who follows the case: the filer, or for staff entry (代录) the resident with
    the contact's phone number, so the request appears in their own app."""
    if principal.role == "resident":
        return principal.subject
    phone = pii.mobile_or_none(data.contact.get("phone") if data.contact else None)
    if principal.is_staff and phone and not data.anonymous:
        resident = await directory.resident_by_phone(ctx=ctx, phone=phone)
        return resident.id if resident else None
    return None


def _channel(principal: Principal) -> str:
    return {"resident": "mini_program", "client": "api"}.get(principal.role, "staff_entry")


def _geo_point(location: LocationInput | None) -> dict[str, Any] | None:
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
