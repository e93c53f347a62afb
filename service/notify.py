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
import dataclasses
import logging
import uuid
from datetime import timedelta
from typing import Any

from service import notify_wechat
from service.context import Context
from service.errors import (
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
    UpstreamError,
    ValidationFailedError,
)
from service.loops import failure_class, pause
from service.models import Page, Principal
from service.notify_models import (
    CHANNEL_INBOX,
    CHANNEL_SMS,
    CHANNEL_WECHAT,
    DELIVERED,
    FAILED,
    PENDING,
    SENT,
    SKIPPED,
    Notification,
    OutboxEvent,
    ParkedEvent,
    Preferences,
    Subscription,
)
from service.notify_rules import (
    RESIDENT_CHANNELS,
    STAFF_CHANNELS,
    STREAM_TYPES,
    defaults_for,
    effective,
    is_urgent,
    parse_quiet_hours,
    quiet_until,
    recipient_of,
    urgent_service,
    wants,
)
from service.notify_templates import (
    TEMPLATES,
    TEMPLATES_BY_KEY,
    Template,
    resident_template_for,
    resident_texts,
    sms_params,
    staff_texts,
    template_data,
    template_ids,
    template_key_for_id,
)
from service.sms import sms_sender
from service.storage.errors import translate_error
from service.storage.notifications import NotificationsRepository, decode_cursor, new_notification_id
from service.storage.notify_events import OutboxReader, PeopleReader, id_floor
from service.storage.preferences import PreferencesRepository
from service.storage.subscriptions import SubscriptionsRepository

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
SUBSCRIPTION_RESULTS = ("accept", "reject", "ban", "filter")
DETAIL_PAGE = "pages/cases/detail?id={case_id}"


# ---------------------------------------------------------------- subscriptions (residents)


@dataclasses.dataclass(frozen=True, slots=True)
class TemplateInfo:
    key: str
    template_id: str
    title_zh: str
    title_en: str
    event_types: tuple[str, ...]
    fields: list[dict[str, str]]


@dataclasses.dataclass(frozen=True, slots=True)
class SubscriptionView:
    template_key: str
    template_id: str
    title_zh: str
    title_en: str
    remaining: int
    banned: bool
    last_result: str | None


def list_templates(*, ctx: Context) -> list[TemplateInfo]:
    """The subscription-message templates of this deployment (the mini program asks consent for these ids)."""
    ids = template_ids(ctx.settings)
    return [
        TemplateInfo(
            key=t.key,
            template_id=ids[t.key],
            title_zh=t.title_zh,
            title_en=t.title_en,
            event_types=t.event_types,
            fields=[{"key": k, "name_zh": zh, "name_en": en} for k, zh, en in t.fields],
        )
        for t in TEMPLATES
    ]


def _require_resident(principal: Principal) -> None:
    if not principal.is_resident:
        raise PermissionDeniedError("role_not_allowed", "Only residents subscribe to WeChat messages.")


async def record_subscription(*, ctx: Context, principal: Principal, template_id: str, result: str) -> SubscriptionView:
    """Record a resident's answer to ``wx.requestSubscribeMessage`` for one template."""
    _require_resident(principal)
    if result not in SUBSCRIPTION_RESULTS:
        raise ValidationFailedError(
            "invalid_subscription_result",
            "result must be accept, reject, ban or filter.",
            errors={"result": [f"Must be one of: {', '.join(SUBSCRIPTION_RESULTS)}."]},
        )
    key = template_key_for_id(ctx.settings, template_id)
    if key is None:
        raise ValidationFailedError(
            "unknown_template",
            "This template id is not one of ours; see GET /api/v1/notification-templates.",
            errors={"template_id": ["Unknown template."]},
        )
    sub = await SubscriptionsRepository(ctx.db).record(
        resident_id=principal.subject, template_key=key, template_id=template_id, result=result, now=ctx.now()
    )
    return _view(TEMPLATES_BY_KEY[key], template_id, sub)


