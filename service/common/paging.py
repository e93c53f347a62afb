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
from collections.abc import Callable, Sequence
from datetime import datetime
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
