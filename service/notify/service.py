"""Notifications: residents hear back (WeChat subscription messages, SMS), everyone has an inbox.

Driven by the events outbox. The events loop claims each event once (``notify_claims``),
writes one record per (event, recipient, channel) under a unique index, then publishes
the event to the staff live feed. The delivery loop sends outbound records: a record is
moved from ``pending`` to ``sending`` by exactly one process before WeChat or the SMS
gateway is called, so nothing is sent twice; a crash before that point leaves it
``pending`` and it is sent later (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from datetime import timedelta
from typing import Any

from service.cases import reads as case_reads
from service.common.context import Context
from service.common.errors import (
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
)
from service.common.loops import failure_class, pause
from service.common.models import Principal
from service.identity import directory
from service.identity.accounts import StaffMember
from service.notify.models import (
    CHANNEL_INBOX,
    CHANNEL_SMS,
    CHANNEL_WECHAT,
    DELIVERED,
    PENDING,
    Notification,
    OutboxEvent,
    ParkedEvent,
    Preferences,
)
from service.notify.outbox import events_after, events_by_ids, parked_events
from service.notify.repository.notifications import NotificationsRepository, new_notification_id
from service.notify.repository.outbox import OutboxReader, id_floor
from service.notify.repository.preferences import PreferencesRepository
from service.notify.rules import (
    STREAM_TYPES,
    is_urgent,
    quiet_until,
    urgent_service,
    wants,
)
from service.notify.templates import (
    resident_template_for,
    resident_texts,
    sms_params,
    staff_texts,
    template_data,
    template_ids,
)
from service.storage.errors import translate_error

log = logging.getLogger("huimin.notify")

CHECKPOINT = "notify"
# Events can commit slightly out of ``_id`` order (several processes, slow transactions):
# each pass re-reads this far behind the high-water mark and skips what is finished.
LOOKBACK_SECONDS = 30
# The very first pass (no checkpoint yet) starts this far back, so switching notifications
# on in a running deployment does not message people about last year's cases.
FIRST_RUN_SECONDS = 3600
# Tries of one event's handling before it is parked (back-off HUIMIN_NOTIFY_RETRY_BASE_SECONDS, doubling).
EVENT_ATTEMPTS = 5
# Events of different cases handled side by side within a batch (one case's events stay in order).
EVENT_CONCURRENCY = 8
DETAIL_PAGE = "pages/cases/detail?id={case_id}"


# ---------------------------------------------------------------- subscriptions (residents)


# ---------------------------------------------------------------- inbox


# ---------------------------------------------------------------- preferences


# ---------------------------------------------------------------- turning events into notifications


@dataclasses.dataclass(frozen=True, slots=True)
class _Recipient:
    key: str  # resident:<id> / staff:<id>
    role: str
    person: StaffMember


async def _staff_recipients(ctx: Context, event: OutboxEvent, case: dict[str, Any] | None) -> list[_Recipient]:
    found: dict[str, StaffMember] = {}
    # case.returned carries the station it now sits with (``station_id`` / ``next_station``).
    station = event.station_id or event.data.get("next_station") or event.data.get("to_station_id")
    t = event.type

    async def add_station(roles: tuple[str, ...]) -> None:
        if station:
            for s in await directory.active_station_staff(ctx=ctx, station_id=str(station), roles=roles):
                found[s.id] = s

    async def add_supervisors() -> None:
        if event.division:
            for s in await directory.active_supervisors_over(ctx=ctx, division=event.division):
                found[s.id] = s

    async def add_assignee(assignee: Any) -> bool:
        if not assignee:
            return False
        s = await directory.staff_or_none(ctx=ctx, staff_id=str(assignee))
        if s is not None and s.active:
            found[s.id] = s
            return True
        return False

    if t in ("case.created", "case.dispatched", "visit.due"):
        await add_station(("worker", "station_head"))
    elif t == "case.returned":
        await add_station(("worker", "station_head"))
        await add_supervisors()
    elif t == "case.assigned":
        await add_assignee(event.data.get("assignee_id") or (case or {}).get("assignee_id"))
    elif t in ("case.urged", "case.overdue"):
        await add_station(("station_head",))
        if not await add_assignee((case or {}).get("assignee_id") or event.data.get("assignee_id")):
            await add_station(("worker",))
    elif t in ("case.extension_requested", "case.unrouted"):
        await add_supervisors()
    elif t == "visit.missed":
        await add_station(("station_head",))
        await add_supervisors()
    elif t in ("alert.received", "alert.escalated"):
        # The alerts area names who hears about it (the on-duty worker, then up the chain).
        for target in event.data.get("notify_staff") or []:
            await add_assignee(target.get("staff_id"))
    # Nobody is told about what they did themselves.
    found.pop(str(event.actor_subject), None)
    return [_Recipient("staff:" + sid, str(s.role), s) for sid, s in found.items()]


def _base(event: OutboxEvent, recipient: str, channel: str, now: Any, texts: tuple[str, str, str, str]) -> Notification:
    title_zh, title_en, body_zh, body_en = texts
    return Notification(
        id=new_notification_id(now),
        event_id=event.id,
        event_type=event.type,
        recipient=recipient,
        channel=channel,
        status=DELIVERED if channel == CHANNEL_INBOX else PENDING,
        title_zh=title_zh,
        title_en=title_en,
        body_zh=body_zh,
        body_en=body_en,
        case_id=event.case_id,
        case_number=event.case_number,
        created_at=now,
        not_before=None if channel == CHANNEL_INBOX else now,
        urgent=is_urgent(event),
    )


def _sms_not_before(ctx: Context, event: OutboxEvent, prefs: Preferences | None, now: Any) -> Any:
    if is_urgent(event):
        return now
    spec = ctx.settings.quiet_hours if prefs is None or prefs.quiet_hours is None else prefs.quiet_hours
    return quiet_until(now, spec) or now


async def notifications_for(*, ctx: Context, event: OutboxEvent) -> list[Notification]:
    """The records one event should produce (pure of side effects except reads)."""
    case = await case_reads.case_for_notice(ctx=ctx, case_id=event.case_id) if event.case_id else None
    if urgent_service(case):
        # The notices of an urgent service carry the urgent flag: no SMS quiet hours for them.
        event = dataclasses.replace(event, data={**event.data, "urgent": True})
    now = ctx.now()
    out: list[Notification] = []
    template = resident_template_for(event, case)
    owner = (case or {}).get("owner")
    if template is not None and owner:
        recipient = "resident:" + str(owner)
        prefs = await PreferencesRepository(ctx.db).get(recipient)
        texts = resident_texts(template, event, case)
        out.append(dataclasses.replace(_base(event, recipient, CHANNEL_INBOX, now, texts), template=template.key))
        resident = await directory.resident_or_none(ctx=ctx, resident_id=str(owner))
        if resident is not None and resident.openid:
            if wants(prefs, "resident", event.type, CHANNEL_WECHAT):
                payload = {
                    "template_id": template_ids(ctx.settings)[template.key],
                    "page": DETAIL_PAGE.format(case_id=event.case_id),
                    "data": template_data(template, event, case),
                }
                n = _base(event, recipient, CHANNEL_WECHAT, now, texts)
                out.append(dataclasses.replace(n, template=template.key, payload=payload))
        elif resident is not None and resident.phone and wants(prefs, "resident", event.type, CHANNEL_SMS):
            n = _base(event, recipient, CHANNEL_SMS, now, texts)
            payload = {"template": f"huimin_{template.key}", "params": sms_params(template, event, case)}
            out.append(
                dataclasses.replace(
                    n, template=template.key, payload=payload, not_before=_sms_not_before(ctx, event, prefs, now)
                )
            )
    staff = await _staff_recipients(ctx, event, case)
    if staff:
        all_prefs = await PreferencesRepository(ctx.db).get_many([r.key for r in staff])
        texts = staff_texts(event, case)
        for r in staff:
            prefs = all_prefs.get(r.key)
            if wants(prefs, r.role, event.type, CHANNEL_INBOX):
                out.append(_base(event, r.key, CHANNEL_INBOX, now, texts))
            if wants(prefs, r.role, event.type, CHANNEL_SMS):
                n = _base(event, r.key, CHANNEL_SMS, now, texts)
                payload = {"template": "huimin_staff_alert", "params": {"title": texts[0], "body": texts[2][:60]}}
                # An on-call phone from the duty rota goes before the account's own number.
                phone = next(
                    (t.get("phone") for t in event.data.get("notify_staff") or [] if t.get("staff_id") == r.key[6:]),
                    None,
                )
                if phone:
                    payload["phone"] = phone
                out.append(dataclasses.replace(n, payload=payload, not_before=_sms_not_before(ctx, event, prefs, now)))
    return out


async def handle_event(*, ctx: Context, event: OutboxEvent) -> int:
    """Write the notification records of one event (idempotent); returns how many were new."""
    repo = NotificationsRepository(ctx.db)
    created = 0
    for n in await notifications_for(ctx=ctx, event=event):
        created += await repo.insert_new(n)
    return created


def _owner(ctx: Context) -> str:
    return ctx.process.notify_owner


async def _handle_claimed(ctx: Context, reader: OutboxReader, event: OutboxEvent) -> bool:
    """Write one claimed event's notifications; True when that worked (the event is then published and acknowledged).

    A failure of this event alone is recorded for a retry (then parked) and never blocks the
    rest; a store that is down is raised, so the loop backs off.
    """
    try:
        await handle_event(ctx=ctx, event=event)
    except Exception as exc:
        if isinstance(exc, UnavailableError) or translate_error(exc) is not None:
            raise  # the store is down: not the event's fault, the loop backs off and retries it
        await _event_failed(ctx, reader, event, exc)
        return False
    return True


def _order_key(event: OutboxEvent) -> str:
    """Events with the same key are handled one after another, in ``_id`` order."""
    return event.case_id or str(event.data.get("elder_id") or "") or event.id


async def _handle_batch(ctx: Context, reader: OutboxReader, events: list[OutboxEvent]) -> int:
    """Handle a batch of claimed events; returns how many were acknowledged.

    The notifications of different cases are written side by side, one case's events one
    after another in ``_id`` order; then the events handled are published to the live feed
    in ``_id`` order and acknowledged (their claims marked done). A store failure stops the
    batch: what was not acknowledged is handled again (notification records are
    idempotent), and the claims of events not yet started are withdrawn so the next pass
    takes them at once.
    """
    from service.notify.stream import publish_events  # the live feed builds on this module's claims

    events = sorted(events, key=lambda e: e.id)
    groups: dict[str, list[OutboxEvent]] = {}
    for event in events:
        groups.setdefault(_order_key(event), []).append(event)
    handled: set[str] = set()
    started: set[str] = set()
    gate = asyncio.Semaphore(EVENT_CONCURRENCY)

    async def run(group: list[OutboxEvent]) -> None:
        async with gate:
            for event in group:
                started.add(event.id)
                if await _handle_claimed(ctx, reader, event):
                    handled.add(event.id)

    results = await asyncio.gather(*(run(g) for g in groups.values()), return_exceptions=True)
    failure = next((r for r in results if isinstance(r, BaseException)), None)
    if failure is not None:
        with contextlib.suppress(Exception):
            await reader.withdraw([e.id for e in events if e.id not in started], owner=_owner(ctx))
        raise failure
    done = [e for e in events if e.id in handled]
    await publish_events(ctx=ctx, events=[e for e in done if e.type in STREAM_TYPES])
    await reader.release_many([e.id for e in done], now=ctx.now())
    return len(done)


async def _event_failed(ctx: Context, reader: OutboxReader, event: OutboxEvent, exc: Exception) -> None:
    now = ctx.now()
    error = f"{failure_class(exc)}: {exc}"[:500]
    stale_window = timedelta(seconds=ctx.settings.notify_claim_stale_seconds)
    base = ctx.settings.notify_retry_base_seconds
    attempts = await reader.fail(event.id, error=error, stale_at=lambda n: now - stale_window + _event_backoff(base, n))
    if attempts >= EVENT_ATTEMPTS:
        await reader.park(event.id, error=error, now=now)
        ctx.loops.parked("notify-events")
        log.error(
            "notification event parked after %d attempts",
            attempts,
            extra={"event_id": event.id, "event_type": event.type, "error": error},
        )
        return
    log.warning(
        "notification event failed; retrying",
        extra={"event_id": event.id, "event_type": event.type, "attempt": attempts, "error": error},
    )


def _event_backoff(base: float, attempts: int) -> timedelta:
    return timedelta(seconds=min(300.0, base * 2 ** (attempts - 1)))


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


async def process_events(*, ctx: Context) -> int:
    """One pass over new events: claim, write notifications, publish to the live feed."""
    reader = OutboxReader(ctx.db)
    settings = ctx.settings
    owner = _owner(ctx)
    checkpoint = await reader.checkpoint(CHECKPOINT)
    if checkpoint:
        after = id_floor(checkpoint, LOOKBACK_SECONDS)
    else:
        after = f"{max(0, int(ctx.now().timestamp()) - FIRST_RUN_SECONDS):08x}" + "0" * 16
    highest = checkpoint
    handled = 0
    while True:
        page = await events_after(ctx=ctx, after_id=after, limit=settings.notify_batch_size)
        if not page:
            break
        done = await reader.finished([e.id for e in page])
        todo = [e for e in page if e.id not in done]
        if todo:
            now = ctx.now()
            stale = now - timedelta(seconds=settings.notify_claim_stale_seconds)
            mine = await reader.claim_many([e.id for e in todo], owner=owner, now=now, stale_before=stale)
            handled += await _handle_batch(ctx, reader, [e for e in todo if e.id in mine])
        after = page[-1].id
        highest = max(highest, after)
        if len(page) < settings.notify_batch_size:
            break
    if highest != checkpoint:
        await reader.advance(CHECKPOINT, highest)
    # Events whose handler died half-way (older than the look-back window).
    now = ctx.now()
    stale_before = now - timedelta(seconds=settings.notify_claim_stale_seconds)
    stale_ids = await reader.stale_claims(stale_before=stale_before, limit=settings.notify_batch_size)
    if stale_ids:
        events = await events_by_ids(ctx=ctx, event_ids=stale_ids)
        mine = set()
        for eid in stale_ids:
            if eid in events and await reader.claim(eid, owner=owner, now=now, stale_before=stale_before):
                mine.add(eid)
        handled += await _handle_batch(ctx, reader, [events[eid] for eid in stale_ids if eid in mine])
    return handled


# ---------------------------------------------------------------- delivery


async def events_loop(ctx: Context) -> None:
    """Background loop: turn new events into notifications and live-feed messages."""
    while True:
        async with ctx.loops.guard("notify-events"):
            await process_events(ctx=ctx)
        await pause(ctx.settings.notify_poll_seconds)
