"""Reading cases: one case with its history, and cursor-paged lists in the caller's scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from service.audit import service as audit
from service.cases import privacy as case_privacy
from service.cases.access import access_of, ensure_visible
from service.cases.lifecycle import Relationship
from service.cases.models import Case
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


async def get_case(*, ctx: Context, principal: Principal, case_id: str, coord_system: str = "wgs84") -> CaseView:
    """One case with its history, routing reason, deadlines and the caller's allowed actions."""
    case = await CasesRepository(ctx.db).get(case_id)
    rel = ensure_visible(principal, case)
    result = view(case, principal, rel, ctx.now())
    await _audit_sensitive_read(ctx, principal, rel, case)
    return in_coord_system(result, coord_system)


async def _audit_sensitive_read(ctx: Context, principal: Principal, rel: Relationship, case: Case) -> None:
    """Staff shown unmasked phone numbers leave an audit record (PIPL)."""
    shown = case_privacy.clear_phones(case, case_privacy.disclosure(rel, case))
    if principal.is_staff and rel.assignee and shown:
        await audit.record_reads(
            ctx=ctx,
            principal=principal,
            action="read_sensitive",
            target_kind="case",
            target_ids=[case.id],
            fields=shown,
        )


SORTS = {
    "newest": [("created_at", -1), ("_id", -1)],
    "due": [("next_due_at", 1), ("_id", 1)],
}


def scope_filter(principal: Principal) -> dict[str, Any]:
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


def _encode_cursor(case: Case, sort: str, width: timedelta | None = None) -> str:
    value = case.created_at if sort == "newest" else case.next_due_at
    if width is not None and isinstance(value, datetime):
        return encode_cursor(value, case.id, int(width.total_seconds()))
    return encode_cursor(value if isinstance(value, datetime) else None, case.id)


def _read_cursor(cursor: str) -> tuple[datetime | None, str, timedelta | None]:
    """The sort values of a cursor and, for newest-first pages, the time window that filled the last page."""
    try:
        value, case_id, seconds = decode_cursor(cursor, datetime | None, str, int, check=lambda v: v[2] > 0)
        return value, case_id, timedelta(seconds=min(seconds, MAX_WINDOW_SECONDS))
    except BadRequestError:
        value, case_id = decode_cursor(cursor, datetime | None, str)
        return value, case_id, None


def _decode_cursor(cursor: str, sort: str) -> dict[str, Any]:
    value, case_id, _width = _read_cursor(cursor)
    key = "created_at" if sort == "newest" else "next_due_at"
    op = "$lt" if sort == "newest" else "$gt"
    if value is None and sort == "newest":
        return {key: None, "_id": {op: case_id}}
    if value is None:
        # Ascending, the cases with no due time come first: after them come all that have one.
        return {"$or": [{key: None, "_id": {op: case_id}}, {key: {"$ne": None}}]}
    return {"$or": [{key: {op: value}}, {key: value, "_id": {op: case_id}}]}


# Newest-first pages are read in time windows on ``created_at``: the first window is the last
# WINDOW_START before the page's upper end (or as wide as the window that ended the last page),
# and each next one reaches further back, as wide as the density met so far says the rest of the
# page needs, at least WINDOW_GROWTH_MIN and at most WINDOW_GROWTH_EMPTY times the last one (the
# most after a window with nothing in it), until the page is full.
# Every query thus carries a range bound on the index's sort key, so a server that reads every
# matching key before applying ``limit`` (the embedded one) reads about a page of keys, not the
# whole scope; on MongoDB each window is the same index-ordered scan, stopped at the limit.
WINDOW_START = timedelta(minutes=5)
WINDOW_GROWTH_MIN = 2
WINDOW_GROWTH_EMPTY = 8
# Below this no window is drawn: the last query has no lower bound, so nothing older is missed.
WINDOW_FLOOR = datetime(2000, 1, 1, tzinfo=UTC)
MAX_WINDOW_SECONDS = 200 * 365 * 86400

Find = Callable[[dict[str, Any], list[tuple[str, int]], int], Awaitable[list[Case]]]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _with_created(created: dict[str, Any], conditions: list[dict[str, Any]]) -> dict[str, Any]:
    # ``created_at`` first: a planner that serves one clause of a filter from an index takes
    # the first it can, and the time bound is the one that keeps the read to a page.
    return {"created_at": created, **all_of(conditions)} if created else all_of(conditions)


