"""Reading cases: one case with its history, and cursor-paged lists in the caller's scope."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.audit import service as audit
from service.cases import privacy as case_privacy
from service.cases.access import access_of, ensure_visible
from service.cases.lifecycle import Relationship
from service.cases.repository.cases import CasesRepository
from service.cases.views import view
from service.common import geo
from service.common.context import Context
from service.common.models import Page, Principal
from service.common.paging import decode_cursor, encode_cursor


def in_coord_system(case_view: dict[str, Any], coord_system: str) -> dict[str, Any]:
    """A case view with its location in ``coord_system`` (gcj02 for WeChat/Tencent maps, bd09 for Baidu)."""
    if coord_system == "wgs84" or not case_view.get("location"):
        return case_view
    return {**case_view, "location": geo.point_doc_in(case_view["location"], coord_system)}


async def get_case(*, ctx: Context, principal: Principal, case_id: str, coord_system: str = "wgs84") -> dict[str, Any]:
    """One case with its history, routing reason, deadlines and the caller's allowed actions."""
    case = await CasesRepository(ctx.db).get(case_id)
    rel = ensure_visible(principal, case)
    result = view(case, principal, rel, ctx.now())
    await _audit_sensitive_read(ctx, principal, rel, case)
    return in_coord_system(result, coord_system)


async def _audit_sensitive_read(ctx: Context, principal: Principal, rel: Relationship, case: dict[str, Any]) -> None:
    """Staff shown unmasked phone numbers leave an audit record (PIPL)."""
    shown = case_privacy.clear_phones(case, case_privacy.disclosure(rel, case))
    if principal.is_staff and rel.assignee and shown:
        await audit.record_reads(
            ctx=ctx,
            principal=principal,
            action="read_sensitive",
            target_kind="case",
            target_ids=[case["_id"]],
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


def _encode_cursor(doc: dict[str, Any], sort: str) -> str:
    key = "created_at" if sort == "newest" else "next_due_at"
    value = doc.get(key)
    return encode_cursor(value if isinstance(value, datetime) else None, doc["_id"])


def _decode_cursor(cursor: str, sort: str) -> dict[str, Any]:
    value, case_id = decode_cursor(cursor, datetime | None, str)
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
    if query.get("created_from"):
        conditions.append({"created_at": {"$gte": query["created_from"]}})
    if query.get("created_to"):
        conditions.append({"created_at": {"$lt": query["created_to"]}})
    sort = query.get("sort") or "newest"
    if query.get("cursor"):
        conditions.append(_decode_cursor(query["cursor"], sort))
    limit = int(query.get("limit") or 20)
    return all_of(conditions), SORTS[sort], limit
