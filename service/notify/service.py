"""Notifications: residents hear back (WeChat subscription messages, SMS), everyone has an inbox.

Driven by the events outbox. The events loop (:mod:`service.notify.processing`) claims each
event once (``notify_claims``), writes one record per (event, recipient, channel) under a
unique index (:mod:`service.notify.notices`), then publishes the event to the staff live feed.
The delivery loop (:mod:`service.notify.delivery`) sends outbound records: a record is
moved from ``pending`` to ``sending`` by exactly one process before WeChat or the SMS
gateway is called, so nothing is sent twice; a crash before that point leaves it
``pending`` and it is sent later (at least once).

Here: the dead letters of the events loop, for administrators; and the loop's entry points,
importable from here as callers always have.
"""

from __future__ import annotations

from datetime import timedelta

from service.common.context import Context
from service.common.errors import NotFoundError, PermissionDeniedError
from service.common.models import Principal
from service.notify.models import ParkedEvent
from service.notify.notices import handle_event, notifications_for
from service.notify.outbox import parked_events
from service.notify.processing import events_loop, process_events
from service.notify.repository.outbox import OutboxReader

__all__ = [
    "events_loop",
    "handle_event",
    "list_parked_events",
    "notifications_for",
    "process_events",
    "retry_parked_event",
]


async def list_parked_events(
    *, ctx: Context, principal: Principal, cursor: str | None, limit: int
) -> tuple[list[ParkedEvent], str | None]:
    """Events whose notifications could not be made (admins): the dead letters of the events loop."""
    if principal.role != "admin":
        raise PermissionDeniedError("admin_only", "Only administrators see parked notification events.")
    items = await parked_events(ctx=ctx, after=cursor, limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return items, (items[-1].event.id if more and items else None)


async def retry_parked_event(*, ctx: Context, principal: Principal, event_id: str) -> None:
    """Put a parked event back for the events loop (admins), e.g. after the cause was fixed."""
    if principal.role != "admin":
        raise PermissionDeniedError("admin_only", "Only administrators retry parked notification events.")
    stale_at = ctx.now() - timedelta(seconds=ctx.settings.notify_claim_stale_seconds + 1)
    if not await OutboxReader(ctx.db).unpark(event_id, stale_at=stale_at):
        raise NotFoundError("parked_event_not_found", "No parked notification event with this id.")