def _view(t: Template, template_id: str, sub: Subscription | None) -> SubscriptionView:
    return SubscriptionView(
        template_key=t.key,
        template_id=template_id,
        title_zh=t.title_zh,
        title_en=t.title_en,
        remaining=sub.grants if sub else 0,
        banned=sub.banned if sub else False,
        last_result=sub.last_result if sub else None,
    )


async def list_subscriptions(*, ctx: Context, principal: Principal) -> list[SubscriptionView]:
    """Every template with the grants the resident has left."""
    _require_resident(principal)
    subs = {s.template_key: s for s in await SubscriptionsRepository(ctx.db).list_for(principal.subject)}
    ids = template_ids(ctx.settings)
    return [_view(t, ids[t.key], subs.get(t.key)) for t in TEMPLATES]


# ---------------------------------------------------------------- inbox


@dataclasses.dataclass(frozen=True, slots=True)
class InboxPage:
    items: list[Notification]
    next_cursor: str | None
    unread_count: int


def _inbox_recipient(principal: Principal) -> str:
    if principal.is_client:
        raise PermissionDeniedError("role_not_allowed", "Integrator clients have no inbox.")
    return recipient_of(principal)


async def list_inbox(
    *, ctx: Context, principal: Principal, unread: bool | None, cursor: str | None, limit: int
) -> InboxPage:
    """The caller's inbox, newest first, with the number of unread entries."""
    recipient = _inbox_recipient(principal)
    after = None
    if cursor:
        after = decode_cursor(cursor)
        if after is None:
            raise BadRequestError("invalid_cursor", "The cursor is not valid; start again without it.")
    repo = NotificationsRepository(ctx.db)
    page: Page[Notification] = await repo.inbox(recipient=recipient, unread=unread, after_id=after, limit=limit)
    return InboxPage(
        items=page.items, next_cursor=page.next_cursor, unread_count=await repo.unread_count(recipient=recipient)
    )


async def mark_read(*, ctx: Context, principal: Principal, notification_id: str) -> Notification:
    """Mark one of the caller's inbox entries read."""
    return await NotificationsRepository(ctx.db).mark_read(
        recipient=_inbox_recipient(principal), notification_id=notification_id, now=ctx.now()
    )


async def mark_all_read(*, ctx: Context, principal: Principal) -> int:
    """Mark all the caller's inbox entries read; returns how many changed."""
    return await NotificationsRepository(ctx.db).mark_all_read(recipient=_inbox_recipient(principal), now=ctx.now())


# ---------------------------------------------------------------- preferences


@dataclasses.dataclass(frozen=True, slots=True)
class PreferencesView:
    events: dict[str, dict[str, bool]]
    channels: tuple[str, ...]
    quiet_hours: str
    timezone: str = "Asia/Shanghai"


async def get_preferences(*, ctx: Context, principal: Principal) -> PreferencesView:
    """The caller's effective preferences (defaults overlaid with their choices)."""
    recipient = _inbox_recipient(principal)
    prefs = await PreferencesRepository(ctx.db).get(recipient)
    return _prefs_view(ctx, principal, prefs)


def _prefs_view(ctx: Context, principal: Principal, prefs: Preferences | None) -> PreferencesView:
    quiet = ctx.settings.quiet_hours if prefs is None or prefs.quiet_hours is None else prefs.quiet_hours
    channels = RESIDENT_CHANNELS if principal.is_resident else STAFF_CHANNELS
    return PreferencesView(events=effective(prefs, principal.role), channels=channels, quiet_hours=quiet)


