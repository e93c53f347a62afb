"""An inbox read in windows of time on the id holds exactly what one sorted query holds, page by page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from service.common import paging
from service.common.context import Context
from service.common.models import Principal
from service.notify import inbox
from service.notify.models import CHANNEL_INBOX, Notification
from service.notify.repository.notifications import (
    NotificationsRepository,
    new_notification_id,
    notification_id_at,
)

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
# Ids made at: the same millisecond, seconds, days, weeks and years apart, and ahead of the clock.
AGES = [
    -timedelta(minutes=3),
    timedelta(0),
    timedelta(0),
    timedelta(seconds=2),
    timedelta(hours=5),
    timedelta(days=1),
    timedelta(days=1, seconds=1),
    timedelta(days=9),
    timedelta(days=9),
    timedelta(days=80),
    timedelta(days=700),
    timedelta(days=3000),
]


async def _file(ctx: Context, recipient: str) -> None:
    repo = NotificationsRepository(ctx.db)
    for i, age in enumerate(AGES):
        at = NOW - age
        for who in (recipient, "staff:someone-else"):
            await repo.insert_new(
                Notification(
                    id=new_notification_id(at),
                    event_id=f"e{i}",
                    event_type="case.accepted",
                    recipient=who,
                    channel=CHANNEL_INBOX,
                    status="delivered",
                    title_zh="已签收",
                    title_en="Accepted",
                    body_zh="",
                    body_en="",
                    case_id=None,
                    case_number=None,
                    created_at=at,
                    read_at=at if i % 3 == 0 else None,
                )
            )


async def _pages(ctx: Context, principal: Principal, limit: int, unread: bool | None) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = await inbox.list_inbox(ctx=ctx, principal=principal, unread=unread, cursor=cursor, limit=limit)
        pages.append([n.id for n in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert len(pages) <= 100, "paging does not end"


async def test_inbox_pages_match_one_sorted_query(ctx: Context) -> None:
    principal = Principal(subject="w-inbox", role="worker", station_id="s-1")
    await _file(ctx, "staff:w-inbox")
    ctx.clock = lambda: NOW
    for unread, extra in ((None, {}), (True, {"read_at": None}), (False, {"read_at": {"$ne": None}})):
        query = {"recipient": "staff:w-inbox", "channel": CHANNEL_INBOX, **extra}
        expected = [d["_id"] async for d in ctx.db["notifications"].find(query).sort("_id", -1)]
        assert expected
        for limit in (1, 2, 3, 5, 50):
            pages = await _pages(ctx, principal, limit, unread)
            assert pages == [expected[i : i + limit] for i in range(0, len(expected), limit)], (unread, limit)


async def test_every_window_but_the_last_carries_a_bound_on_the_id(ctx: Context) -> None:
    await _file(ctx, "staff:w-inbox")
    issued: list[dict[str, Any]] = []

    async def find(id_range: dict[str, Any], n: int) -> list[dict[str, Any]]:
        issued.append(id_range)
        query = {"recipient": "staff:w-inbox", "channel": CHANNEL_INBOX, **({"_id": id_range} if id_range else {})}
        return [d async for d in ctx.db["notifications"].find(query).sort("_id", -1).limit(n)]

    docs = await paging.newest_by_id(find, want=2, now=NOW, id_at=notification_id_at)
    assert len(docs) == 2 and issued == [{"$gte": notification_id_at(NOW - paging.ID_WINDOW_START)}]
    issued.clear()
    docs = await paging.newest_by_id(find, want=100, now=NOW, id_at=notification_id_at)
    assert len(docs) == len(AGES)
    assert all("$gte" in b for b in issued[:-1]) and "$gte" not in issued[-1]
    assert len(issued) <= 12, "windows widen geometrically"
    # A cursor id not made as id_at says still pages on, in one query below it.
    issued.clear()
    docs = await paging.newest_by_id(find, want=100, now=NOW, id_at=notification_id_at, after=("0", NOW))
    assert docs == [] and issued == [{"$lt": "0"}]
