"""Lists of cases as MongoDB reads: the scope and filters as one filter, and pages read in windows.

The service hands a typed :class:`~service.cases.models.CaseListQuery` and a position; every
operator of the list's queries is written here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from service.cases.models import DIVISION_PROVINCE, CaseListQuery, CaseScope
from service.common.ids import id_at, id_time
from service.storage.indexes import declare

SORTS = {
    "newest": [("created_at", -1), ("_id", -1)],
    "due": [("next_due_at", 1), ("_id", 1)],
}


def scope_filter(scope: CaseScope) -> dict[str, Any]:
    """What a caller with this scope may list at all."""
    if scope.owner is not None:
        return {"owner": scope.owner}
    if scope.creator is not None:
        return {"created_by.subject": scope.creator}
    if scope.station_id is not None:
        return {"station_id": scope.station_id}
    if scope.division_prefix is not None:
        if is_county_code(scope.division_prefix):
            # The cases under a county are those whose county_code is the county (a station's
            # code starts with its county's, an unrouted case's division is its county): an
            # equality an index serves together with a range on the order, where the embedded
            # server reads the whole collection for a range on ``division`` beside one on time.
            return {"county_code": scope.division_prefix}
        # A city's (4 digits) and the province's (2) cases, likewise: the equality on the code stored
        # beside the division (models.region_codes) holds exactly the divisions under the prefix.
        region = REGION_FIELDS.get(len(scope.division_prefix))
        if region is not None and scope.division_prefix.isdigit():
            return {region: scope.division_prefix.ljust(6, "0")}
        return {"division": division_range(scope.division_prefix)}
    return {}


# The stored code that a division prefix of this length is an equality on (see scope_filter).
REGION_FIELDS = {4: "city_code", 2: "province_code"}
# A city's and the province's lists as a county's: newest first, and by due time per state, each an
# equality prefix followed by the order's keys, so every window is one bounded index range.
declare(
    "cases",
    *(
        IndexModel([(field, ASCENDING), *keys, ("_id", ASCENDING)])
        for field in REGION_FIELDS.values()
        for keys in (
            [("created_at", ASCENDING)],
            [("status", ASCENDING), ("next_due_at", ASCENDING)],
            [("next_due_at", ASCENDING)],
        )
    ),
)


def is_county_code(prefix: str) -> bool:
    """Pure: a 6-digit division prefix below the province (340000 names the province's own cases)."""
    return len(prefix) == 6 and prefix.isdigit() and prefix != DIVISION_PROVINCE


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

Find = Callable[[dict[str, Any], list[tuple[str, int]], int], Awaitable[list[dict[str, Any]]]]


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
) -> tuple[list[dict[str, Any]], timedelta]:
    """Up to ``want`` documents matching ``conditions``, newest first (``created_at``, ``_id``), after ``after``.

    The same documents, in the same order, as one ``find`` sorted newest first with the cursor's
    ``$or`` (for documents that have a ``created_at``, as every case has); read as the cursor's
    ties (same time, smaller ``_id``), then time windows that widen until ``want`` are found.
    Returns them and the width of the last window, which the next page starts from.
    ``created_from`` is inclusive and ``created_to`` exclusive, as in the API.
    """
    sort = SORTS["newest"]
    docs: list[dict[str, Any]] = []
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
        # After a window with nothing in it the next is the widest (as before anything is found): a
        # list with fewer cases than a page reaches back to its oldest in a few windows, not in doublings.
        width = _next_width(width, covered=start - top, found=found if batch else 0, missing=want - len(docs))
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


def _due_order(doc: dict[str, Any]) -> tuple[bool, datetime, str]:
    due = doc.get("next_due_at")
    return (due is not None, _aware(due) if isinstance(due, datetime) else WINDOW_FLOOR, doc["_id"])


