"""Visit records (探访记录), the due list, the visit rate, and referrals of what a visit found (需求转介).

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

import logging
from datetime import UTC, datetime
from typing import Any

from service.audit import service as audit
from service.common.context import Context
from service.common.errors import (
    DomainError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from service.common.loops import pause
from service.common.models import SYSTEM, Page, Principal
from service.common.paging import decode_cursor, encode_cursor
from service.stations import service as stations
from service.visits.elder_fields import EARLIEST, present, sane_time
from service.visits.elders import can_see, load_visible, scope_query
from service.visits.models import Elder
from service.visits.periods import SHANGHAI, Period, local_date, parse_period, period_of
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


def machine_findings(data: dict[str, Any]) -> dict[str, Any]:
    """Pure: a machine call's flags as a visitor's findings: "needs help" is a danger (an urgent
    紧急求助 case), "feels unwell" or "asked for a call back" a need for a home visit (上门探访)."""
    flags = list(data.get("flags") or [])
    if data.get("method") != MACHINE_METHOD or not flags:
        return data
    note = "智能外呼：" + "、".join(AI_FLAG_NAMES[f] for f in flags)
    if data.get("summary"):
        note += f"。{data['summary']}"
    note = note[:1000]
    out = dict(data)
    if "needs_help" in flags:
        out["danger"] = {"found": True, "kind": "other", "note": note}
    else:
        out["needs"] = [{"service_code": MACHINE_NEED_SERVICE, "note": note}]
    return out


def _check_visit_input(data: dict[str, Any], now: datetime, principal: Principal | None = None) -> None:
    if data.get("method") not in METHODS:
        raise ValidationFailedError(
            "unknown_method",
            f"Unknown visit method {data.get('method')!r}.",
            {"method": [f"Must be one of {', '.join(METHODS)}."]},
        )
    if principal is not None and principal.is_client and data["method"] != MACHINE_METHOD:
        raise PermissionDeniedError(
            "machine_calls_only", "An integrator client records machine (AI) calls only: method must be ai_call."
        )
    if data["method"] != MACHINE_METHOD and (data.get("flags") or data.get("summary")):
        raise ValidationFailedError(
            "flags_for_machine_calls",
            "flags and summary belong to machine (AI) calls; a visitor records needs and danger.",
            {"flags": ["Only with method ai_call."]},
        )
    if data["method"] == MACHINE_METHOD and (data.get("needs") or data.get("danger") or data.get("findings")):
        raise ValidationFailedError(
            "findings_for_visitors",
            "A machine call reports flags and a summary; needs, danger and findings are a visitor's.",
            {"flags": ["Use flags (needs_help, feels_unwell, asked_for_callback) for a machine call."]},
        )
    problem = sane_time(data["visited_at"], now)
    if problem == "Must not be in the future.":
        raise ValidationFailedError("visit_in_future", "The visit time is in the future.", {"visited_at": [problem]})
    if problem:
        raise ValidationFailedError(
            "visit_time_out_of_range", f"The visit time is out of range: {problem}", {"visited_at": [problem]}
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


async def record_visit(*, ctx: Context, principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
    """Append a visit record, count it for its period if the person was reached, and refer what it found."""
    now = ctx.now()
    _check_visit_input(data, now, principal)
    # A calling platform works from the county's call list (elder ids), not the register itself.
    reader = SYSTEM if principal.is_client else principal
    elder = await load_visible(ctx=ctx, principal=reader, elder_id=data["elder_id"])
    data = machine_findings(data)
    if not elder.active:
        raise InvalidStateError("elder_not_active", "This person is no longer on the active register.")
    _check_visit_time(elder, data["visited_at"], now)
    elder = present(elder, local_date(now), tier_table(ctx.settings))
    visits = VisitsRepository(ctx.db)
    corrected = None
    if data.get("corrects"):
        try:
            corrected = await visits.get(data["corrects"])
        except NotFoundError:
            corrected = None
        if corrected is None or corrected["elder_id"] != elder.id:
            raise ValidationFailedError(
                "invalid_correction",
                "A correction must name an earlier record of the same person.",
                {"corrects": ["No such record of this person."]},
            )
    plans = await plan_referrals(ctx, elder, data)
    visit_id = visits.new_id()
    doc: dict[str, Any] = {
        "_id": visit_id,
        "elder_id": elder.id,
        "station_id": elder.station_id,
        "township": elder.township,
        "method": data["method"],
        "visitor": principal.subject if principal.is_client else data.get("visitor") or principal.subject,
        "visited_at": data["visited_at"],
        "reached": bool(data["reached"]),
        "findings": data.get("findings") or {},
        "needs": data.get("needs") or [],
        "danger": data.get("danger") or {"found": False},
        "summary": data.get("summary"),
        "flags": list(data.get("flags") or []),
        "corrects": data.get("corrects"),
        "referrals": [
            {
                "kind": p["kind"],
                "service_code": p["service_code"],
                "source_key": referral_key(visit_id, p["kind"], p["index"]),
                "plan": p,
                "case_id": None,
            }
            for p in plans
        ],
        "recorded_by": {
            "subject": principal.subject,
            "role": principal.role,
            "station_id": principal.station_id,
            "division_prefix": principal.division_prefix,
        },
        "created_at": now,
    }
    await visits.insert(doc)
    schedules = VisitSchedulesRepository(ctx.db)
    if doc["reached"] and not (await schedules.covering(elder.id, doc["visited_at"])):
        await schedule_elders(ctx=ctx, elders=[_elder_schedule_source(elder)], at=doc["visited_at"])
    if corrected is not None:
        await _recompute(ctx, elder, doc["visited_at"])
        if period_key(corrected["visited_at"]) != period_key(doc["visited_at"]):
            await _recompute(ctx, elder, corrected["visited_at"])
    elif doc["reached"] and doc["method"] == MACHINE_METHOD:
        # Kept apart from a visitor's visit: whether it counts is the county's setting, read with the rate.
        for sched in await schedules.covering(elder.id, doc["visited_at"]):
            await schedules.mark_machine_reached(sched["_id"], doc)
    elif doc["reached"]:
        # Conditional: only the first counting record of a period claims it.
        for sched in await schedules.covering(elder.id, doc["visited_at"]):
            await schedules.mark_visited(sched["_id"], doc)
    counts_for = (await schedules.counted_by(elder.id, [visit_id])).get(visit_id, [])
    if doc["reached"] and doc["method"] != MACHINE_METHOD:
        await EldersRepository(ctx.db).note_visit(elder.id, doc["visited_at"])
    try:
        await open_referrals(ctx, principal, elder, doc)
    except DomainError:
        # The record stands; the referral loop retries cases that could not be opened now.
        log.exception("visit %s: a referral could not be opened yet", visit_id)
    return visit_view(doc, counts_for)


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


def visit_view(doc: dict[str, Any], counts_for: list[str] | None = None) -> dict[str, Any]:
    """A record as the API shows it; ``counts_for`` is read from the schedules it marked visited."""
    return {
        "id": doc["_id"],
        "elder_id": doc["elder_id"],
        "station_id": doc["station_id"],
        "method": doc["method"],
        "visitor": doc["visitor"],
        "visited_at": doc["visited_at"],
        "reached": doc["reached"],
        "findings": doc.get("findings") or {},
        "needs": doc.get("needs") or [],
        "danger": doc.get("danger") or {"found": False},
        "summary": doc.get("summary"),
        "flags": doc.get("flags") or [],
        "corrects": doc.get("corrects"),
        "counts_for": counts_for or [],
        "referrals": [
            {"kind": r["kind"], "service_code": r["service_code"], "case_id": r.get("case_id")}
            for r in doc.get("referrals") or []
        ],
        "case_ids": [r["case_id"] for r in doc.get("referrals") or [] if r.get("case_id")],
        "recorded_by": {"subject": doc["recorded_by"]["subject"], "role": doc["recorded_by"]["role"]},
        "created_at": doc["created_at"],
    }


async def list_visits(*, ctx: Context, principal: Principal, elder_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """A person's visit records, newest first."""
    await load_visible(ctx=ctx, principal=principal, elder_id=elder_id)
    docs = await VisitsRepository(ctx.db).list_for_elder(elder_id, limit)
    counted = await VisitSchedulesRepository(ctx.db).counted_by(elder_id, [d["_id"] for d in docs])
    return [visit_view(d, counted.get(d["_id"], [])) for d in docs]


