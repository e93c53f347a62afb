"""Lists read in windows of time: data made over years through the real code paths, pages read to the end.

The windows of ``service.common.paging`` start a day wide and widen eightfold; the ages below leave
gaps wider than the first window and than several after it, hold two items made in the same
second, and reach years back, so a page that spans windows, an empty window and a tie all occur.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from service.common.context import Context
from service.common.models import utcnow

T = TypeVar("T")

# Oldest first: the order the items are made in.
AGES = (
    timedelta(days=3000),
    timedelta(days=700),
    timedelta(days=80),
    timedelta(days=9, seconds=1),
    timedelta(days=9),
    timedelta(days=1, seconds=1),
    timedelta(hours=5),
    timedelta(seconds=2),
    timedelta(0),
    timedelta(0),
)
LIMITS = (1, 2, 3, 4, 50)


async def made_over_time(ctx: Context, make: Callable[[int], Awaitable[T]]) -> list[T]:
    """``make(i)`` once per age, oldest first, with the context's clock at that time; then the clock runs again."""
    now = utcnow()
    made: list[T] = []
    try:
        for i, age in enumerate(AGES):
            at = now - age
            ctx.clock = _fixed(at)
            made.append(await make(i))
    finally:
        ctx.clock = utcnow
    return made


def _fixed(at: datetime) -> Callable[[], datetime]:
    return lambda: at


async def read_pages(read: Callable[[str | None], Awaitable[tuple[list[str], str | None]]]) -> list[list[str]]:
    """Every page of a list, each as its item ids, following the cursors to the end."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        ids, cursor = await read(cursor)
        pages.append(ids)
        if cursor is None:
            return pages
        assert len(pages) <= 100, "paging does not end"


def in_pages(ids: list[str], limit: int) -> list[list[str]]:
    """``ids`` cut into pages of ``limit`` (one empty page for no ids)."""
    return [ids[i : i + limit] for i in range(0, len(ids), limit)] or [[]]