async def newest_first(
    find: Find,
    *,
    conditions: list[dict[str, Any]],
    want: int,
    now: datetime,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    after: tuple[datetime, str] | None = None,
    width: timedelta | None = None,
) -> tuple[list[Case], timedelta]:
    """Up to ``want`` documents matching ``conditions``, newest first (``created_at``, ``_id``), after ``after``.

    The same documents, in the same order, as one ``find`` sorted newest first with the cursor's
    ``$or`` (for documents that have a ``created_at``, as every case has); read as the cursor's
    ties (same time, smaller ``_id``), then time windows that widen until ``want`` are found.
    Returns them and the width of the last window, which the next page starts from.
    ``created_from`` is inclusive and ``created_to`` exclusive, as in the API.
    """
    sort = SORTS["newest"]
    docs: list[Case] = []
    upper = _aware(created_to) if created_to is not None else None
    lowest = _aware(created_from) if created_from is not None else None
    if after is not None:
        at, after_id = _aware(after[0]), after[1]
        if (lowest is None or at >= lowest) and (upper is None or at < upper):
            docs += await find({"created_at": at, "_id": {"$lt": after_id}, **all_of(conditions)}, sort, want)
        upper = at if upper is None else min(upper, at)
    width = width or WINDOW_START
    top = upper if upper is not None else _aware(now)
    start, found = top, 0
    while len(docs) < want:
        floor = lowest if lowest is not None else WINDOW_FLOOR
        final = top - floor <= width
        created: dict[str, Any] = {}
        if not final:
            created["$gte"] = top - width
        elif lowest is not None:
            created["$gte"] = lowest
        if upper is not None:
            created["$lt"] = upper
        batch = await find(_with_created(created, conditions), sort, want - len(docs))
        docs += batch
        found += len(batch)
        if final or len(docs) >= want:
            break
        top = upper = top - width
        width = _next_width(width, covered=start - top, found=found, missing=want - len(docs))
    return docs, width


# Pages by due time are read in windows on ``next_due_at``, from the soonest due upwards, between
# fixed edges around the time of the request (4**k hours before and after it, up to about six
# weeks): the overdue backlog and the work due soon are read in narrow windows, what is due far
# away in wide ones, and all that is due more than six weeks ahead (or overdue by more) in one.
# Cases with no due time (resolved, closed, cancelled, rejected: the history) fall in no window,
# as a range on a date matches no null, so a queue never reads the history.
# A filter on several states is read as one query per state, each an equality prefix of an index
# that ends in (next_due_at, _id): the embedded server reads the window's keys of that state only.
DUE_EDGES = tuple(-timedelta(hours=4**k) for k in range(5, -1, -1)) + tuple(timedelta(hours=4**k) for k in range(6))