async def get_visit(*, ctx: Context, principal: Principal, visit_id: str) -> dict[str, Any]:
    """One visit record (with the periods it counts for and the cases it opened), if the caller may see the person."""
    try:
        doc = await VisitsRepository(ctx.db).get(visit_id)
    except NotFoundError:
        doc = None
    try:
        if doc is not None:
            await load_visible(ctx=ctx, principal=principal, elder_id=doc["elder_id"])
    except NotFoundError:
        doc = None
    if doc is None:
        raise NotFoundError("visit_not_found", f"There is no visit record {visit_id!r}.")
    counted = await VisitSchedulesRepository(ctx.db).counted_by(doc["elder_id"], [visit_id])
    return visit_view(doc, counted.get(visit_id, []))


# ---------------------------------------------------------------- due list


def _cursor(doc: dict[str, Any]) -> str:
    return encode_cursor(doc["period_end"], doc["period_start"], doc["_id"])


def _after(cursor: str) -> dict[str, Any]:
    end, start, sid = decode_cursor(cursor, datetime, datetime, str)
    return {
        "$or": [
            {"period_end": {"$gt": end}},
            {"period_end": end, "period_start": {"$gt": start}},
            {"period_end": end, "period_start": start, "_id": {"$gt": sid}},
        ]
    }


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _from_cursor(query: dict[str, Any], cursor: str) -> dict[str, Any]:
    """``query`` limited to what follows the cursor, as one plain filter whose ``period_end`` range
    starts at the cursor's: the index range begins there on every server (the embedded one scans
    the whole collection for a top-level ``$and``)."""
    after = _after(cursor)
    end = after["$or"][1]["period_end"]
    bounds = dict(query.get("period_end") or {})
    low = bounds.get("$gte", bounds.get("$gt"))
    if low is None or _utc(end) >= _utc(low):
        bounds.pop("$gt", None)
        bounds["$gte"] = end
    return {**query, "period_end": bounds, **after}


