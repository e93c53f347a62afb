"""The events an alert writes (``alert.received``, ``alert.escalated``) and telling their recipients."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any

from service.alerts import rules
from service.alerts.models import (
    URGENT,
    Alert,
    Recipient,
)
from service.alerts.repository import AlertsRepository
from service.cases import reads as case_reads
from service.cases.models import CaseEvent, Subject
from service.common.context import Context
from service.common.errors import ConflictError

log = logging.getLogger("huimin.alerts")

RECEIVED = "alert.received"
ESCALATED = "alert.escalated"


# ---------------------------------------------------------------- events


def alert_event(
    alert: Alert,
    *,
    event_type: str,
    seq: int,
    case: dict[str, Any] | None,
    recipients: list[Recipient],
    now: datetime,
    extra: dict[str, Any] | None = None,
    level_to: str | None = None,
) -> CaseEvent:
    """The outbox event of an alert (its subject is the alert; ``case_id`` is the case it opened, if any)."""
    zh, en = rules.summary(alert, level_to=level_to)
    return CaseEvent(
        type=event_type,
        case_id=alert.case_id,
        subject=Subject("alert", alert.id),
        seq=seq,
        actor_subject=alert.client_id if event_type == RECEIVED else "system",
        actor_role="client" if event_type == RECEIVED else "system",
        time=now,
        case_number=(case or {}).get("number"),
        station_id=alert.station_id,
        division=(case or {}).get("division") or alert.township,
        data={
            "alert_id": alert.id,
            "vendor_alert_id": alert.vendor_alert_id,
            "alert_type": alert.type,
            "device_id": alert.vendor_device_id,
            "outcome": alert.outcome,
            "urgent": rules.rule_for(alert.type) == URGENT,
            "summary_zh": zh,
            "summary_en": en,
            # Staff ids and on-call phones: for notifications only, never sent to webhooks.
            "notify_staff": [r.as_data() for r in recipients],
            **(extra or {}),
        },
    )


async def announce(*, ctx: Context, alert: Alert, case: dict[str, Any] | None, recipients: list[Recipient]) -> None:
    """Write ``alert.received`` (once: the events log keys it), then mark the alert announced."""
    event = alert_event(alert, event_type=RECEIVED, seq=1, case=case, recipients=recipients, now=ctx.now())
    with contextlib.suppress(ConflictError):  # written before a process stopped; the log keeps one
        await case_reads.append_event(ctx=ctx, event=event)
    await AlertsRepository(ctx.db).settle(alert, {"announced": True})