def by_state(conditions: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Pure: ``conditions`` as one list per state when they hold a filter on several states, else as is."""
    for i, condition in enumerate(conditions):
        wanted = condition.get("status") if list(condition) == ["status"] else None
        if isinstance(wanted, dict) and list(wanted) == ["$in"] and len(wanted["$in"]) > 1:
            states = list(dict.fromkeys(wanted["$in"]))
            return [[*conditions[:i], {"status": state}, *conditions[i + 1 :]] for state in states]
    return [conditions]


def _due_order(case: Case) -> tuple[bool, datetime, str]:
    due = case.next_due_at
    return (due is not None, _aware(due) if isinstance(due, datetime) else WINDOW_FLOOR, case.id)


async def soonest_due_first(
    find: Find,
    *,
    conditions: list[dict[str, Any]],
    want: int,
    now: datetime,
    after: tuple[datetime | None, str] | None = None,
) -> list[Case]:
    """Up to ``want`` documents matching ``conditions`` by due time (``next_due_at``, ``_id``), after ``after``.

    The same documents, in the same order, as one ``find`` sorted by due time with the cursor's
    ``$or`` (nulls first, as the server sorts them), for documents whose ``next_due_at`` is a
    date or null: read as those with no due time, the cursor's ties, then windows between
    :data:`DUE_EDGES` until ``want`` are found; each window as one query per state filtered on.
    """
    variants = by_state(conditions)
    sort = SORTS["due"]

    async def read(bound: dict[str, Any], n: int) -> list[Case]:
        found: list[Case] = []
        for variant in variants:
            found += await find({**bound, **all_of(variant)}, sort, n)
        return sorted(found, key=_due_order)[:n] if len(variants) > 1 else found

    docs: list[Case] = []
    lowest: datetime | None = None
    if after is None or after[0] is None:
        docs += await read({"next_due_at": None, **({"_id": {"$gt": after[1]}} if after else {})}, want)
    else:
        lowest = _aware(after[0])
        docs += await read({"next_due_at": lowest, "_id": {"$gt": after[1]}}, want)
    edges = [now + offset for offset in DUE_EDGES]
    edges = [edge for edge in edges if lowest is None or edge > lowest]
    start: dict[str, Any] = {"$gt": lowest} if lowest is not None else {}
    for edge in [*edges, None]:
        if len(docs) >= want:
            break
        # Never empty: with no lower bound every edge is still ahead, and the last sets ``start``.
        due = {**start, **({"$lt": edge} if edge is not None else {})}
        docs += await read({"next_due_at": due}, want - len(docs))
        start = {"$gte": edge}
    return docs


def _next_width(width: timedelta, *, covered: timedelta, found: int, missing: int) -> timedelta:
    """The next window: as wide as the density seen so far says the missing documents need, with a
    margin, and within [WINDOW_GROWTH_MIN, WINDOW_GROWTH_EMPTY] times the last; the widest after nothing."""
    if not found:
        return width * WINDOW_GROWTH_EMPTY
    estimate = covered * (missing / found) * 1.5
    return min(max(estimate, width * WINDOW_GROWTH_MIN), width * WINDOW_GROWTH_EMPTY)


async def list_cases(*, ctx: Context, principal: Principal, query: dict[str, Any]) -> Page[CaseView]:
    """Cases the caller may see, filtered, newest first or by due time, cursor-paginated."""
    sort = query.get("sort") or "newest"
    limit = int(query.get("limit") or 20)
    repo = CasesRepository(ctx.db)
    after: tuple[datetime, str] | None = None
    hint: timedelta | None = None
    if query.get("cursor"):
        value, case_id, hint = _read_cursor(query["cursor"])
        after = (value, case_id) if value is not None else None
    width: timedelta | None = None
    if sort == "newest" and (after is not None or not query.get("cursor")):

        async def find(filt: dict[str, Any], sort_keys: list[tuple[str, int]], n: int) -> list[Case]:
            return await repo.page(filt, sort=sort_keys, limit=n)

        docs, width = await newest_first(
            find,
            conditions=filter_conditions(principal, query),
            want=limit + 1,
            now=ctx.now(),
            created_from=query.get("created_from"),
            created_to=query.get("created_to"),
            after=after,
            width=hint,
        )
    elif sort == "due":

        async def find_due(filt: dict[str, Any], sort_keys: list[tuple[str, int]], n: int) -> list[Case]:
            return await repo.page(filt, sort=sort_keys, limit=n)

        due_after = None
        if query.get("cursor"):
            due_after = (value, case_id)
        docs = await soonest_due_first(
            find_due,
            conditions=filter_conditions(principal, query) + created_range(query),
            want=limit + 1,
            now=ctx.now(),
            after=due_after,
        )
    else:
        # After a case with no creation time (none is written so): one query.
        filt, sort_keys, limit = list_query(principal, query)
        docs = await repo.page(filt, sort=sort_keys, limit=limit + 1)
    more = len(docs) > limit
    docs = docs[:limit]
    now = ctx.now()
    items = [view(case, principal, access_of(principal, case.parties), now, with_history=False) for case in docs]
    coord_system = query.get("coord_system") or "wgs84"
    items = [in_coord_system(item, coord_system) for item in items]
    return Page(items=items, next_cursor=_encode_cursor(docs[-1], sort, width) if more and docs else None)


def filter_conditions(principal: Principal, query: dict[str, Any]) -> list[dict[str, Any]]:
    """Pure: the scope and the filters of a list request, except its creation-time range and cursor."""
    conditions: list[dict[str, Any]] = [scope_filter(principal)]
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
    return conditions


def created_range(query: dict[str, Any]) -> list[dict[str, Any]]:
    """Pure: the creation-time range of a list request as conditions (from inclusive, to exclusive)."""
    created: dict[str, Any] = {}
    if query.get("created_from"):
        created["$gte"] = query["created_from"]
    if query.get("created_to"):
        created["$lt"] = query["created_to"]
    return [{"created_at": created}] if created else []


def list_query(principal: Principal, query: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, int]], int]:
    """Pure: the whole list as one filter, sort and page size (one more is fetched to see if more exist).

    Pages by due time are read with it; newest-first pages are read in time windows
    (:func:`newest_first`) and hold the same documents in the same order.
    """
    conditions = filter_conditions(principal, query) + created_range(query)
    sort = query.get("sort") or "newest"
    if query.get("cursor"):
        conditions.append(_decode_cursor(query["cursor"], sort))
    limit = int(query.get("limit") or 20)
    return all_of(conditions), SORTS[sort], limit
