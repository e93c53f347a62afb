"""The one cursor codec every cursor-paged list uses.

A cursor is the sort values of the last item of a page (a string id, a station code, a time
and an id, ...) as a JSON list in URL-safe base64 without padding. It is opaque to callers;
one that this server did not write is refused with 400 ``invalid_cursor``, because silently
starting again from the first page would loop a client that pages forever.
"""

from __future__ import annotations

import base64
import binascii
import json
import types
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from service.common.errors import BadRequestError
from service.common.ids import id_at, id_time, is_id

CursorValue = str | int | datetime | None


def invalid_cursor() -> BadRequestError:
    """The error for a cursor this server did not write."""
    return BadRequestError("invalid_cursor", "The cursor is not valid; start again without it.")


def encode_cursor(*values: CursorValue) -> str:
    """An opaque cursor from the sort values of the last item of a page."""
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values], ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _accepts(kind: Any, value: Any) -> Any:
    kinds = kind.__args__ if isinstance(kind, types.UnionType) else (kind,)
    if value is None and type(None) in kinds:
        return None
    if datetime in kinds and isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(value, bool) or not isinstance(value, tuple(k for k in kinds if k is not datetime)):
        raise ValueError("a cursor value of another type")
    return value


def decode_cursor(cursor: str, *kinds: Any, check: Callable[[list[Any]], bool] | None = None) -> list[Any]:
    """The sort values in ``cursor``, one per kind (``str``, ``int``, ``datetime``, ``datetime | None``).

    ``check`` may refuse values that have the right types but cannot come from this list (an id
    of the wrong shape). BadRequestError ``invalid_cursor`` when the cursor was not made by us.
    """
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError("a cursor of another shape")
        values = [_accepts(kind, value) for kind, value in zip(kinds, raw, strict=True)]
    except (ValueError, TypeError, UnicodeError, binascii.Error, RecursionError):
        raise invalid_cursor() from None
    if check is not None and not check(values):
        raise invalid_cursor()
    return values


def paged(items: Sequence[Any], limit: int, cursor_of: Callable[[Any], str]) -> tuple[list[Any], str | None]:
    """The first ``limit`` of ``items`` (read with ``limit + 1``) and the cursor after them, if more remain."""
    page = list(items[:limit])
    return page, (cursor_of(page[-1]) if len(items) > limit and page else None)


# Lists sorted by a time-ordered id, newest first (an inbox, a delivery log), are read in windows
# of creation time on that id: the first reaches ID_WINDOW_START back from the page's upper end,
# each next one ID_WINDOW_GROWTH times as far, and the last, once a window would reach back before
# ID_WINDOW_FLOOR, has no lower bound. Every query but that last one carries a range bound on the
# id, so a server that reads every matching index key before it applies ``limit`` (the embedded
# one) reads about a page of keys; on MongoDB each is an index-ordered scan stopped at the limit.
ID_WINDOW_START = timedelta(days=1)
ID_WINDOW_GROWTH = 8
ID_WINDOW_FLOOR = datetime(2000, 1, 1, tzinfo=UTC)

FindPage = Callable[[dict[str, Any], int], Awaitable[list[dict[str, Any]]]]


async def newest_by_id(
    find: FindPage,
    *,
    want: int,
    now: datetime,
    id_at: Callable[[datetime], Any],
    after: tuple[Any, datetime] | None = None,
    windows: bool = True,
) -> list[dict[str, Any]]:
    """Up to ``want`` documents, ``_id`` descending, below ``after`` (an id and the time it was made at).

    ``find(id_range, n)`` returns the first ``n`` documents of the list with ``_id`` in ``id_range``
    (``{"$lt": ..., "$gte": ...}``, either may be absent), ``_id`` descending. ``id_at(t)`` is the
    smallest id made at time ``t``. The pages are those of one query over the whole range: the
    windows cover it without gaps or overlaps, whatever the ids look like; they are only faster
    when the ids are made as ``id_at`` says. ``windows=False`` reads them in one query below ``after``:
    for a filter no index serves together with a range on the id, where the embedded server would
    read the whole scope once per window.
    """
    if not windows:
        return await find({"$lt": after[0]} if after is not None else {}, want)
    docs: list[dict[str, Any]] = []
    upper = after[0] if after is not None else None
    top = after[1] if after is not None else now
    width = ID_WINDOW_START
    while len(docs) < want:
        bound: dict[str, Any] = {"$lt": upper} if upper is not None else {}
        final = top - width <= ID_WINDOW_FLOOR
        if not final:
            lower = id_at(top - width)
            if upper is not None and lower >= upper:
                final = True  # an id not made as id_at says: read the rest in one query
            else:
                bound["$gte"] = lower
        docs += await find(bound, want - len(docs))
        if final:
            break
        upper, top, width = bound["$gte"], top - width, width * ID_WINDOW_GROWTH
    return docs


