"""Open311 service requests: reading them (GET requests, one request, a token) as the GeoReport v2 views."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from service.cases import reads as case_reads
from service.cases import states
from service.cases.models import Case, CaseSearch, HistoryEntry
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


def status_notes(status: str, history: Sequence[HistoryEntry]) -> str | None:
    """Pure: the latest note, reason or result in the case's history, else the state's label."""
    for entry in reversed(history):
        for text in (entry.note, entry.data.get("result"), entry.data.get("reason")):
            if text:
                return str(text)
    label = states.STATE_LABELS.get(status)
    return f"{label['zh']} {label['en']}" if label else None


def _iso(value: datetime | None) -> str | None:
    return rfc3339(value) if isinstance(value, datetime) else None


def request_view(case: Case) -> dict[str, Any]:
    """Pure: one case as a GeoReport service request."""
    source = case.source or {}
    point = case.location
    return {
        "service_request_id": case.number,
        "status": status_of(case.status),
        "status_notes": status_notes(case.status, case.history),
        "service_name": " ".join(p for p in (case.service.name_zh, case.service.name_en) if p),
        "service_code": case.service.code,
        "description": case.description,
        "agency_responsible": case.placement.station_name,
        "service_notice": None,
        "requested_datetime": _iso(case.created_at),
        "updated_datetime": _iso(case.updated_at),
        "expected_datetime": _iso(case.resolve_due_at),
        "address": case.address,
        "address_id": case.division_code or source.get("address_id"),
        "zipcode": None,
        "lat": point.lat if point is not None else None,
        "long": point.lon if point is not None else None,
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


def _search(principal: Principal, q: RequestQuery) -> CaseSearch:
    """The client's own cases that ``q`` asks for."""
    both = not q.statuses or set(q.statuses) == {"open", "closed"}
    return CaseSearch(
        created_by=principal.subject,
        limit=MAX_ROWS,
        numbers=tuple(q.ids),
        service_codes=tuple(q.service_codes),
        created_from=q.start,
        created_to=q.end,
        closed=None if both else q.statuses == ["closed"],
    )


async def list_requests(*, ctx: Context, params: Params, basic: tuple[str, str] | None) -> list[dict[str, Any]]:
    """GET requests: the client's own requests, newest first, at most 1,000."""
    check_jurisdiction(params)
    principal = await authenticate(ctx=ctx, params=params, basic=basic)
    query = parse_request_query(params, ctx.now())
    cases = await case_reads.find_cases(ctx=ctx, search=_search(principal, query))
    return [request_view(c) for c in cases]


async def get_request(
    *, ctx: Context, service_request_id: str, params: Params, basic: tuple[str, str] | None
) -> list[dict[str, Any]]:
    """GET requests/{id}: one of the client's requests (a one-element list, as the spec has it)."""
    check_jurisdiction(params)
    principal = await authenticate(ctx=ctx, params=params, basic=basic)
    cases = await case_reads.find_cases(
        ctx=ctx, search=CaseSearch(created_by=principal.subject, numbers=(service_request_id,), limit=1)
    )
    if not cases:
        raise NotFoundError("request_not_found", f"No service request {service_request_id!r}.")
    return [request_view(cases[0])]


async def get_token(*, ctx: Context, token: str, params: Params, basic: tuple[str, str] | None) -> list[dict[str, Any]]:
    """GET tokens/{token}: requests are created at once, so a token is a case id mapped to its number."""
    check_jurisdiction(params)
    principal = await authenticate(ctx=ctx, params=params, basic=basic)
    cases = await case_reads.find_cases(ctx=ctx, search=CaseSearch(created_by=principal.subject, ids=(token,), limit=1))
    if not cases:
        raise NotFoundError("token_not_found", f"No service request for token {token!r}.")
    return [{"service_request_id": cases[0].number, "token": token}]
