"""Open311 service requests: reading them (GET requests, one request, a token) as the GeoReport v2 views."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from service.cases import reads as case_reads
from service.cases import states
from service.cases.states import OPEN_STATES, STATES
from service.common.context import Context
from service.common.errors import NotFoundError, ValidationFailedError
from service.common.models import Principal
from service.common.timestamps import rfc3339
from service.open311.service import DEFAULT_SPAN, MAX_IDS, MAX_ROWS, Params, authenticate, check_jurisdiction, one

CLOSED_STATES = frozenset(STATES) - OPEN_STATES


def status_of(state: str) -> str:
    """Pure: our case state as the spec's open/closed."""
    return "closed" if state in CLOSED_STATES else "open"


def status_notes(case: dict[str, Any]) -> str | None:
    """Pure: the latest note, reason or result in the case's history, else the state's label."""
    for entry in reversed(case.get("history") or []):
        data = entry.get("data") or {}
        for text in (entry.get("note"), data.get("result"), data.get("reason")):
            if text:
                return str(text)
    label = states.STATE_LABELS.get(case.get("status", ""))
    return f"{label['zh']} {label['en']}" if label else None


def _iso(value: Any) -> str | None:
    return rfc3339(value) if isinstance(value, datetime) else None


def request_view(case: dict[str, Any]) -> dict[str, Any]:
    """Pure: one case as a GeoReport service request."""
    service = case.get("service") or {}
    coords = ((case.get("location") or {}).get("coordinates")) or [None, None]
    source = case.get("source") or {}
    return {
        "service_request_id": case["number"],
        "status": status_of(case["status"]),
        "status_notes": status_notes(case),
        "service_name": " ".join(p for p in (service.get("name_zh"), service.get("name_en")) if p),
        "service_code": service.get("code"),
        "description": case.get("description"),
        "agency_responsible": case.get("station_name"),
        "service_notice": None,
        "requested_datetime": _iso(case.get("created_at")),
        "updated_datetime": _iso(case.get("updated_at")),
        "expected_datetime": _iso(case.get("resolve_due_at")),
        "address": case.get("address"),
        "address_id": case.get("division_code") or source.get("address_id"),
        "zipcode": None,
        "lat": coords[1],
        "long": coords[0],
        "media_url": source.get("media_url"),
    }


def _date(params: Params, name: str) -> datetime | None:
    raw = one(params, name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ValidationFailedError(
            "invalid_date",
            f"{name} must be an RFC 3339 time with an offset, e.g. 2026-01-01T00:00:00Z.",
            {name: ["Bad."]},
        )
    return value


def _csv(params: Params, name: str) -> list[str]:
    return [p.strip() for v in params.get(name, []) for p in v.split(",") if p.strip()]


@dataclasses.dataclass(frozen=True, slots=True)
class RequestQuery:
    ids: list[str]
    service_codes: list[str]
    start: datetime | None
    end: datetime | None
    statuses: list[str]


def parse_request_query(params: Params, now: datetime) -> RequestQuery:
    """Pure: the GET requests filters with the spec's defaults (last 90 days)."""
    ids = _csv(params, "service_request_id")
    if len(ids) > MAX_IDS:
        raise ValidationFailedError(
            "too_many_ids",
            f"Ask for at most {MAX_IDS} service_request_id values at once ({len(ids)} given); split the list.",
            {"service_request_id": [f"At most {MAX_IDS} values."]},
        )
    if ids:  # the spec: service_request_id overrides every other filter
        return RequestQuery(ids=ids, service_codes=[], start=None, end=None, statuses=[])
    statuses = _csv(params, "status")
    bad = [s for s in statuses if s not in ("open", "closed")]
    if bad:
        raise ValidationFailedError("invalid_status", "status is open, closed or both.", {"status": ["open|closed"]})
    start, end = _date(params, "start_date"), _date(params, "end_date")
    if start is None and end is None:
        end, start = now, now - DEFAULT_SPAN
    elif start is None:
        assert end is not None
        start = end - DEFAULT_SPAN
    elif end is None:
        end = start + DEFAULT_SPAN
    if end < start:
        raise ValidationFailedError("invalid_date", "end_date is before start_date.", {"end_date": ["Too early."]})
    if end - start > DEFAULT_SPAN:
        raise ValidationFailedError(
            "date_range_too_long", "start_date to end_date may not span more than 90 days.", {"end_date": ["Too far."]}
        )
    return RequestQuery(ids=[], service_codes=_csv(params, "service_code"), start=start, end=end, statuses=statuses)


def _filter(principal: Principal, q: RequestQuery) -> dict[str, Any]:
    """One plain filter, the time range first: a planner that serves one clause from an index
    (the embedded server does) reads the requested days, not every request the client made."""
    filt: dict[str, Any] = {}
    created: dict[str, Any] = {}
    if q.start is not None:
        created["$gte"] = q.start
    if q.end is not None:
        created["$lte"] = q.end
    if created:
        filt["created_at"] = created
    filt["created_by.subject"] = principal.subject
    if q.ids:
        filt["number"] = {"$in": q.ids}
    if q.service_codes:
        filt["service.code"] = {"$in": q.service_codes}
    if q.statuses and set(q.statuses) != {"open", "closed"}:
        closed = sorted(CLOSED_STATES)
        filt["status"] = {"$in": closed} if q.statuses == ["closed"] else {"$nin": closed}
    return filt


async def list_requests(*, ctx: Context, params: Params, basic: tuple[str, str] | None) -> list[dict[str, Any]]:
    """GET requests: the client's own requests, newest first, at most 1,000."""
    check_jurisdiction(params)
    principal = await authenticate(ctx=ctx, params=params, basic=basic)
    query = parse_request_query(params, ctx.now())
    docs = await case_reads.find_cases(
        ctx=ctx, query=_filter(principal, query), sort=[("created_at", -1), ("_id", -1)], limit=MAX_ROWS
    )
    return [request_view(d) for d in docs]


async def get_request(
    *, ctx: Context, service_request_id: str, params: Params, basic: tuple[str, str] | None
) -> list[dict[str, Any]]:
    """GET requests/{id}: one of the client's requests (a one-element list, as the spec has it)."""
    check_jurisdiction(params)
    principal = await authenticate(ctx=ctx, params=params, basic=basic)
    docs = await case_reads.find_cases(
        ctx=ctx,
        query={"number": service_request_id, "created_by.subject": principal.subject},
        sort=[("_id", 1)],
        limit=1,
    )
    if not docs:
        raise NotFoundError("request_not_found", f"No service request {service_request_id!r}.")
    return [request_view(docs[0])]


async def get_token(*, ctx: Context, token: str, params: Params, basic: tuple[str, str] | None) -> list[dict[str, Any]]:
    """GET tokens/{token}: requests are created at once, so a token is a case id mapped to its number."""
    check_jurisdiction(params)
    principal = await authenticate(ctx=ctx, params=params, basic=basic)
    docs = await case_reads.find_cases(
        ctx=ctx, query={"_id": token, "created_by.subject": principal.subject}, sort=[("_id", 1)], limit=1
    )
    if not docs:
        raise NotFoundError("token_not_found", f"No service request for token {token!r}.")
    return [{"service_request_id": docs[0]["number"], "token": token}]
