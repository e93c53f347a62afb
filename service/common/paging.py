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
    id_at: Callable[[datetime], str],
    after: tuple[str, datetime] | None = None,
) -> list[dict[str, Any]]:
    """Up to ``want`` documents, ``_id`` descending, below ``after`` (an id and the time it was made at).

    ``find(id_range, n)`` returns the first ``n`` documents of the list with ``_id`` in ``id_range``
    (``{"$lt": ..., "$gte": ...}``, either may be absent), ``_id`` descending. ``id_at(t)`` is the
    smallest id made at time ``t``. The pages are those of one query over the whole range: the
    windows cover it without gaps or overlaps, whatever the ids look like; they are only faster
    when the ids are made as ``id_at`` says.
    """
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