# The cases with no due time come first, by ``_id``: they are read in windows of the time the ids
# carry (service.common.ids), upwards from where the list's no-due part began the last time a first
# page was read (a mark per list, see ListMarks) or from the cursor's id, each window one range on
# ``_id`` after the scope's equalities and ``next_due_at: null`` (an index prefix ending in
# (next_due_at, _id)), widening as the density met says, the first one open below and the last open
# above: the windows partition the ids, so whatever the mark says, no case is missed.
NO_DUE_WINDOW_START = timedelta(seconds=1)
# Ids made more than this ahead of the request's clock (or not made by new_id) fall in the last window.
NO_DUE_CEILING = timedelta(days=1)
LIST_MARKS = "case_list_marks"
# A list's marks go away once they have not moved for this long (a list nobody reads any more, or
# one whose start never moves); its next first page reads from the history once and leaves them anew.
MARKS_UNMOVED_DAYS = 90
declare(LIST_MARKS, IndexModel("left_at", name="left_at_ttl", expireAfterSeconds=MARKS_UNMOVED_DAYS * 86400))


# A process keeps the marks it last read for MARKS_KEPT_S, and what it left since: a first page in that
# time reads none (one round trip fewer), and one whose marks did not move leaves none (as before).
# Marks another process leaves meanwhile go unseen until then: being hints, that costs reads, not a case.
MARKS_KEPT_S = 30.0
_KEPT: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
_KEPT_MOST = 10_000


class ListMarks:
    """Where each list began when its first page was last read (collection ``case_list_marks``): the
    first id of its cases with no due time and the first due time of the rest, each with the window
    width that filled the page. Only hints for where to start reading: a wrong or missing mark costs
    reads, never a case. Kept in the process for ``kept_s`` seconds once read (0: read every time)."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, kept_s: float = MARKS_KEPT_S) -> None:
        self.col = db[LIST_MARKS]
        self.db_name = db.name
        self.kept_s = kept_s

    async def get(self, key: str) -> dict[str, Any]:
        """The list's marks (``first``, ``width_s``, ``due_first``, ``due_width_s``), those left."""
        kept = _KEPT.get((self.db_name, key))
        if kept is not None and time.monotonic() - kept[0] < self.kept_s:
            return dict(kept[1])
        at = time.monotonic()
        marks = await self.col.find_one({"_id": key}) or {}
        if self.kept_s > 0:
            if len(_KEPT) >= _KEPT_MOST:
                _KEPT.clear()
            _KEPT[self.db_name, key] = (at, dict(marks))
        return marks

    async def put(self, key: str, **fields: Any) -> None:
        """Leave some of the list's marks (a request leaving them at the same moment may win instead)."""
        with contextlib.suppress(DuplicateKeyError):  # two first upserts of one key: either mark will do
            await self.col.update_one({"_id": key}, {"$set": {**fields, "left_at": datetime.now(UTC)}}, upsert=True)
        kept = _KEPT.get((self.db_name, key))
        if kept is not None:
            _KEPT[self.db_name, key] = (kept[0], {**kept[1], **fields})


def forget_marks() -> None:
    """Drop the marks this process keeps (the next first page of each list reads them again)."""
    _KEPT.clear()


def _mark(marks: dict[str, Any], at: str, width: str) -> tuple[Any, timedelta] | None:
    value = marks.get(at)
    if value is None or not isinstance(marks.get(width), int):
        return None
    return value, timedelta(seconds=max(marks[width], 1))