async def update_preferences(
    *, ctx: Context, principal: Principal, events: dict[str, dict[str, bool]] | None, quiet_hours: str | None
) -> PreferencesView:
    """Change which events reach the caller on which channel, and their SMS quiet hours."""
    recipient = _inbox_recipient(principal)
    allowed = defaults_for(principal.role)
    errors: dict[str, list[str]] = {}
    for event_type, channels in (events or {}).items():
        if event_type not in allowed:
            errors.setdefault("events", []).append(f"{event_type}: not an event type you can receive.")
            continue
        for channel in channels:
            if channel not in allowed[event_type]:
                errors.setdefault("events", []).append(f"{event_type}.{channel}: not a channel for you.")
    if quiet_hours:
        try:
            parse_quiet_hours(quiet_hours)
        except ValueError:
            errors["quiet_hours"] = ["Use HH:MM-HH:MM, e.g. 21:00-08:00 (Asia/Shanghai)."]
    if errors:
        raise ValidationFailedError("invalid_preferences", "Some preferences are not valid; see errors.", errors=errors)
    repo = PreferencesRepository(ctx.db)
    current = await repo.get(recipient)
    merged = {k: dict(v) for k, v in (current.events if current else {}).items()}
    for event_type, channels in (events or {}).items():
        merged.setdefault(event_type, {}).update(channels)
    kept_quiet = quiet_hours if quiet_hours is not None else (current.quiet_hours if current else None)
    prefs = Preferences(recipient=recipient, events=merged, quiet_hours=kept_quiet)
    await repo.put(prefs, now=ctx.now())
    return _prefs_view(ctx, principal, prefs)


# ---------------------------------------------------------------- turning events into notifications


@dataclasses.dataclass(frozen=True, slots=True)
class _Recipient:
    key: str  # resident:<id> / staff:<id>
    role: str
    person: dict[str, Any]


async def _staff_recipients(people: PeopleReader, event: OutboxEvent, case: dict[str, Any] | None) -> list[_Recipient]:
    found: dict[str, dict[str, Any]] = {}
    # case.returned carries the station it now sits with (``station_id`` / ``next_station``).
    station = event.station_id or event.data.get("next_station") or event.data.get("to_station_id")
    t = event.type

    async def add_station(roles: tuple[str, ...]) -> None:
        if station:
            for s in await people.station_staff(str(station), roles):
                found[s["_id"]] = s

    async def add_supervisors() -> None:
        if event.division:
            for s in await people.supervisors_over(event.division):
                found[s["_id"]] = s

    async def add_assignee(assignee: Any) -> bool:
        if not assignee:
            return False
        s = await people.staff_member(str(assignee))
        if s is not None and s.get("active", True):
            found[s["_id"]] = s
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
    return [_Recipient("staff:" + sid, str(s.get("role")), s) for sid, s in found.items()]


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
    people = PeopleReader(ctx.db)
    case = await people.case(event.case_id) if event.case_id else None
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
        resident = await people.resident(str(owner)) or {}
        if resident.get("openid"):
            if wants(prefs, "resident", event.type, CHANNEL_WECHAT):
                payload = {
                    "template_id": template_ids(ctx.settings)[template.key],
                    "page": DETAIL_PAGE.format(case_id=event.case_id),
                    "data": template_data(template, event, case),
                }
                n = _base(event, recipient, CHANNEL_WECHAT, now, texts)
                out.append(dataclasses.replace(n, template=template.key, payload=payload))
        elif resident.get("phone") and wants(prefs, "resident", event.type, CHANNEL_SMS):
            n = _base(event, recipient, CHANNEL_SMS, now, texts)
            payload = {"template": f"huimin_{template.key}", "params": sms_params(template, event, case)}
            out.append(
                dataclasses.replace(
                    n, template=template.key, payload=payload, not_before=_sms_not_before(ctx, event, prefs, now)
                )
            )
    staff = await _staff_recipients(people, event, case)
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
    return str(ctx.extras.setdefault("notify_owner", uuid.uuid4().hex))


