"""Visit records (探访记录), the due list, the visit rate, and referrals of what a visit found (需求转介).

A record counts for the period that contains its ``visited_at`` (Asia/Shanghai) and only
if the person was reached. Records are append-only: a correction is a new record naming
the one it corrects, and the period's status is recomputed from the latest record that
is not superseded.

Referrals: each need found opens a case of its service type, and a danger found opens an
urgent 紧急求助 case, all through ``service.cases.submit_case`` and routed like any case.
Each case carries ``source = {channel: "visit", visit_id: "<record>:need:<n>" or
"<record>:danger", visit_record_id, elder_id}``. The cases collection keeps
``source.visit_id`` unique, so each finding opens at most one case however often it is
retried, while a visit with several findings opens one case per finding.
"""

from __future__ import annotations

import base64
import logging
import re
from datetime import datetime, timedelta
from typing import Any

from service import cases, catalog
from service.context import Context
from service.elders import EARLIEST, can_see, load_visible, present, sane_time, scope_query
from service.elders_model import Elder
from service.errors import (
    ConflictError,
    DomainError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from service.loops import pause
from service.models import Page, Principal
from service.storage.cases import CasesRepository
from service.storage.elders import ElderAuditRepository, EldersRepository
from service.storage.stations import StationsRepository
from service.storage.visits import VisitSchedulesRepository, VisitsRepository
from service.visit_periods import SHANGHAI, TIER_KIND, TIER_NAMES, TIERS, Period, local_date, parse_period, period_of
from service.visit_schedules import close_periods, remind_due, schedule_elders, schedule_period
from service.visit_tiers import tier_table

log = logging.getLogger("huimin.visits")
METHODS = ("phone", "video", "home")
METHOD_NAMES = {"phone": "电话 phone", "video": "视频 video", "home": "上门 home"}
# What the plan's weekly figure counts, stated beside it.
PLAN_TIER = "high"
PLAN_NAME = "周探访率 weekly visit rate"
COUNTING_RULE = (
    "本周（周一至周日，北京时间）内至少一次联系到本人的电话、视频或上门探访计为已探访；未联系到本人的、"
    "智能外呼（机器人电话）不计。A person on the weekly tier counts as visited when, within the ISO week "
    "(Monday to Sunday, Beijing time), at least one phone, video or home visit reached them; unreached "
    "attempts and machine (AI) calls do not count."
)
KIND_ORDER = {"week": 0, "month": 1, "quarter": 2}
MAX_SERIES_WEEKS = 104
FINDING_AREAS = ("health", "safety", "living", "mood")
LEVELS = ("good", "fair", "poor")
DANGER_SERVICE = "elderly_emergency"
DANGER_KINDS = ("fall", "illness", "utilities", "missing", "other")
GROUPS = {"station": "station_id", "county": "county_code", "city": "city_code"}
MAX_MISSES = 100
LOOP_SECONDS = 300.0


# ---------------------------------------------------------------- referrals (pure parts)


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


def _referral_key(visit_id: str, kind: str, index: int) -> str:
    return f"{visit_id}:danger" if kind == "danger" else f"{visit_id}:need:{index}"


async def _plan_referrals(ctx: Context, elder: Elder, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Check each need (and a danger) against the catalogue before anything is written."""
    plans: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for i, need in enumerate(data.get("needs") or []):
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
    danger = data.get("danger") or {}
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


def _case_data(elder: Elder, visit: dict[str, Any], plan: dict[str, Any], key: str) -> dict[str, Any]:
    urgent = plan["kind"] == "danger"
    label = "探访发现危险 danger found on a visit" if urgent else "探访发现需求 need found on a visit"
    phone = elder.phone or next((c["phone"] for c in elder.emergency_contacts), None)
    data: dict[str, Any] = {
        "service_code": plan["service_code"],
        "answers": plan["answers"],
        "description": f"{label}: {plan.get('note') or ''}".strip().rstrip(":"),
        "division_code": elder.township,
        "address": elder.address,
        "contact": {"name": elder.name, "phone": phone} if phone else None,
        "served_person": {"name": elder.name, "relation": "本人 self", "phone": elder.phone},
        "preferred_window": plan.get("preferred_window"),
        "anonymous": False,
        "photos": [],
        "source": {"channel": "visit", "visit_id": key, "visit_record_id": visit["_id"], "elder_id": elder.id},
        "urgent": urgent,
    }
    if elder.location:
        lon, lat = elder.location["coordinates"]
        data["location"] = {"lon": lon, "lat": lat, "coord_system": "wgs84"}
    return data


async def _open_referrals(ctx: Context, principal: Principal, elder: Elder, visit: dict[str, Any]) -> None:
    """Open the case of every referral of a record that has none yet (safe to repeat)."""
    visits = VisitsRepository(ctx.db)
    linked = CasesRepository(ctx.db)
    pending = [(i, r) for i, r in enumerate(visit.get("referrals") or []) if not r.get("case_id")]
    for i, ref in pending:
        found = await linked.find_by_source("visit_id", ref["source_key"])
        if found is not None:
            case_id = str(found["_id"])
        else:
            data = _case_data(elder, visit, ref["plan"], ref["source_key"])
            try:
                case = await cases.submit_case(ctx=ctx, principal=principal, data=data)
                case_id = str(case["id"])
            except ConflictError:
                # Another attempt opened it meanwhile: the unique source key kept it to one case.
                found = await linked.find_by_source("visit_id", ref["source_key"])
                if found is None:
                    raise
                case_id = str(found["_id"])
        await visits.set_case_id(visit["_id"], i, case_id)
        ref["case_id"] = case_id


# ---------------------------------------------------------------- recording a visit


def _check_visit_input(data: dict[str, Any], now: datetime) -> None:
    if data.get("method") not in METHODS:
        raise ValidationFailedError(
            "unknown_method",
            f"Unknown visit method {data.get('method')!r}.",
            {"method": [f"Must be one of {', '.join(METHODS)}."]},
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
    _check_visit_input(data, now)
    elder = await load_visible(ctx=ctx, principal=principal, elder_id=data["elder_id"])
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
    plans = await _plan_referrals(ctx, elder, data)
    visit_id = visits.new_id()
    doc: dict[str, Any] = {
        "_id": visit_id,
        "elder_id": elder.id,
        "station_id": elder.station_id,
        "township": elder.township,
        "method": data["method"],
        "visitor": data.get("visitor") or principal.subject,
        "visited_at": data["visited_at"],
        "reached": bool(data["reached"]),
        "findings": data.get("findings") or {},
        "needs": data.get("needs") or [],
        "danger": data.get("danger") or {"found": False},
        "corrects": data.get("corrects"),
        "referrals": [
            {
                "kind": p["kind"],
                "service_code": p["service_code"],
                "source_key": _referral_key(visit_id, p["kind"], p["index"]),
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
    elif doc["reached"]:
        # Conditional: only the first counting record of a period claims it.
        for sched in await schedules.covering(elder.id, doc["visited_at"]):
            await schedules.mark_visited(sched["_id"], doc)
    counts_for = (await schedules.counted_by(elder.id, [visit_id])).get(visit_id, [])
    if doc["reached"]:
        await EldersRepository(ctx.db).note_visit(elder.id, doc["visited_at"])
    try:
        await _open_referrals(ctx, principal, elder, doc)
    except DomainError:
        # The record stands; the referral loop retries cases that could not be opened now.
        log.exception("visit %s: a referral could not be opened yet", visit_id)
    return visit_view(doc, counts_for)


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


async def retry_referrals(*, ctx: Context, older_than: timedelta = timedelta(minutes=1)) -> int:
    """Open the cases of referrals that failed when their visit was recorded; how many records were completed."""
    visits = VisitsRepository(ctx.db)
    elders = EldersRepository(ctx.db)
    done = 0
    for doc in (
        await visits.col.find(
            {"referrals": {"$elemMatch": {"case_id": None}}, "created_at": {"$lt": ctx.now() - older_than}}
        )
        .limit(100)
        .to_list()
    ):
        by = doc["recorded_by"]
        principal = Principal(
            subject=by["subject"],
            role=by["role"],
            station_id=by.get("station_id"),
            division_prefix=by.get("division_prefix"),
        )
        elder = present(await elders.get(doc["elder_id"]), local_date(ctx.now()), tier_table(ctx.settings))
        try:
            await _open_referrals(ctx, principal, elder, doc)
            done += 1
        except DomainError:
            log.exception("visit %s: referral retry failed", doc["_id"])
    return done


# ---------------------------------------------------------------- due list


def _cursor(doc: dict[str, Any]) -> str:
    raw = f"{doc['period_end'].isoformat()}|{doc['period_start'].isoformat()}|{doc['_id']}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _after(cursor: str) -> dict[str, Any] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        end_s, start_s, sid = raw.split("|", 2)
        end, start = datetime.fromisoformat(end_s), datetime.fromisoformat(start_s)
    except (ValueError, UnicodeDecodeError):
        return None
    return {
        "$or": [
            {"period_end": {"$gt": end}},
            {"period_end": end, "period_start": {"$gt": start}},
            {"period_end": end, "period_start": start, "_id": {"$gt": sid}},
        ]
    }


def _period_scope(period: Period) -> dict[str, Any]:
    """Schedules whose due date (the end of their own period) falls within ``period``."""
    return {"period_end": {"$gt": period.start, "$lte": period.end}}


async def _station_scope(ctx: Context, principal: Principal, station: str | None) -> dict[str, Any]:
    if station is None:
        return scope_query(principal)
    try:
        st = await StationsRepository(ctx.db).get(station)
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
        query.update(_period_scope(_parse(period)))
    else:
        query.update({"period_start": {"$lte": now}, "period_end": {"$gt": now}})
    if cursor and (after := _after(cursor)):
        query = {"$and": [query, after]}
    docs = await VisitSchedulesRepository(ctx.db).due(query, limit + 1)
    page, more = docs[:limit], len(docs) > limit
    elders = await EldersRepository(ctx.db).get_many([d["elder_id"] for d in page])
    await ElderAuditRepository(ctx.db).record(
        actor={"subject": principal.subject, "role": principal.role},
        action="visit.due_list",
        elder_ids=[d["elder_id"] for d in page],
        at=now,
        fields=["name", "phone", "address"],
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


def _parse(period: str) -> Period:
    try:
        return parse_period(period)
    except ValueError as exc:
        raise ValidationFailedError("invalid_period", str(exc), {"period": [str(exc)]}) from None


# ---------------------------------------------------------------- visit rate


def _rate(visited: int, due: int) -> float | None:
    return round(visited / due, 4) if due else None


def _stats_scope(principal: Principal, division: str | None) -> dict[str, Any]:
    if principal.role not in ("worker", "station_head", "supervisor", "admin"):
        raise PermissionDeniedError("staff_only", "The visit rate is for staff.")
    query: dict[str, Any] = {}
    if principal.role == "supervisor":
        prefix = principal.division_prefix or ""
        if not prefix:
            raise PermissionDeniedError("no_division", "Your account has no division assigned.")
        if division and not division.startswith(prefix):
            raise PermissionDeniedError("outside_your_area", "That division is outside yours.")
        division = division or prefix
    elif principal.role in ("worker", "station_head"):
        query["station_id"] = principal.station_id or ""
    if division:
        query["township"] = {"$regex": f"^{re.escape(division)}"}
    return query


def tier_scopes(p: Period) -> dict[str, dict[str, Any]]:
    """Per tier, the schedules a report of period ``p`` counts.

    A tier whose periods are as long as ``p`` or shorter counts its periods ending within
    ``p`` (a week report: that week of the weekly tier); a tier with longer periods counts
    its period in progress at the end of ``p`` (a week report: the month and the quarter
    of the week's last day), so each tier is measured on its own period, never mixed.
    """
    out = {}
    for tier in TIERS:
        kind = TIER_KIND[tier]
        if KIND_ORDER[kind] <= KIND_ORDER[p.kind]:
            out[tier] = {"kind": kind, "period_end": {"$gt": p.start, "$lte": p.end}}
        else:
            out[tier] = {"kind": kind, "period": period_of(kind, p.end - timedelta(microseconds=1)).id}
    return out


def _covers(p: Period, tier: str) -> tuple[str | None, str]:
    scope = tier_scopes(p)[tier]
    if "period" in scope:
        return scope["period"], scope["period"]
    kind = TIER_KIND[tier]
    if kind == p.kind:
        return p.id, p.id
    return None, f"{kind}s ending in {p.id}"


def rate_pipeline(
    match: dict[str, Any], scopes: dict[str, dict[str, Any]], group_field: str, max_misses: int = MAX_MISSES
) -> list[dict[str, Any]]:
    """The aggregation behind the visit rate: per tier (each on its own period), by method, by group, misses."""
    counts = {"due": {"$sum": 1}, "visited": {"$sum": {"$cond": ["$visited", 1, 0]}}}
    return [
        {"$match": {**match, "withdrawn": None, "$or": list(scopes.values())}},
        {
            "$facet": {
                "by_tier": [{"$group": {"_id": "$tier", **counts}}],
                "by_method": [
                    {"$match": {"tier": PLAN_TIER, "visited": True}},
                    {"$group": {"_id": "$method", "visited": {"$sum": 1}}},
                ],
                "groups": [
                    {"$group": {"_id": {"key": f"${group_field}", "tier": "$tier"}, **counts}},
                    {"$sort": {"_id.key": 1}},
                ],
                "misses": [
                    {"$match": {"visited": False}},
                    {"$sort": {"period_end": 1, "elder_id": 1}},
                    {"$limit": max_misses},
                    {
                        "$project": {
                            "elder_id": 1,
                            "station_id": 1,
                            "tier": 1,
                            "period": 1,
                            "period_end": 1,
                            "name_masked": 1,
                        }
                    },
                ],
            }
        },
    ]


def plan_statement() -> dict[str, Any]:
    """What the plan's figure counts, shown beside it."""
    return {
        "name": PLAN_NAME,
        "tier": PLAN_TIER,
        "tier_name": TIER_NAMES[PLAN_TIER],
        "counted_methods": [{"method": m, "name": METHOD_NAMES[m]} for m in METHODS],
        "not_counted": ["unreached attempts 未联系到本人", "machine_call 智能外呼"],
        "rule": COUNTING_RULE,
    }


def _tier_rows(p: Period, rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for t in TIERS:
        period, covers = _covers(p, t)
        due, visited = rows.get(t, {}).get("due", 0), rows.get(t, {}).get("visited", 0)
        out.append(
            {"tier": t, "period": period, "covers": covers, "due": due, "visited": visited, "rate": _rate(visited, due)}
        )
    return out


async def visit_stats(
    *,
    ctx: Context,
    principal: Principal,
    division: str | None = None,
    period: str | None = None,
    group_by: str = "station",
    misses_limit: int = 100,
) -> dict[str, Any]:
    """The plan's weekly rate (weekly tier only) by station/county/city, the other tiers beside it, and the misses."""
    if group_by not in GROUPS:
        raise ValidationFailedError(
            "invalid_group_by", "Unknown grouping.", {"group_by": [f"Use {', '.join(GROUPS)}."]}
        )
    now = ctx.now()
    p = _parse(period) if period else period_of("week", now)
    scope = _stats_scope(principal, division)
    scopes = tier_scopes(p)
    [facets] = await VisitSchedulesRepository(ctx.db).aggregate(
        rate_pipeline(scope, scopes, GROUPS[group_by], misses_limit)
    )
    by_tier = {r["_id"]: r for r in facets["by_tier"]}
    plan = by_tier.get(PLAN_TIER, {"due": 0, "visited": 0})
    grouped: dict[str, dict[str, dict[str, Any]]] = {}
    for g in facets["groups"]:
        grouped.setdefault(g["_id"]["key"], {})[g["_id"]["tier"]] = g
    names: dict[str, str] = {}
    if group_by == "station":
        names = {s.id: s.name for s in await StationsRepository(ctx.db).get_many(list(grouped))}
    misses = facets["misses"]
    elders = await EldersRepository(ctx.db).get_many([m["elder_id"] for m in misses])
    unvisited = sum(r["due"] - r["visited"] for r in by_tier.values())
    plan_period, plan_covers = _covers(p, PLAN_TIER)
    return {
        "period": p.id,
        "period_start": p.start,
        "period_end": p.end,
        "closed": p.end <= now,
        "division": division or principal.division_prefix,
        "group_by": group_by,
        "plan": {**plan_statement(), "period": plan_period, "covers": plan_covers},
        "due": plan["due"],
        "visited": plan["visited"],
        "rate": _rate(plan["visited"], plan["due"]),
        "by_tier": _tier_rows(p, by_tier),
        "by_method": [
            {"method": m, "visited": next((r["visited"] for r in facets["by_method"] if r["_id"] == m), 0)}
            for m in METHODS
        ],
        "groups": [
            {
                "key": key,
                "name": names.get(key),
                "due": rows.get(PLAN_TIER, {}).get("due", 0),
                "visited": rows.get(PLAN_TIER, {}).get("visited", 0),
                "rate": _rate(rows.get(PLAN_TIER, {}).get("visited", 0), rows.get(PLAN_TIER, {}).get("due", 0)),
                "by_tier": _tier_rows(p, rows),
            }
            for key, rows in sorted(grouped.items())
        ],
        "misses": [
            {
                "elder_id": m["elder_id"],
                "name_masked": m.get("name_masked"),
                "station_id": m["station_id"],
                "tier": m["tier"],
                "period": m["period"],
                "last_visited_at": elders[m["elder_id"]].last_visited_at if m["elder_id"] in elders else None,
            }
            for m in misses
        ],
        "misses_truncated": unvisited > len(misses),
    }


def weekly_pipeline(match: dict[str, Any], first: Period, last: Period) -> list[dict[str, Any]]:
    """The aggregation behind the weekly series: the weekly tier's due and visited per ISO week."""
    return [
        {
            "$match": {
                **match,
                "kind": "week",
                "tier": PLAN_TIER,
                "withdrawn": None,
                "period_end": {"$gt": first.start, "$lte": last.end},
            }
        },
        {"$group": {"_id": "$period", "due": {"$sum": 1}, "visited": {"$sum": {"$cond": ["$visited", 1, 0]}}}},
        {"$sort": {"_id": 1}},
    ]


async def weekly_series(
    *,
    ctx: Context,
    principal: Principal,
    division: str | None = None,
    weeks: int = 12,
    until: str | None = None,
) -> dict[str, Any]:
    """The plan's weekly rate for each of the last ``weeks`` ISO weeks up to ``until`` (default: this week)."""
    now = ctx.now()
    last = _parse(until) if until else period_of("week", now)
    if last.kind != "week":
        raise ValidationFailedError(
            "invalid_period", "Give an ISO week such as 2026-W48.", {"until": ["Must be an ISO week."]}
        )
    if not 1 <= weeks <= MAX_SERIES_WEEKS:
        raise ValidationFailedError(
            "invalid_weeks", "Too many or too few weeks.", {"weeks": [f"Must be 1 to {MAX_SERIES_WEEKS}."]}
        )
    series = [last]
    while len(series) < weeks:
        series.insert(0, period_of("week", series[0].start - timedelta(days=1)))
    rows = {
        r["_id"]: r
        for r in await VisitSchedulesRepository(ctx.db).aggregate(
            weekly_pipeline(_stats_scope(principal, division), series[0], last)
        )
    }
    return {
        "division": division or principal.division_prefix,
        "plan": plan_statement(),
        "items": [
            {
                "period": w.id,
                "period_start": w.start,
                "period_end": w.end,
                "closed": w.end <= now,
                "due": rows.get(w.id, {}).get("due", 0),
                "visited": rows.get(w.id, {}).get("visited", 0),
                "rate": _rate(rows.get(w.id, {}).get("visited", 0), rows.get(w.id, {}).get("due", 0)),
            }
            for w in series
        ],
    }


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
