"""Visit records (探访记录), machine check-ups and referrals of findings (需求转介); the due list is in due.py.

A record counts for the period that contains its ``visited_at`` (Asia/Shanghai) and only
if the person was reached. Records are append-only: a correction is a new record naming
the one it corrects, and the period's status is recomputed from the latest record that
is not superseded.

Referrals: each need found opens a case of its service type, and a danger found opens an
urgent 紧急求助 case, all through ``service.cases.submit.submit_case`` and routed like any case.
Each case carries ``source = {channel: "visit", visit_id: "<record>:need:<n>" or
"<record>:danger", visit_record_id, elder_id}``. The cases collection keeps
``source.visit_id`` unique, so each finding opens at most one case however often it is
retried, while a visit with several findings opens one case per finding.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import Any

from service.common.context import Context
from service.common.errors import (
    DomainError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from service.common.loops import pause
from service.common.models import SYSTEM, Principal
from service.identity import directory
from service.visits.elder_fields import EARLIEST, present, sane_time
from service.visits.elders import load_visible
from service.visits.inputs import VisitInput
from service.visits.models import Elder, Referral, Visit
from service.visits.periods import SHANGHAI, local_date, period_of
from service.visits.referrals import open_referrals, plan_referrals, referral_key, retry_referrals
from service.visits.repository.elders import EldersRepository
from service.visits.repository.visits import VisitSchedulesRepository, VisitsRepository
from service.visits.schedules import checkup_doc, close_periods, remind_due, schedule_elders, schedule_period
from service.visits.tiers import tier_table

log = logging.getLogger("huimin.visits")
HUMAN_METHODS = ("phone", "video", "home")
# A machine (AI) call posted by a calling platform: counted toward the weekly rate only where
# the county says so (config/county_rules.toml), and the rate is shown both ways.
MACHINE_METHOD = "ai_call"
METHODS = (*HUMAN_METHODS, MACHINE_METHOD)
METHOD_NAMES = {
    "phone": "电话 phone",
    "video": "视频 video",
    "home": "上门 home",
    "ai_call": "智能外呼 machine (AI) call",
}
# What a calling platform may flag, and the case each flag opens (as a visitor's finding would).
AI_FLAGS = ("needs_help", "feels_unwell", "asked_for_callback")
AI_FLAG_NAMES = {
    "needs_help": "需要帮助 needs help",
    "feels_unwell": "身体不适 feels unwell",
    "asked_for_callback": "要求回电 asked for a call back",
}
MACHINE_NEED_SERVICE = "elderly_home_visit"
FINDING_AREAS = ("health", "safety", "living", "mood")
LEVELS = ("good", "fair", "poor")
MAX_MISSES = 100
LOOP_SECONDS = 300.0


# ---------------------------------------------------------------- referrals (pure parts)


# ---------------------------------------------------------------- recording a visit


def machine_findings(data: VisitInput) -> VisitInput:
    """Pure: a machine call's flags as a visitor's findings: "needs help" is a danger (an urgent
    紧急求助 case), "feels unwell" or "asked for a call back" a need for a home visit (上门探访)."""
    flags = list(data.flags)
    if data.method != MACHINE_METHOD or not flags:
        return data
    note = "智能外呼：" + "、".join(AI_FLAG_NAMES[f] for f in flags)
    if data.summary:
        note += f"。{data.summary}"
    note = note[:1000]
    if "needs_help" in flags:
        return dataclasses.replace(data, danger={"found": True, "kind": "other", "note": note})
    return dataclasses.replace(data, needs=({"service_code": MACHINE_NEED_SERVICE, "note": note},))


def _check_visit_input(data: VisitInput, now: datetime, principal: Principal | None = None) -> None:
    if data.method not in METHODS:
        raise ValidationFailedError(
            "unknown_method",
            f"Unknown visit method {data.method!r}.",
            {"method": [f"Must be one of {', '.join(METHODS)}."]},
        )
    if principal is not None and principal.is_client and data.method != MACHINE_METHOD:
        raise PermissionDeniedError(
            "machine_calls_only", "An integrator client records machine (AI) calls only: method must be ai_call."
        )
    if data.method != MACHINE_METHOD and (data.flags or data.summary):
        raise ValidationFailedError(
            "flags_for_machine_calls",
            "flags and summary belong to machine (AI) calls; a visitor records needs and danger.",
            {"flags": ["Only with method ai_call."]},
        )
    if data.method == MACHINE_METHOD and (data.needs or data.danger or data.findings):
        raise ValidationFailedError(
            "findings_for_visitors",
            "A machine call reports flags and a summary; needs, danger and findings are a visitor's.",
            {"flags": ["Use flags (needs_help, feels_unwell, asked_for_callback) for a machine call."]},
        )
    problem = sane_time(data.visited_at, now)
    if problem == "Must not be in the future.":
        raise ValidationFailedError("visit_in_future", "The visit time is in the future.", {"visited_at": [problem]})
    if problem:
        raise ValidationFailedError(
            "visit_time_out_of_range", f"The visit time is out of range: {problem}", {"visited_at": [problem]}
        )


async def _check_territory(ctx: Context, principal: Principal, elder: Elder) -> None:
    """A calling platform's client records calls only to people whose township lies in its territory."""
    client = await directory.client_or_none(ctx=ctx, client_id=principal.subject)
    prefix = client.division_prefix if client is not None else None
    if prefix is None or not (elder.township or "").startswith(prefix):
        raise PermissionDeniedError(
            "outside_territory",
            "This person's township is outside the client's territory (division_prefix); "
            "an administrator sets the territory on the client.",
        )