# Lists of documents whose ``_id`` is made by ``service.common.ids.new_id`` (time-ordered), newest
# first. Their cursor names its order, so a cursor of the same list when it was read oldest first
# (the bare id) is refused (400 ``invalid_cursor``) rather than read the wrong way.
NEWEST = "newest"


def encode_newest_cursor(item_id: str) -> str:
    """The cursor after ``item_id`` in a newest-first list of ``new_id`` ids."""
    return encode_cursor(item_id, NEWEST)


def decode_newest_cursor(cursor: str | None) -> str | None:
    """The id a newest-first page continues below (400 ``invalid_cursor`` for any other cursor)."""
    if not cursor:
        return None
    return str(decode_cursor(cursor, str, str, check=lambda v: is_id(v[0]) and v[1] == NEWEST)[0])


async def newest_by_new_id(
    find: FindPage, *, want: int, now: datetime, before: str | None = None, windows: bool = True
) -> list[dict[str, Any]]:
    """``newest_by_id`` for ids made by ``new_id``: up to ``want`` documents with ``_id`` below ``before``.

    ``before`` may be any string a client sent back (a bare-id cursor): one not shaped like an id
    is still a correct upper bound, read in one query.
    """
    after = (before, id_time(before) or now) if before else None
    return await newest_by_id(find, want=want, now=now, id_at=id_at, after=after, windows=windows)


def served_with_id_range(query: dict[str, Any], *prefixes: tuple[str, ...]) -> bool:
    """True when ``query`` is bare equalities on exactly the fields of one of ``prefixes``.

    Each prefix is the part before ``_id`` of one of the collection's indexes, so ``query`` plus a
    range on ``_id`` is one index range on every server. The embedded one serves no other shape
    from an index (a second range, a ``$ne``, a field outside the index all make it read every
    key of the scope), so only such a query is worth reading in windows there.
    """
    if any(isinstance(v, dict | list) for v in query.values()):
        return False
    return any(set(query) == set(prefix) for prefix in prefixes)


def skipping(find: FindPage, skip: Callable[[dict[str, Any]], bool]) -> FindPage:
    """``find`` without the documents ``skip`` picks out, read on below the last one until ``n`` remain.

    For a condition that leaves out few documents and that no index holds (``outcome != refused``):
    the query stays one index range on the server, and the condition is applied here.
    """

    async def read(id_range: dict[str, Any], n: int) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        bound = dict(id_range)
        while len(kept) < n:
            asked = n - len(kept)
            batch = await find(bound, asked)
            kept += [d for d in batch if not skip(d)]
            if len(batch) < asked:
                break  # nothing more in the range
            bound["$lt"] = batch[-1]["_id"]
        return kept

    return read


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


async def newest_by_time(
    find: FindPage,
    *,
    field: str,
    want: int,
    now: datetime,
    after: tuple[datetime, str] | None = None,
    windows: bool = True,
) -> list[dict[str, Any]]:
    """Up to ``want`` documents newest first by (``field``, ``_id``), after ``after`` (a time and an id).

    The same windows as ``newest_by_id``, on a stored time ``field`` rather than on the id: for ids
    that say nothing about time. ``find(condition, n)`` returns the first ``n`` documents of the
    list that also match ``condition`` (``{field: {"$lt": ..., "$gte": ...}}``, or the cursor's ties
    ``{field: t, "_id": {"$lt": id}}``), sorted by (``field``, ``_id``) descending. Every document
    of the list must have ``field`` (a time).
    """
    docs: list[dict[str, Any]] = []
    if after is not None:
        after = (after[0] if after[0].tzinfo is not None else after[0].replace(tzinfo=UTC), after[1])
        docs += await find({field: after[0], "_id": {"$lt": after[1]}}, want)
        if len(docs) >= want:
            return docs

    async def window(time_range: dict[str, Any], n: int) -> list[dict[str, Any]]:
        return await find({field: time_range} if time_range else {}, n)

    at = (after[0], after[0]) if after is not None else None
    return docs + await newest_by_id(
        window, want=want - len(docs), now=now, id_at=lambda t: t, after=at, windows=windows
    )