async def _handle_claimed(ctx: Context, reader: OutboxReader, event: OutboxEvent) -> None:
    """Handle one claimed event; a failure of this event alone is retried, then parked, never blocking the rest."""
    from service.stream import publish_event  # the live feed builds on this module's claims

    try:
        await handle_event(ctx=ctx, event=event)
        if event.type in STREAM_TYPES:
            await publish_event(ctx=ctx, event=event)
    except Exception as exc:
        if isinstance(exc, UnavailableError) or translate_error(exc) is not None:
            raise  # the store is down: not the event's fault, the loop backs off and retries it
        await _event_failed(ctx, reader, event, exc)
        return
    await reader.release(event.id, now=ctx.now())


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
    items = await OutboxReader(ctx.db).parked(after=cursor, limit=limit + 1)
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
        page = await reader.after(after, limit=settings.notify_batch_size)
        if not page:
            break
        done = await reader.finished([e.id for e in page])
        for event in page:
            if event.id in done:
                continue
            now = ctx.now()
            stale = now - timedelta(seconds=settings.notify_claim_stale_seconds)
            if await reader.claim(event.id, owner=owner, now=now, stale_before=stale):
                await _handle_claimed(ctx, reader, event)
                handled += 1
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
        events = await reader.by_ids(stale_ids)
        for eid in stale_ids:
            if eid in events and await reader.claim(eid, owner=owner, now=now, stale_before=stale_before):
                await _handle_claimed(ctx, reader, events[eid])
                handled += 1
    return handled


# ---------------------------------------------------------------- delivery


async def _deliver_wechat(ctx: Context, n: Notification, resident_id: str) -> tuple[str, str | None, dict[str, Any]]:
    """Returns (status, reason, extra fields) or raises _Retry."""
    if not ctx.settings.wechat_appid:
        return SKIPPED, "wechat_not_configured", {}
    subs = SubscriptionsRepository(ctx.db)
    resident = await PeopleReader(ctx.db).resident(resident_id) or {}
    openid = resident.get("openid")
    if not openid:
        return SKIPPED, "no_openid", {}
    key = str(n.template)
    if not n.grant_spent:
        if not await subs.spend(resident_id=resident_id, template_key=key, now=ctx.now()):
            banned = any(s.banned for s in await subs.list_for(resident_id) if s.template_key == key)
            return SKIPPED, "template_banned" if banned else "no_grant", {}
        await NotificationsRepository(ctx.db).mark_grant_spent(n.id)
    try:
        result = await notify_wechat.send_subscribe_message(
            ctx=ctx,
            openid=str(openid),
            template_id=str(n.payload["template_id"]),
            page=str(n.payload["page"]),
            data=n.payload["data"],
        )
    except UpstreamError as exc:  # the token could not be had: like a busy answer
        raise _Retry(exc.code, refund=True) from None
    if result.ok:
        return SENT, None, {"msgid": result.msgid}
    reason = f"wechat errcode {result.errcode}: {result.errmsg}"
    if result.errcode == notify_wechat.NO_QUOTA:
        await subs.exhaust(resident_id=resident_id, template_key=key, now=ctx.now())
        return FAILED, "user_refused " + reason, {"errcode": result.errcode}
    if result.errcode in notify_wechat.TRANSIENT or result.errcode in notify_wechat.TOKEN_ERRORS:
        raise _Retry(reason, refund=True)
    await subs.refund(resident_id=resident_id, template_key=key)
    return FAILED, reason, {"errcode": result.errcode, "grant_spent": False}


async def _deliver_sms(
    ctx: Context, n: Notification, kind: str, person_id: str
) -> tuple[str, str | None, dict[str, Any]]:
    people = PeopleReader(ctx.db)
    person = await (people.resident(person_id) if kind == "resident" else people.staff_member(person_id)) or {}
    phone = n.payload.get("phone") or person.get("phone")
    if not phone:
        return SKIPPED, "no_phone", {}
    try:
        await sms_sender(ctx).send(phone=str(phone), template=str(n.payload["template"]), params=n.payload["params"])
    except (UpstreamError, UnavailableError) as exc:
        raise _Retry(exc.code) from None
    return SENT, None, {}


