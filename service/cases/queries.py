"""Reading cases: one case with its history, and cursor-paged lists in the caller's scope."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

from service.audit import service as audit
from service.cases import privacy as case_privacy
from service.cases.access import access_of, ensure_visible
from service.cases.lifecycle import Relationship
from service.cases.models import Case, CaseListQuery, CaseScope
from service.cases.repository.cases import CasesRepository
from service.cases.views import CaseView, view
from service.common import geo
from service.common.context import Context
from service.common.errors import BadRequestError
from service.common.models import Page, Principal
from service.common.paging import decode_cursor, encode_cursor


def in_coord_system(case_view: CaseView, coord_system: str) -> CaseView:
    """A case view with its location in ``coord_system`` (gcj02 for WeChat/Tencent maps, bd09 for Baidu)."""
    if coord_system == "wgs84" or not case_view.get("location"):
        return case_view
    return {**case_view, "location": geo.point_doc_in(case_view["location"], coord_system)}


async def get_case(
    *,
    ctx: Context,
    principal: Principal,
    case_id: str,
    coord_system: str = "wgs84",
    ready: Awaitable[None] | None = None,
) -> CaseView:
    """One case with its history, routing reason, deadlines and the caller's allowed actions.

    ``ready``: the check of the caller's token still under way (it raises for a revoked one),
    awaited once the case is read and before anything is shown or audited.
    """
    case = await CasesRepository(ctx.db).get(case_id)
    if ready is not None:
        await ready
    rel = ensure_visible(principal, case)
    result = view(case, principal, rel, ctx.now())
    await _audit_sensitive_read(ctx, principal, rel, case)
    return in_coord_system(result, coord_system)


async def _audit_sensitive_read(ctx: Context, principal: Principal, rel: Relationship, case: Case) -> None:
    """Staff shown unmasked phone numbers leave an audit record (PIPL)."""
    if not (principal.is_staff and rel.assignee):
        return
    shown = case_privacy.clear_phones(case, case_privacy.disclosure(rel, case))
    if shown:
        await audit.record_reads(
            ctx=ctx,
            principal=principal,
            action="read_sensitive",
            target_kind="case",
            target_ids=[case.id],
            fields=shown,
        )


# The widest time window a cursor may carry (a forged one cannot make a page read wider).
MAX_WINDOW_SECONDS = 200 * 365 * 86400


def scope_of(principal: Principal) -> CaseScope:
    """Pure: which cases this caller may list at all."""
    role = principal.role
    if role == "resident":
        return CaseScope(owner=principal.subject)
    if role == "client":
        return CaseScope(creator=principal.subject)
    if role in ("worker", "station_head"):
        # Staff without a station list nothing: no case holds this id.
        return CaseScope(station_id=principal.station_id or "\x00none")
    if role == "supervisor":
        return CaseScope(division_prefix=principal.division_prefix or "")
    return CaseScope()


def list_query_of(principal: Principal, query: dict[str, Any]) -> CaseListQuery:
    """Pure: a list request (as ``CaseQuerySchema`` loads it) in the caller's scope, typed."""
    statuses = query.get("status") or ()
    return CaseListQuery(
        scope=scope_of(principal),
        sort=query.get("sort") or "newest",
        statuses=tuple(statuses) if isinstance(statuses, list | tuple) else (statuses,),
        scenario=query.get("scenario"),
        service_code=query.get("service"),
        station_id=query.get("station"),
        assignee_id=query.get("assignee"),
        overdue=query.get("overdue"),
        created_from=query.get("created_from"),
        created_to=query.get("created_to"),
    )


def _encode_cursor(case: Case, sort: str, width: timedelta | None = None) -> str:
    value = case.created_at if sort == "newest" else case.next_due_at
    if width is not None:
        # Newest first: the creation-time window; by due time, among the cases with no due time
        # (value None), the id-time window that filled the page.
        return encode_cursor(
            value if isinstance(value, datetime) else None, case.id, max(int(width.total_seconds()), 1)
        )
    return encode_cursor(value if isinstance(value, datetime) else None, case.id)


def _read_cursor(cursor: str) -> tuple[datetime | None, str, timedelta | None]:
    """The sort values of a cursor and, for newest-first pages, the time window that filled the last page."""
    try:
        value, case_id, seconds = decode_cursor(cursor, datetime | None, str, int, check=lambda v: v[2] > 0)
        return value, case_id, timedelta(seconds=min(seconds, MAX_WINDOW_SECONDS))
    except BadRequestError:
        value, case_id = decode_cursor(cursor, datetime | None, str)
        return value, case_id, None


async def list_cases(
    *, ctx: Context, principal: Principal, query: dict[str, Any], ready: Awaitable[None] | None = None
) -> Page[CaseView]:
    """Cases the caller may see, filtered, newest first or by due time, cursor-paginated.

    ``ready``: as for ``get_case``, awaited once the cases are read, before anything is shown.
    """
    listing = list_query_of(principal, query)
    limit = int(query.get("limit") or 20)
    after: tuple[datetime | None, str] | None = None
    hint: timedelta | None = None
    if query.get("cursor"):
        value, case_id, hint = _read_cursor(query["cursor"])
        after = (value, case_id)
    cases, width = await CasesRepository(ctx.db).listed(
        listing, limit=limit + 1, now=ctx.now(), after=after, width=hint
    )
    if ready is not None:
        await ready
    more = len(cases) > limit
    cases = cases[:limit]
    now = ctx.now()
    coord_system = query.get("coord_system") or "wgs84"
    items = [
        in_coord_system(
            view(case, principal, access_of(principal, case.parties), now, with_history=False), coord_system
        )
        for case in cases
    ]
    return Page(items=items, next_cursor=_encode_cursor(cases[-1], listing.sort, width) if more and cases else None)