def _period_scope(period: Period) -> dict[str, Any]:
    """Schedules whose due date (the end of their own period) falls within ``period``."""
    return {"period_end": {"$gt": period.start, "$lte": period.end}}


async def _station_scope(ctx: Context, principal: Principal, station: str | None) -> dict[str, Any]:
    if station is None:
        return scope_query(principal)
    try:
        st = await stations.get_station(ctx=ctx, station_id=station)
    except NotFoundError:
        raise NotFoundError("station_not_found", f"There is no station {station!r}.") from None
    if not can_see(principal, station_id=st.id, township=st.code):
        raise NotFoundError("station_not_found", f"There is no station {station!r}.")
    return {"station_id": st.id}


async def list_due(
    *,
    ctx: Context,
    principal: Principal,
    station: str | None = None,
    period: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[dict[str, Any]]:
    """Who still needs a visit: unvisited schedules of periods in progress (or due in ``period``), soonest first."""
    query = await _station_scope(ctx, principal, station)
    now = ctx.now()
    if period:
        query.update(_period_scope(parse(period)))
    else:
        query.update({"period_start": {"$lte": now}, "period_end": {"$gt": now}})
    if cursor:
        query = _from_cursor(query, cursor)
    docs = await VisitSchedulesRepository(ctx.db).due(query, limit + 1)
    page, more = docs[:limit], len(docs) > limit
    elders = await EldersRepository(ctx.db).get_many([d["elder_id"] for d in page])
    await audit.record_reads(
        ctx=ctx,
        principal=principal,
        action="visit.due_list",
        target_kind="elder",
        target_ids=[d["elder_id"] for d in page],
        fields=["name", "phone", "address"],
        keyed_as="elder_id",
    )
    items = []
    for d in page:
        e = elders.get(d["elder_id"])
        items.append(
            {
                "elder_id": d["elder_id"],
                "name": e.name if e else None,
                "phone": e.phone if e else None,
                "address": e.address if e else None,
                "visitor_id": e.visitor_id if e else None,
                "last_visited_at": e.last_visited_at if e else None,
                "station_id": d["station_id"],
                "township": d["township"],
                "tier": d["tier"],
                "period": d["period"],
                "due_by": d["period_end"],
                "overdue": d["period_end"] <= now,
            }
        )
    return Page(items=items, next_cursor=_cursor(page[-1]) if more and page else None)


def parse(period: str) -> Period:
    try:
        return parse_period(period)
    except ValueError as exc:
        raise ValidationFailedError("invalid_period", str(exc), {"period": [str(exc)]}) from None


# ---------------------------------------------------------------- visit rate


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