class _Retry(Exception):
    def __init__(self, reason: str, *, refund: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refund = refund


async def deliver(*, ctx: Context, notification: Notification) -> str | None:
    """Send one pending outbound record if this process wins it; returns its new status."""
    n = notification
    repo = NotificationsRepository(ctx.db)
    now = ctx.now()
    if not await repo.take(n.id, now=now):
        return None
    attempts = n.attempts + 1
    kind, _, person_id = n.recipient.partition(":")
    if n.channel == CHANNEL_SMS and not n.urgent:
        spec = ctx.settings.quiet_hours
        prefs = await PreferencesRepository(ctx.db).get(n.recipient)
        if prefs is not None and prefs.quiet_hours is not None:
            spec = prefs.quiet_hours
        until = quiet_until(now, spec)
        if until is not None:
            await repo.retry_later(n.id, not_before=until, reason="quiet_hours", attempts=n.attempts)
            return PENDING
    try:
        if n.channel == CHANNEL_WECHAT:
            status, reason, extra = await _deliver_wechat(ctx, n, person_id)
        elif n.channel == CHANNEL_SMS:
            status, reason, extra = await _deliver_sms(ctx, n, kind, person_id)
        else:
            status, reason, extra = SKIPPED, f"unknown channel {n.channel}", {}
    except _Retry as retry:
        if attempts < ctx.settings.notify_send_attempts:
            # The grant stays spent on the record; the next try reuses it.
            await repo.retry_later(n.id, not_before=now + notify_wechat.backoff(ctx, attempts), reason=retry.reason)
            return PENDING
        if retry.refund and n.channel == CHANNEL_WECHAT:
            await SubscriptionsRepository(ctx.db).refund(resident_id=person_id, template_key=str(n.template))
            extra = {"grant_spent": False}
        else:
            extra = {}
        status, reason = FAILED, f"gave up after {attempts} attempts: {retry.reason}"
    await repo.finish(n.id, status=status, reason=reason, now=ctx.now(), **extra)
    if status != SENT:
        log.info("notification %s %s: %s", n.id, status, reason)
    return status


async def _delivery_failed(ctx: Context, n: Notification, exc: Exception) -> None:
    """A record whose sending raised: failed with the reason, so it neither blocks nor repeats."""
    reason = f"internal error: {failure_class(exc)}: {exc}"[:500]
    await NotificationsRepository(ctx.db).finish(n.id, status=FAILED, reason=reason, now=ctx.now())
    ctx.loops.parked("notify-deliveries")
    log.error("notification %s failed", n.id, extra={"error": reason}, exc_info=exc)


async def deliver_due(*, ctx: Context) -> int:
    """Send every outbound record whose time has come; returns how many were attempted."""
    due = await NotificationsRepository(ctx.db).due(now=ctx.now(), limit=ctx.settings.notify_batch_size)
    # One person's messages go out in order (accepted before resolved); people in parallel.
    by_person: dict[str, list[Notification]] = {}
    for n in due:
        by_person.setdefault(n.recipient, []).append(n)
    sem = asyncio.Semaphore(8)

    async def person(items: list[Notification]) -> None:
        async with sem:
            for n in items:
                try:
                    await deliver(ctx=ctx, notification=n)
                except Exception as exc:
                    if isinstance(exc, UnavailableError) or translate_error(exc) is not None:
                        raise
                    await _delivery_failed(ctx, n, exc)

    await asyncio.gather(*(person(items) for items in by_person.values()))
    return len(due)


async def events_loop(ctx: Context) -> None:
    """Background loop: turn new events into notifications and live-feed messages."""
    while True:
        async with ctx.loops.guard("notify-events"):
            await process_events(ctx=ctx)
        await pause(ctx.settings.notify_poll_seconds)


async def deliveries_loop(ctx: Context) -> None:
    """Background loop: send WeChat messages and SMS that are due."""
    while True:
        async with ctx.loops.guard("notify-deliveries"):
            await deliver_due(ctx=ctx)
        await pause(ctx.settings.notify_poll_seconds)