def _check_visit_time(elder: Elder, visited_at: datetime, now: datetime) -> None:
    """A visit cannot predate the day the person was registered (nor, so, their birth)."""
    registered = elder.created_at or now
    day_start = datetime.combine(local_date(registered), datetime.min.time(), SHANGHAI)
    if visited_at < max(day_start, EARLIEST):
        message = f"Must not be before the person was registered ({local_date(registered).isoformat()})."
        raise ValidationFailedError(
            "visit_before_registration",
            "The visit time is before the person was registered.",
            {"visited_at": [message]},
        )


def _elder_schedule_source(elder: Elder) -> dict[str, Any]:
    return {
        "_id": elder.id,
        "tier": elder.tier,
        "previous_tier": elder.previous_tier,
        "tier_from": elder.tier_from,
        "station_id": elder.station_id,
        "township": elder.township,
        "county_code": elder.county_code,
        "city_code": elder.city_code,
        "name": elder.name,
    }


async def _recompute(ctx: Context, elder: Elder, at: datetime) -> list[str]:
    """Re-derive the status of the person's schedules covering ``at``; returns the periods visited."""
    schedules = VisitSchedulesRepository(ctx.db)
    visits = VisitsRepository(ctx.db)
    out = []
    for sched in await schedules.covering(elder.id, at):
        counting = await visits.counting_in(elder.id, sched["period_start"], sched["period_end"])
        await schedules.set_status(sched["_id"], counting)
        if counting is not None:
            out.append(sched["period"])
    return out


async def record_visit(*, ctx: Context, principal: Principal, data: VisitInput) -> dict[str, Any]:
    """Append a visit record, count it for its period if the person was reached, and refer what it found."""
    now = ctx.now()
    _check_visit_input(data, now, principal)
    # A calling platform works from the county's call list (elder ids), not the register itself,
    # and records calls only to the people of its territory.
    reader = SYSTEM if principal.is_client else principal
    elder = await load_visible(ctx=ctx, principal=reader, elder_id=data.elder_id)
    if principal.is_client:
        await _check_territory(ctx, principal, elder)
    data = machine_findings(data)
    if not elder.active:
        raise InvalidStateError("elder_not_active", "This person is no longer on the active register.")
    _check_visit_time(elder, data.visited_at, now)
    elder = present(elder, local_date(now), tier_table(ctx.settings))
    visits = VisitsRepository(ctx.db)
    corrected = None
    if data.corrects:
        try:
            corrected = await visits.get(data.corrects)
        except NotFoundError:
            corrected = None
        if corrected is None or corrected.elder_id != elder.id:
            raise ValidationFailedError(
                "invalid_correction",
                "A correction must name an earlier record of the same person.",
                {"corrects": ["No such record of this person."]},
            )
    plans = await plan_referrals(ctx, elder, data)
    visit_id = visits.new_id()
    visit = Visit(
        id=visit_id,
        elder_id=elder.id,
        station_id=elder.station_id,
        township=elder.township,
        method=data.method,
        visitor=principal.subject if principal.is_client else data.visitor or principal.subject,
        visited_at=data.visited_at,
        reached=bool(data.reached),
        findings=dict(data.findings or {}),
        needs=[dict(n) for n in data.needs],
        danger=dict(data.danger or {"found": False}),
        summary=data.summary,
        flags=list(data.flags),
        corrects=data.corrects,
        referrals=tuple(
            Referral(
                kind=p["kind"],
                service_code=p["service_code"],
                source_key=referral_key(visit_id, p["kind"], p["index"]),
                plan=p,
            )
            for p in plans
        ),
        recorded_by={
            "subject": principal.subject,
            "role": principal.role,
            "station_id": principal.station_id,
            "division_prefix": principal.division_prefix,
        },
        created_at=now,
    )
    await visits.insert(visit)
    schedules = VisitSchedulesRepository(ctx.db)
    if visit.reached and not (await schedules.covering(elder.id, visit.visited_at)):
        await schedule_elders(ctx=ctx, elders=[_elder_schedule_source(elder)], at=visit.visited_at)
    if corrected is not None:
        await _recompute(ctx, elder, visit.visited_at)
        if period_key(corrected.visited_at) != period_key(visit.visited_at):
            await _recompute(ctx, elder, corrected.visited_at)
    elif visit.reached and visit.method == MACHINE_METHOD:
        # Kept apart from a visitor's visit: whether it counts is the county's setting, read with the rate.
        for sched in await schedules.covering(elder.id, visit.visited_at):
            await schedules.mark_machine_reached(sched["_id"], visit)
    elif visit.reached:
        # Conditional: only the first counting record of a period claims it.
        for sched in await schedules.covering(elder.id, visit.visited_at):
            await schedules.mark_visited(sched["_id"], visit)
    counts_for = (await schedules.counted_by(elder.id, [visit_id])).get(visit_id, [])
    if visit.reached and visit.method != MACHINE_METHOD:
        await EldersRepository(ctx.db).note_visit(elder.id, visit.visited_at)
    try:
        visit = await open_referrals(ctx, principal, elder, visit)
    except DomainError:
        # The record stands; the referral loop retries cases that could not be opened now.
        log.exception("visit %s: a referral could not be opened yet", visit_id)
        visit = await visits.get(visit_id)  # with the cases that did open
    return visit_view(visit, counts_for)


