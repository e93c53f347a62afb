"""What a person reads and chooses: WeChat subscription grants, the inbox and notification preferences."""

from __future__ import annotations

import dataclasses

from service.common.context import Context
from service.common.errors import (
    PermissionDeniedError,
    ValidationFailedError,
)
from service.common.ids import is_id
from service.common.models import Page, Principal
from service.common.paging import decode_cursor
from service.notify.models import (
    Notification,
    Preferences,
    Subscription,
)
from service.notify.repository.notifications import NotificationsRepository
from service.notify.repository.preferences import PreferencesRepository
from service.notify.repository.subscriptions import SubscriptionsRepository
from service.notify.rules import (
    RESIDENT_CHANNELS,
    STAFF_CHANNELS,
    defaults_for,
    effective,
    parse_quiet_hours,
    recipient_of,
)
from service.notify.templates import (
    TEMPLATES,
    TEMPLATES_BY_KEY,
    Template,
    template_ids,
    template_key_for_id,
)

SUBSCRIPTION_RESULTS = ("accept", "reject", "ban", "filter")


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
        after = decode_cursor(cursor, str, check=lambda v: is_id(v[0]))[0]
    repo = NotificationsRepository(ctx.db)
    page: Page[Notification] = await repo.inbox(
        recipient=recipient, unread=unread, after_id=after, limit=limit, now=ctx.now()
    )
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
