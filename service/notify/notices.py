"""The notification records one event makes: the resident's inbox notice and their WeChat subscription
message or SMS, and each staff recipient's inbox notice and SMS, as their preferences and quiet hours say."""

from __future__ import annotations

import dataclasses
from typing import Any

from service.cases import reads as case_reads
from service.common.context import Context
from service.identity import directory
from service.notify.models import (
    CHANNEL_INBOX,
    CHANNEL_SMS,
    CHANNEL_WECHAT,
    DELIVERED,
    PENDING,
    Notification,
    OutboxEvent,
    Preferences,
)
from service.notify.recipients import staff_recipients
from service.notify.repository.notifications import NotificationsRepository, new_notification_id
from service.notify.repository.preferences import PreferencesRepository
from service.notify.rules import is_urgent, quiet_until, urgent_service, wants
from service.notify.templates import (
    resident_template_for,
    resident_texts,
    sms_params,
    staff_texts,
    template_data,
    template_ids,
)

DETAIL_PAGE = "pages/cases/detail?id={case_id}"


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
    owner = case.owner if case is not None else None
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
    staff = await staff_recipients(ctx, event, case)
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
