"""The one way the API writes a moment in time, and the JSON encoding every answer shares.

Every time in every answer (REST, Open311, webhooks, live feed, problem documents) is
RFC 3339 with a ``T``, in UTC with an explicit ``+00:00`` offset, to the millisecond:
``2026-11-29T08:30:00.123+00:00``. Milliseconds are what MongoDB stores, so the answer to
the request that made a record and every later read of it agree to the character.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any


def rfc3339(value: datetime) -> str:
    """``value`` as RFC 3339 in UTC to the millisecond (naive values are taken as UTC, as stored)."""
    offset = value.utcoffset()
    if offset is None:
        value = value.replace(tzinfo=UTC)
    elif offset:
        value = value.astimezone(UTC)
    # (A zero offset under another name, as the driver's own UTC, writes "+00:00" as UTC does.)
    return value.isoformat(timespec="milliseconds")


def json_default(value: Any) -> Any:
    """``default=`` for ``json.dumps``: times as :func:`rfc3339`, dates ISO, sets as lists, else str."""
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)
