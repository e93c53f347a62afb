"""Notification records: never two per (event, recipient, channel), taken once, inboxes paged newest first.

The records are made by filing and acting on cases and letting the notification service
handle the events; the repository is then read and driven directly.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from service.common.context import Context
from service.common.errors import NotFoundError
from service.notify.models import CHANNEL_INBOX, PENDING, SENDING, Notification
from service.notify.repository.notifications import NotificationsRepository, new_notification_id
from service.notify.service import process_events
from tests.factories import act_on, make_case, make_staff, make_station, make_wechat_resident

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


async def notified_resident(ctx: Context, cases: int) -> tuple[str, list[Notification]]:
    """A resident whose ``cases`` cases were each accepted, with the notifications that produced."""
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    resident = await make_wechat_resident(ctx)
    for _ in range(cases):
        case = await make_case(ctx, resident)
        await act_on(ctx, worker, case["id"], "accept")
    await process_events(ctx=ctx)
    repo = NotificationsRepository(ctx.db)
    made: list[Notification] = []
    for event in await ctx.db["events"].distinct("_id"):
        made += await repo.for_event(event)
    recipient = f"resident:{resident.id}"
    return recipient, [n for n in made if n.recipient == recipient]


async def test_a_record_is_never_made_twice_and_is_taken_by_one_sender(ctx: Context) -> None:
    _, made = await notified_resident(ctx, 1)
    repo = NotificationsRepository(ctx.db)
    first = made[0]
    assert await repo.get(first.id) == first
    twin = dataclasses.replace(first, id=new_notification_id(T0), status=PENDING)
    assert not await repo.insert_new(twin)  # the same event, recipient and channel
    assert [(n.recipient, n.channel) for n in await repo.for_event(first.event_id)].count(
        (first.recipient, first.channel)
    ) == 1
    other_channel = dataclasses.replace(twin, channel="sms" if first.channel != "sms" else "wechat")
    assert await repo.insert_new(other_channel)
    assert await repo.take(other_channel.id, now=T0)
    assert not await repo.take(other_channel.id, now=T0)  # a second sender loses
    taken = await repo.get(other_channel.id)
    assert (taken.status, taken.attempts) == (SENDING, 1)
    with pytest.raises(NotFoundError) as exc:
        await repo.get(new_notification_id(T0))
    assert exc.value.code == "notification_not_found"


async def test_due_records_come_oldest_first_and_only_when_their_time_has_come(ctx: Context) -> None:
    _, made = await notified_resident(ctx, 2)
    repo = NotificationsRepository(ctx.db)
    outbound = [n.id for n in made if n.channel != CHANNEL_INBOX]
    assert len(outbound) == 2
    for minutes, n in zip((10, 5), outbound, strict=True):  # e.g. held back by quiet hours
        await repo.retry_later(n, not_before=T0 + timedelta(minutes=minutes), reason="quiet_hours")
    assert [n.id for n in await repo.due(now=T0 + timedelta(minutes=7), limit=10)] == [outbound[1]]
    assert [n.id for n in await repo.due(now=T0 + timedelta(minutes=10), limit=10)] == [outbound[1], outbound[0]]
    assert await repo.take(outbound[1], now=T0)
    assert [n.id for n in await repo.due(now=T0 + timedelta(minutes=10), limit=10)] == [outbound[0]]
    await repo.finish(outbound[1], status="sent", reason=None, now=T0)
    assert (await repo.get(outbound[1])).sent_at == T0


async def test_an_inbox_pages_newest_first_and_reads_are_per_person(ctx: Context) -> None:
    resident, made = await notified_resident(ctx, 3)
    repo = NotificationsRepository(ctx.db)
    inbox_ids = sorted((n.id for n in made if n.channel == CHANNEL_INBOX), reverse=True)
    assert len(inbox_ids) == 3
    first = await repo.inbox(recipient=resident, unread=None, after_id=None, limit=2, now=ctx.now())
    assert [n.id for n in first.items] == inbox_ids[:2] and first.next_cursor
    rest = await repo.inbox(recipient=resident, unread=None, after_id=first.items[-1].id, limit=2, now=ctx.now())
    assert [n.id for n in rest.items] == inbox_ids[2:] and rest.next_cursor is None
    assert await repo.unread_count(recipient=resident) == 3
    stranger = f"resident:{(await make_wechat_resident(ctx)).id}"
    with pytest.raises(NotFoundError):
        await repo.mark_read(recipient=stranger, notification_id=inbox_ids[0], now=T0)
    read = await repo.mark_read(recipient=resident, notification_id=inbox_ids[0], now=T0)
    again = await repo.mark_read(recipient=resident, notification_id=inbox_ids[0], now=T0 + timedelta(hours=1))
    assert read.read_at == T0 and again.read_at == T0  # the first reading counts
    unread = await repo.inbox(recipient=resident, unread=True, after_id=None, limit=10, now=ctx.now())
    assert [n.id for n in unread.items] == inbox_ids[1:]
    assert await repo.mark_all_read(recipient=resident, now=T0) == 2
    assert await repo.unread_count(recipient=resident) == 0