def marks_key(conditions: list[dict[str, Any]]) -> str:
    """Pure: the key of a list's mark: its filters except the creation-time range (which does not move
    where its no-due part begins much, and would make a mark per range)."""
    kept = [c for c in conditions if list(c) != ["created_at"]]
    return hashlib.sha1(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


Read = Callable[[dict[str, Any], int], Awaitable[list[dict[str, Any]]]]


async def _no_due_first(
    read: Read, *, want: int, now: datetime, after_id: str | None, start: tuple[str, timedelta] | None
) -> tuple[list[dict[str, Any]], timedelta | None]:
    """Up to ``want`` documents with no due time by ``_id`` after ``after_id`` (all, with None), read in
    windows of id time from ``start`` (an id, and the width of the first window); one query without it."""
    lower: dict[str, Any] = {"$gt": after_id} if after_id is not None else {}
    begin = id_time(start[0]) if start is not None and isinstance(start[0], str) else None
    if start is None or begin is None:
        whole = await read({"next_due_at": None, **({"_id": lower} if lower else {})}, want)
        return whole, _span([id_time(d["_id"]) if isinstance(d["_id"], str) else None for d in whole])
    width = max(start[1], NO_DUE_WINDOW_START)
    ceiling = _aware(now) + NO_DUE_CEILING
    docs: list[dict[str, Any]] = []
    top, found = begin + width, 0
    while True:
        final = top >= ceiling
        ids = {**lower, **({} if final else {"$lt": id_at(top)})}
        batch = await read({"next_due_at": None, **({"_id": ids} if ids else {})}, want - len(docs))
        docs += batch
        found += len(batch)
        if final or len(docs) >= want:
            return docs, width
        lower = {"$gte": id_at(top)}
        width = max(_next_width(width, covered=top - begin, found=found, missing=want - len(docs)), NO_DUE_WINDOW_START)
        top += width


# Past the cases with no due time, windows on ``next_due_at`` start from the list's mark of its first
# due time (the first one open below) or from the cursor, as wide as the mark or the cursor says (else
# DUE_WINDOW_START) and widening as the density met says; beyond DUE_CEILING from the request's time
# the last one is open above. A list with no mark yet is read between the fixed DUE_EDGES.
DUE_WINDOW_START = timedelta(hours=1)
DUE_CEILING = timedelta(days=400)


async def _due_windows(
    read: Read, *, want: int, now: datetime, after: datetime | None, start: tuple[datetime, timedelta] | None
) -> tuple[list[dict[str, Any]], timedelta | None]:
    """Up to ``want`` documents with a due time after ``after`` (strictly; all, with None), by due time:
    in windows from ``start`` (a due time and the first window's width), between DUE_EDGES without it."""
    lower: dict[str, Any] = {"$gt": after} if after is not None else {}
    docs: list[dict[str, Any]] = []
    if start is None:
        edges = [now + offset for offset in DUE_EDGES]
        for edge in [*(e for e in edges if after is None or e > after), None]:
            # Never empty: with no lower bound every edge is still ahead, and the last sets ``lower``.
            due = {**lower, **({"$lt": edge} if edge is not None else {})}
            docs += await read({"next_due_at": due}, want - len(docs))
            if len(docs) >= want:
                break
            lower = {"$gte": edge}
        return docs, _span([d.get("next_due_at") for d in docs])
    begin, width = _aware(start[0]), start[1]
    ceiling = max(_aware(now), begin) + DUE_CEILING
    top, found = begin + width, 0
    while True:
        final = top >= ceiling
        due = {**lower, **({} if final else {"$lt": top})}
        batch = await read({"next_due_at": due} if due else {"next_due_at": {"$ne": None}}, want - len(docs))
        docs += batch
        found += len(batch)
        if final or len(docs) >= want:
            return docs, width
        lower = {"$gte": top}
        width = _next_width(width, covered=top - begin, found=found, missing=want - len(docs))
        top += width


async def soonest_due_first(
    find: Find,
    *,
    conditions: list[dict[str, Any]],
    want: int,
    now: datetime,
    after: tuple[datetime | None, str] | None = None,
    width: timedelta | None = None,
    marks: ListMarks | None = None,
) -> tuple[list[dict[str, Any]], timedelta | None]:
    """Up to ``want`` documents matching ``conditions`` by due time (``next_due_at``, ``_id``), after ``after``.

    The same documents, in the same order, as one ``find`` sorted by due time with the cursor's
    ``$or`` (nulls first, as the server sorts them), for documents whose ``next_due_at`` is a
    date or null: read as those with no due time (in windows of id time), the cursor's ties, then
    windows on the due time, each from the cursor (the first window ``width`` wide) or from the
    list's marks, until ``want`` are found; each window as one query per state filtered on.
    Returns them and the width of the page's last window (None when no window was drawn).
    """
    variants = by_state(conditions)
    sort = SORTS["due"]

    async def read(bound: dict[str, Any], n: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for variant in variants:
            found += await find({**bound, **all_of(variant)}, sort, n)
        return sorted(found, key=_due_order)[:n] if len(variants) > 1 else found

    # The marks are read for pages that reach the start of the dated part (a first page, or one after a
    # case with no due time), and the first id of the no-due part is left only by a first page.
    key = marks_key(conditions) if marks is not None and (after is None or after[0] is None) else None
    left = await marks.get(key) if marks is not None and key is not None else {}
    news: dict[str, Any] = {}
    docs: list[dict[str, Any]] = []
    lowest: datetime | None = None
    last_width = width
    if after is None or after[0] is None:
        mark = _mark(left, "first", "width_s")
        start = (after[1], width or NO_DUE_WINDOW_START) if after is not None else mark
        docs, last_width = await _no_due_first(
            read, want=want, now=now, after_id=after[1] if after else None, start=start
        )
        if key is not None and after is None and docs:
            fits = _span([id_time(d["_id"]) if isinstance(d["_id"], str) else None for d in docs])
            if _moved(mark, docs[0]["_id"], fits):
                news.update(first=docs[0]["_id"], width_s=_seconds(fits or last_width or NO_DUE_WINDOW_START))
        due_start = _mark(left, "due_first", "due_width_s")
    else:
        lowest = _aware(after[0])
        docs += await read({"next_due_at": lowest, "_id": {"$gt": after[1]}}, want)
        due_start = (lowest, width or DUE_WINDOW_START)
    if len(docs) < want:
        more, last_width = await _due_windows(read, want=want - len(docs), now=now, after=lowest, start=due_start)
        if key is not None and lowest is None and more:
            fits = _span([d.get("next_due_at") for d in more])
            if _moved(due_start, more[0]["next_due_at"], fits):
                news.update(
                    due_first=more[0]["next_due_at"], due_width_s=_seconds(fits or last_width or DUE_WINDOW_START)
                )
        docs += more
    if marks is not None and key is not None and news:
        await marks.put(key, **news)
    return docs, last_width


def _moved(mark: tuple[Any, timedelta] | None, first: Any, fits: timedelta | None) -> bool:
    """Pure: whether a mark no longer says where a list begins, or how wide a window holds its first
    page (off by more than twice: the density changed since it was left)."""
    if mark is None or _comparable(mark[0]) != _comparable(first):
        return True
    return fits is not None and not fits / 2 <= mark[1] <= fits * 2


def _comparable(value: Any) -> Any:
    return _aware(value) if isinstance(value, datetime) else value


def _span(times: list[Any]) -> timedelta | None:
    """Pure: the width of one window that would have held a page with these times (None with fewer
    than two): their span with the margin :func:`_next_width` gives, and a second for the last one."""
    known = [_aware(t) for t in times if isinstance(t, datetime)]
    return (known[-1] - known[0]) * 1.5 + timedelta(seconds=1) if len(known) > 1 else None


def _seconds(width: timedelta) -> int:
    return max(int(width.total_seconds()), 1)


def _next_width(width: timedelta, *, covered: timedelta, found: int, missing: int) -> timedelta:
    """The next window: as wide as the density seen so far says the missing documents need, with a
    margin, and within [WINDOW_GROWTH_MIN, WINDOW_GROWTH_EMPTY] times the last; the widest after nothing."""
    if not found:
        return width * WINDOW_GROWTH_EMPTY
    estimate = covered * (missing / found) * 1.5
    return min(max(estimate, width * WINDOW_GROWTH_MIN), width * WINDOW_GROWTH_EMPTY)


def filter_conditions(query: CaseListQuery) -> list[dict[str, Any]]:
    """Pure: the scope and the filters of a list, except its creation-time range and position."""
    conditions: list[dict[str, Any]] = [scope_filter(query.scope)]
    if query.statuses:
        statuses = list(query.statuses)
        conditions.append({"status": statuses[0] if len(statuses) == 1 else {"$in": statuses}})
    for key, value in (
        ("service.scenario", query.scenario),
        ("service.code", query.service_code),
        ("station_id", query.station_id),
        ("assignee_id", query.assignee_id),
    ):
        if value:
            conditions.append({key: value})
    if query.overdue is not None:
        flag = {"$or": [{"overdue.sign": True}, {"overdue.resolve": True}]}
        conditions.append(flag if query.overdue else {"overdue.sign": False, "overdue.resolve": False})
    return conditions


def created_range(query: CaseListQuery) -> list[dict[str, Any]]:
    """Pure: the creation-time range of a list as conditions (from inclusive, to exclusive)."""
    created: dict[str, Any] = {}
    if query.created_from:
        created["$gte"] = query.created_from
    if query.created_to:
        created["$lt"] = query.created_to
    return [{"created_at": created}] if created else []


def after_condition(sort: str, after: tuple[datetime | None, str]) -> dict[str, Any]:
    """Pure: the cases that follow the position ``after`` (a sort value and an id) in ``sort`` order."""
    value, case_id = after
    key = "created_at" if sort == "newest" else "next_due_at"
    op = "$lt" if sort == "newest" else "$gt"
    if value is None and sort == "newest":
        return {key: None, "_id": {op: case_id}}
    if value is None:
        # Ascending, the cases with no due time come first: after them come all that have one.
        return {"$or": [{key: None, "_id": {op: case_id}}, {key: {"$ne": None}}]}
    return {"$or": [{key: {op: value}}, {key: value, "_id": {op: case_id}}]}


def list_query(
    query: CaseListQuery, after: tuple[datetime | None, str] | None = None
) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """Pure: the whole list, from the position ``after``, as one filter and sort.

    Pages read in windows (:func:`newest_first`, :func:`soonest_due_first`) hold the same
    documents in the same order.
    """
    conditions = filter_conditions(query) + created_range(query)
    if after is not None:
        conditions.append(after_condition(query.sort, after))
    return all_of(conditions), SORTS[query.sort]


async def read_list(
    find: Find,
    query: CaseListQuery,
    *,
    want: int,
    now: datetime,
    after: tuple[datetime | None, str] | None = None,
    width: timedelta | None = None,
    marks: ListMarks | None = None,
) -> tuple[list[dict[str, Any]], timedelta | None]:
    """Up to ``want`` documents of a list after the position ``after``, read the way its order reads fastest.

    Newest first in time windows (``width``: the last window of the page before; the width of this
    page's last window is returned), by due time in windows per state (the no-due part in windows of
    id time, likewise carrying ``width``; ``marks``: where each list's no-due part began), and after
    a position with no creation time (none is written so) as one query.
    """
    at, after_id = after if after is not None else (None, "")
    if query.sort == "newest" and (after is None or at is not None):
        return await newest_first(
            find,
            conditions=filter_conditions(query),
            want=want,
            now=now,
            created_from=query.created_from,
            created_to=query.created_to,
            after=(at, after_id) if at is not None else None,
            width=width,
        )
    if query.sort == "due":
        conditions = filter_conditions(query) + created_range(query)
        return await soonest_due_first(
            find, conditions=conditions, want=want, now=now, after=after, width=width, marks=marks
        )
    filt, sort = list_query(query, after)
    return await find(filt, sort, want), None
