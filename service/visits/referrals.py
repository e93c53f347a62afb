"""Referrals from a visit: the cases a visit opens (needs found, or an urgent 紧急求助 case), made once each."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from typing import Any

from service.cases import reads as case_reads
from service.cases import submit as case_submit
from service.cases.inputs import CaseSubmission, LocationInput
from service.catalog import service as catalog
from service.common.context import Context
from service.common.errors import (
    ConflictError,
    DomainError,
    NotFoundError,
    ValidationFailedError,
)
from service.common.models import Principal
from service.visits.elder_fields import present
from service.visits.inputs import VisitInput
from service.visits.models import Elder, Visit
from service.visits.periods import local_date
from service.visits.repository.elders import EldersRepository
from service.visits.repository.visits import VisitsRepository
from service.visits.tiers import tier_table

log = logging.getLogger("huimin.visits")


DANGER_SERVICE = "elderly_emergency"


DANGER_KINDS = ("fall", "illness", "utilities", "missing", "other")


def referral_answers(service_type: Any, elder: Elder, note: str | None, given: dict[str, Any]) -> dict[str, Any]:
    """Form answers for a referral: what the register already knows, then what the visitor gave."""
    phone = elder.phone or next((c["phone"] for c in elder.emergency_contacts), None)
    living = next((f for f in ("alone", "empty_nest", "left_behind") if f in elder.flags), None)
    known: dict[str, Any] = {
        "elder_name": elder.name,
        "elder_age": elder.age,
        "living_situation": living,
        "address": elder.address,
        "contact_phone": phone,
        "details": note,
    }
    codes = {f.code for f in service_type.fields}
    out = {k: v for k, v in known.items() if k in codes and v not in (None, "")}
    out.update(given)
    return out


# A service delivered at an address takes the case's address from the register.
_NO_ADDRESS = "This service is delivered at an address and the register has none for this person."


def referral_key(visit_id: str, kind: str, index: int) -> str:
    return f"{visit_id}:danger" if kind == "danger" else f"{visit_id}:need:{index}"


async def plan_referrals(ctx: Context, elder: Elder, data: VisitInput) -> list[dict[str, Any]]:
    """Check each need (and a danger) against the catalogue before anything is written."""
    plans: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for i, need in enumerate(data.needs):
        code = need["service_code"]
        try:
            service_type = await catalog.get_service(ctx=ctx, code=code)
        except NotFoundError:
            errors[f"needs[{i}].service_code"] = [f"There is no service with code {code!r}."]
            continue
        answers = referral_answers(service_type, elder, need.get("note"), need.get("answers") or {})
        try:
            answers = catalog.validate_answers(service_type, answers)
        except ValidationFailedError as exc:
            for k, msgs in exc.errors.items():
                errors[f"needs[{i}].{k}"] = msgs
            continue
        if service_type.booking and not need.get("preferred_window"):
            errors[f"needs[{i}].preferred_window"] = ["This service is a booking: give a preferred time."]
            continue
        if service_type.address_required and not elder.address:
            errors[f"needs[{i}].address"] = [_NO_ADDRESS]
            continue
        plans.append(
            {
                "kind": "need",
                "index": i,
                "service_code": code,
                "answers": answers,
                "note": need.get("note"),
                "preferred_window": need.get("preferred_window"),
            }
        )
    danger = data.danger or {}
    if danger.get("found"):
        service_type = await catalog.get_service(ctx=ctx, code=DANGER_SERVICE)
        given = {"emergency_type": danger.get("kind") or "other"}
        if service_type.address_required and not elder.address:
            errors["danger.address"] = [_NO_ADDRESS]
        answers = catalog.validate_answers(
            service_type, referral_answers(service_type, elder, danger.get("note"), given)
        )
        plans.append(
            {
                "kind": "danger",
                "index": 0,
                "service_code": DANGER_SERVICE,
                "answers": answers,
                "note": danger.get("note"),
            }
        )
    if errors:
        raise ValidationFailedError("invalid_needs", "A need found cannot be referred as given; see errors.", errors)
    return plans


def _case_data(elder: Elder, visit: Visit, plan: dict[str, Any], key: str) -> CaseSubmission:
    urgent = plan["kind"] == "danger"
    label = "探访发现危险 danger found on a visit" if urgent else "探访发现需求 need found on a visit"
    phone = elder.phone or next((c["phone"] for c in elder.emergency_contacts), None)
    location: LocationInput | None = None
    if elder.location:
        lon, lat = elder.location["coordinates"]
        location = {"lon": lon, "lat": lat, "coord_system": "wgs84"}
    return CaseSubmission(
        service_code=plan["service_code"],
        answers=plan["answers"],
        description=f"{label}: {plan.get('note') or ''}".strip().rstrip(":"),
        location=location,
        division_code=elder.township,
        address=elder.address,
        contact={"name": elder.name, "phone": phone} if phone else None,
        served_person={"name": elder.name, "relation": "本人 self", "phone": elder.phone},
        preferred_window=plan.get("preferred_window"),
        source={"channel": "visit", "visit_id": key, "visit_record_id": visit.id, "elder_id": elder.id},
        urgent=urgent,
    )


async def open_referrals(ctx: Context, principal: Principal, elder: Elder, visit: Visit) -> Visit:
    """Open the case of every referral of a record that has none yet (safe to repeat); the record with their ids.

    Each case is linked as soon as it is open, so a failure part-way keeps what was done.
    """
    visits = VisitsRepository(ctx.db)
    referrals = list(visit.referrals)
    for i, ref in enumerate(visit.referrals):
        if ref.case_id:
            continue
        found = await case_reads.case_from_source(ctx=ctx, key="visit_id", value=ref.source_key)
        if found is not None:
            case_id = found.id
        else:
            data = _case_data(elder, visit, ref.plan, ref.source_key)
            try:
                case = await case_submit.submit_case(ctx=ctx, principal=principal, data=data)
                case_id = str(case["id"])
            except ConflictError:
                # Another attempt opened it meanwhile: the unique source key kept it to one case.
                found = await case_reads.case_from_source(ctx=ctx, key="visit_id", value=ref.source_key)
                if found is None:
                    raise
                case_id = found.id
        await visits.set_case_id(visit.id, i, case_id)
        referrals[i] = dataclasses.replace(ref, case_id=case_id)
        visit = dataclasses.replace(visit, referrals=tuple(referrals))
    return visit


async def retry_referrals(*, ctx: Context, older_than: timedelta = timedelta(minutes=1)) -> int:
    """Open the cases of referrals that failed when their visit was recorded; how many records were completed."""
    visits = VisitsRepository(ctx.db)
    elders = EldersRepository(ctx.db)
    done = 0
    for visit in await visits.with_unopened_referrals(ctx.now() - older_than, 100):
        by = visit.recorded_by
        principal = Principal(
            subject=by["subject"],
            role=by["role"],
            station_id=by.get("station_id"),
            division_prefix=by.get("division_prefix"),
        )
        elder = present(await elders.get(visit.elder_id), local_date(ctx.now()), tier_table(ctx.settings))
        try:
            await open_referrals(ctx, principal, elder, visit)
            done += 1
        except DomainError:
            log.exception("visit %s: referral retry failed", visit.id)
    return done
