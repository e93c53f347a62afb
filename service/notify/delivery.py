"""Delivering notifications over WeChat and SMS, with retries and quiet hours."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from service.common.context import Context
from service.common.errors import (
    UnavailableError,
    UpstreamError,
)
from service.common.loops import failure_class, pause
from service.identity import directory
from service.identity.accounts import Resident, StaffMember
from service.notify import wechat as notify_wechat
from service.notify.models import (
    CHANNEL_SMS,
    CHANNEL_WECHAT,
    FAILED,
    PENDING,
    SENT,
    SKIPPED,
    Notification,
)
from service.notify.repository.notifications import NotificationsRepository
from service.notify.repository.preferences import PreferencesRepository
from service.notify.repository.subscriptions import SubscriptionsRepository
from service.notify.rules import (
    quiet_until,
)
from service.notify.sms import sms_sender
from service.storage.errors import translate_error

log = logging.getLogger("huimin.notify")


async def _deliver_wechat(ctx: Context, n: Notification, resident_id: str) -> tuple[str, str | None, dict[str, Any]]:
    """Returns (status, reason, extra fields) or raises _Retry."""
    if not ctx.settings.wechat_appid:
        return SKIPPED, "wechat_not_configured", {}
    subs = SubscriptionsRepository(ctx.db)
    resident = await directory.resident_or_none(ctx=ctx, resident_id=resident_id)
    openid = resident.openid if resident is not None else None
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
    person: Resident | StaffMember | None
    if kind == "resident":
        person = await directory.resident_or_none(ctx=ctx, resident_id=person_id)
    else:
        person = await directory.staff_or_none(ctx=ctx, staff_id=person_id)
    phone = n.payload.get("phone") or (person.phone if person is not None else None)
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


async def deliveries_loop(ctx: Context) -> None:
    """Background loop: send WeChat messages and SMS that are due."""
    while True:
        async with ctx.loops.guard("notify-deliveries"):
            await deliver_due(ctx=ctx)
        await pause(ctx.settings.notify_poll_seconds)
