"""The events outbox as notifications read it: the cases area's events, seen as ``OutboxEvent``."""

from __future__ import annotations

from collections.abc import Iterable

from service.cases import reads as case_reads
from service.cases.models import CaseEvent
from service.common.context import Context
from service.notify.models import OutboxEvent, ParkedEvent
from service.notify.repository.outbox import OutboxReader


def outbox_event(e: CaseEvent) -> OutboxEvent:
    """A case or visit event as the notification area reads it."""
    return OutboxEvent(
        id=e.id,
        seq=e.seq,
        type=e.type,
        case_id=e.case_id,
        case_number=e.case_number,
        station_id=e.station_id or e.data.get("station_id"),
        division=e.division or "",
        scenario=None,
        actor_subject=e.actor_subject or None,
        actor_role=e.actor_role or None,
        from_state=e.from_state,
        to_state=e.to_state,
        time=e.time,
        data=dict(e.data),
    )


async def events_after(*, ctx: Context, after_id: str, limit: int) -> list[OutboxEvent]:
    """Events with an ``_id`` above ``after_id``, in ``_id`` order."""
    return [outbox_event(e) for e in await case_reads.events_after(ctx=ctx, after_id=after_id, limit=limit)]


async def events_by_ids(*, ctx: Context, event_ids: Iterable[str]) -> dict[str, OutboxEvent]:
    """Events by id (ids with no event are left out)."""
    found = await case_reads.events_by_ids(ctx=ctx, event_ids=event_ids)
    return {eid: outbox_event(e) for eid, e in found.items()}


async def feed_after(*, ctx: Context, feed_seq: int, limit: int) -> list[tuple[int, OutboxEvent]]:
    """Published events after a live-feed id, in feed order (for Last-Event-ID resume)."""
    pairs = await OutboxReader(ctx.db).feed_after(feed_seq, limit=limit)
    events = await events_by_ids(ctx=ctx, event_ids=[eid for _, eid in pairs])
    return [(seq, events[eid]) for seq, eid in pairs if eid in events]


async def parked_events(*, ctx: Context, after: str | None, limit: int) -> list[ParkedEvent]:
    """Parked events in ``_id`` order, after a cursor id."""
    claims = await OutboxReader(ctx.db).parked(after=after, limit=limit)
    events = await events_by_ids(ctx=ctx, event_ids=[c.event_id for c in claims])
    return [
        ParkedEvent(event=events[c.event_id], attempts=c.attempts, last_error=c.last_error, parked_at=c.parked_at)
        for c in claims
        if c.event_id in events
    ]
