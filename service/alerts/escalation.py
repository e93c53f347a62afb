"""Escalation of unsigned urgent alerts along the county's ladder, and the loop that runs it.

Each pass reads the urgent alerts whose next step is due. If the case has been signed for
(or is over), the ladder stops. Otherwise the step's people (the station's heads, then the
county's supervisors) are told through an ``alert.escalated`` event, urgent like the first
notice. Moving an alert to its next level is one conditional update, so with several
processes sweeping each step is taken once.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import Any

from config.county_rules import load_county_rules
from service.alerts import rules
from service.alerts.events import ESCALATED, alert_event, announce
from service.alerts.models import Alert, Recipient
from service.alerts.repository import AlertsRepository
from service.alerts.rota import escalation_targets
from service.cases import queries as cases
from service.cases import reads as case_reads
from service.common.context import Context
from service.common.errors import ConflictError, NotFoundError
from service.common.loops import pause
from service.common.models import SYSTEM

log = logging.getLogger("huimin.alerts")
BATCH = 100
ANNOUNCE_GRACE = timedelta(seconds=30)


async def _case(ctx: Context, case_id: str | None) -> dict[str, Any] | None:
    if not case_id:
        return None
    try:
        return await cases.get_case(ctx=ctx, principal=SYSTEM, case_id=case_id)
    except NotFoundError:
        return None


async def _stop(ctx: Context, alert: Alert, reason: str) -> bool:
    assert alert.escalation is not None
    return await AlertsRepository(ctx.db).advance(
        alert.id,
        from_level=alert.escalation.level,
        changes={"escalation.done": True, "escalation.next_at": None, "escalation.reason": reason},
        entry={"level": alert.escalation.level, "stopped": reason, "at": ctx.now()},
    )


async def escalate_alert(*, ctx: Context, alert: Alert) -> str:
    """Take the alert's next step if it is due and nobody signed; returns what happened."""
    esc = alert.escalation
    if esc is None or esc.done:
        return "none"
    case = await _case(ctx, alert.case_id)
    status = (case or {}).get("status")
    if status not in rules.UNSIGNED_STATES:
        await _stop(ctx, alert, f"case_{status or 'missing'}")
        return "stopped"
    rule = load_county_rules(ctx.settings.county_rules_file).for_county(alert.county_code)
    if esc.level >= len(rule.escalation):
        await _stop(ctx, alert, "ladder_complete")
        return "stopped"
    step = rule.escalation[esc.level]
    station_id = str((case or {}).get("station_id") or alert.station_id or "")
    targets: list[Recipient] = await escalation_targets(
        ctx=ctx, station_id=station_id, county_code=str(alert.county_code or ""), to=step.to
    )
    now = ctx.now()
    level = esc.level + 1
    nxt = rules.step_due_at(rule, alert.received_at, level)
    won = await AlertsRepository(ctx.db).advance(
        alert.id,
        from_level=esc.level,
        changes={
            "escalation.level": level,
            "escalation.next_at": nxt,
            "escalation.done": nxt is None,
            "escalation.reason": None if nxt else "ladder_complete",
        },
        entry={"level": level, "to": step.to, "at": now, "staff_ids": [t.staff_id for t in targets]},
    )
    if not won:
        return "taken"
    event = alert_event(
        alert,
        event_type=ESCALATED,
        seq=1 + level,
        case=case,
        recipients=targets,
        now=now,
        extra={"level": level, "to": step.to, "after_minutes": step.after_minutes},
        level_to=step.to,
    )
    with contextlib.suppress(ConflictError):  # another sweeper wrote it
        await case_reads.append_event(ctx=ctx, event=event)
    log.warning(
        "urgent alert escalated", extra={"alert_id": alert.id, "level": level, "to": step.to, "notified": len(targets)}
    )
    return "escalated"


async def escalate_due(*, ctx: Context) -> dict[str, int]:
    """One pass: escalate every due unsigned alert, and write events a stopped process still owed."""
    repo = AlertsRepository(ctx.db)
    counts = {"escalated": 0, "stopped": 0, "announced": 0}
    for alert in await repo.escalation_due(ctx.now(), BATCH):
        outcome = await escalate_alert(ctx=ctx, alert=alert)
        if outcome in counts:
            counts[outcome] += 1
    for alert in await repo.unannounced(ctx.now() - ANNOUNCE_GRACE, BATCH):
        recipients = [Recipient(n["staff_id"], n.get("role", ""), n.get("phone")) for n in alert.notified]
        await announce(ctx=ctx, alert=alert, case=await _case(ctx, alert.case_id), recipients=recipients)
        counts["announced"] += 1
    return counts


async def escalation_loop(ctx: Context) -> None:
    """Background loop: check for due escalations every ``alert_sweep_seconds``."""
    while True:
        async with ctx.loops.guard("alert-escalation"):
            counts = await escalate_due(ctx=ctx)
            if any(counts.values()):
                log.info("alert sweep", extra=counts)
        await pause(ctx.settings.alert_sweep_seconds)