async def request_checkup(
    *, ctx: Context, principal: Principal, elder_id: str, reason: str, source: dict[str, Any]
) -> dict[str, Any]:
    """Put a check-up visit due today on the person's due list (one per person and day); returns it.

    For staff of the person's station and above, and for the system acting on an alert.
    """
    elder = await load_visible(ctx=ctx, principal=principal, elder_id=elder_id)
    if not elder.active:
        raise InvalidStateError("elder_not_active", "This person is no longer on the active register.")
    now = ctx.now()
    doc = checkup_doc(_elder_schedule_source(elder), now, reason, source)
    created = await VisitSchedulesRepository(ctx.db).insert_one_new(doc)
    return {
        "id": doc["_id"],
        "elder_id": elder.id,
        "station_id": elder.station_id,
        "period": doc["period"],
        "due_by": doc["period_end"],
        "created": created,
    }


def period_key(at: datetime) -> str:
    return period_of("week", at).id


def visit_view(visit: Visit, counts_for: list[str] | None = None) -> dict[str, Any]:
    """A record as the API shows it; ``counts_for`` is read from the schedules it marked visited."""
    return {
        "id": visit.id,
        "elder_id": visit.elder_id,
        "station_id": visit.station_id,
        "method": visit.method,
        "visitor": visit.visitor,
        "visited_at": visit.visited_at,
        "reached": visit.reached,
        "findings": visit.findings,
        "needs": visit.needs,
        "danger": visit.danger,
        "summary": visit.summary,
        "flags": visit.flags,
        "corrects": visit.corrects,
        "counts_for": counts_for or [],
        "referrals": [{"kind": r.kind, "service_code": r.service_code, "case_id": r.case_id} for r in visit.referrals],
        "case_ids": [r.case_id for r in visit.referrals if r.case_id],
        "recorded_by": {"subject": visit.recorded_by["subject"], "role": visit.recorded_by["role"]},
        "created_at": visit.created_at,
    }


async def list_visits(*, ctx: Context, principal: Principal, elder_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """A person's visit records, newest first."""
    await load_visible(ctx=ctx, principal=principal, elder_id=elder_id)
    found = await VisitsRepository(ctx.db).list_for_elder(elder_id, limit)
    counted = await VisitSchedulesRepository(ctx.db).counted_by(elder_id, [v.id for v in found])
    return [visit_view(v, counted.get(v.id, [])) for v in found]


async def get_visit(*, ctx: Context, principal: Principal, visit_id: str) -> dict[str, Any]:
    """One visit record (with the periods it counts for and the cases it opened), if the caller may see the person."""
    visit: Visit | None
    try:
        visit = await VisitsRepository(ctx.db).get(visit_id)
    except NotFoundError:
        visit = None
    try:
        if visit is not None:
            await load_visible(ctx=ctx, principal=principal, elder_id=visit.elder_id)
    except NotFoundError:
        visit = None
    if visit is None:
        raise NotFoundError("visit_not_found", f"There is no visit record {visit_id!r}.")
    counted = await VisitSchedulesRepository(ctx.db).counted_by(visit.elder_id, [visit_id])
    return visit_view(visit, counted.get(visit_id, []))


# ---------------------------------------------------------------- background work


async def visits_loop(ctx: Context) -> None:
    """Every few minutes: schedule the current periods, raise due reminders and misses, retry referrals."""
    while True:
        async with ctx.loops.guard("visits"):
            now = ctx.now()
            created = await schedule_period(ctx=ctx, at=now)
            missed = await close_periods(ctx=ctx, at=now)
            due = await remind_due(ctx=ctx, at=now)
            retried = await retry_referrals(ctx=ctx)
            if created or missed or due or retried:
                extra = {"created": created, "missed": missed, "due": due, "referrals": retried}
                log.info("visit schedules", extra=extra)
        await pause(LOOP_SECONDS)
