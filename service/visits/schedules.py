"""The visit scheduler: one due visit per active person and period, reminders and misses raised as events.

Every step is idempotent and safe with several processes running it: schedules have a
unique (elder_id, period) key and a deterministic ``_id``, and each ``visit.due`` and
``visit.missed`` event has a unique (case_id, seq, type) key in the events log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

from service.cases import reads as case_reads
from service.cases.models import CaseEvent, Subject
from service.common.context import Context
from service.common.errors import ConflictError
from service.common.pii import mask_name
from service.visits.periods import SHANGHAI, local_date, parse_period, period_of
from service.visits.repository.elders import EldersRepository
from service.visits.repository.visits import VisitSchedulesRepository

log = logging.getLogger("huimin.visits")
BATCH = 2000
MISSED = "visit.missed"
DUE = "visit.due"
# A visit still open on the last day of its period is due "today" (今日待探访).
DUE_NOTICE = timedelta(days=1)


def effective_tier(doc: dict[str, Any], at: datetime) -> str:
    """The tier in force at ``at`` for an elder document (a change applies from the next period)."""
    tier_from, previous = doc.get("tier_from"), doc.get("previous_tier")
    if tier_from is not None and previous and at < tier_from:
        return str(previous)
    return str(doc["tier"])


def schedule_doc(elder: dict[str, Any], at: datetime, now: datetime) -> dict[str, Any]:
    """The schedule document of an elder (raw document or its scheduling projection) for the period of ``at``."""
    elder_id = str(elder["_id"])
    tier = effective_tier(elder, at)
    period = period_of(tier, at)
    return {
        "_id": f"{elder_id}:{period.id}",
        "elder_id": elder_id,
        "period": period.id,
        "kind": period.kind,
        "tier": tier,
        "period_start": period.start,
        "period_end": period.end,
        "station_id": elder["station_id"],
        "township": elder["township"],
        "county_code": elder["county_code"],
        "city_code": elder["city_code"],
        # Masked, so the misses list needs no read of the register.
        "name_masked": mask_name(elder["name"]) if elder.get("name") else None,
        "visited": False,
        "visit_id": None,
        "visited_at": None,
        "method": None,
        "missed_event": False,
        "due_event": False,
        "withdrawn": None,  # {at, reason} once the person was ended before the period was over
        "machine_reached": False,  # a machine (AI) call reached them; counted where the county says so
        "created_at": now,
    }


CHECKUP = "checkup"


def checkup_doc(elder: dict[str, Any], now: datetime, reason: str, source: dict[str, Any]) -> dict[str, Any]:
    """A check-up visit due by the end of today (Asia/Shanghai), e.g. after a no-activity alert.

    One per person and day (its id), so repeated alerts make one check-up. Its kind ``checkup``
    keeps it out of the tiers' rates; it shows on the due list, and a visit that day marks it.
    """
    day = local_date(now)
    end = datetime.combine(day + timedelta(days=1), time(0), SHANGHAI).astimezone(UTC)
    doc = schedule_doc(elder, now, now)
    doc.update(
        {
            "_id": f"{elder['_id']}:{CHECKUP}-{day.isoformat()}",
            "period": f"{CHECKUP}-{day.isoformat()}",
            "kind": CHECKUP,
            "period_start": now,
            "period_end": end,
            "reason": reason,
            "source": source,
        }
    )
    return doc


def _missed_seq(schedule: dict[str, Any]) -> int:
    """A stable sequence number of a schedule's period: a check-up's day (YYYYMMDD) never meets a period's."""
    if schedule.get("kind") == CHECKUP:
        return int(str(schedule["period"]).removeprefix(f"{CHECKUP}-").replace("-", ""))
    return parse_period(schedule["period"]).seq


async def schedule_elders(*, ctx: Context, elders: list[dict[str, Any]], at: datetime) -> int:
    """Create the due visits of these people for the period of ``at`` (skipping existing); how many were new."""
    repo = VisitSchedulesRepository(ctx.db)
    now = ctx.now()
    docs = [schedule_doc(e, at, now) for e in elders]
    existing = await repo.existing_ids(docs) if docs else set()
    return await repo.insert_missing([d for d in docs if d["_id"] not in existing])


async def schedule_period(*, ctx: Context, at: datetime, progress: Callable[[int], None] | None = None) -> int:
    """Create the due visit of the period containing ``at`` for every active person; how many were new."""
    created = 0
    async for batch in EldersRepository(ctx.db).active_for_schedule(BATCH):
        created += await schedule_elders(ctx=ctx, elders=batch, at=at)
        if progress:
            progress(len(batch))
    return created


def missed_event(schedule: dict[str, Any], event_type: str = MISSED) -> CaseEvent:
    """The ``visit.missed`` or ``visit.due`` event of an open schedule (stable keys: raising it twice is harmless)."""

    return CaseEvent(
        type=event_type,
        # A miss belongs to a person, not a case: the person is the subject, and the period's
        # stable number its sequence (so raising it twice is refused by the log's unique key).
        case_id=None,
        subject=Subject("elder", schedule["elder_id"]),
        seq=_missed_seq(schedule),
        actor_subject="system",
        actor_role="system",
        time=schedule["period_end"] if event_type == MISSED else schedule["period_end"] - DUE_NOTICE,
        station_id=schedule["station_id"],
        division=schedule["township"],
        data={
            "elder_id": schedule["elder_id"],
            "period": schedule["period"],
            "station_id": schedule["station_id"],
            "tier": schedule["tier"],
            "elder_name": schedule.get("name_masked"),  # masked; staff inboxes show it
        },
    )


async def close_periods(*, ctx: Context, at: datetime) -> int:
    """Raise one ``visit.missed`` per person and period that ended by ``at`` unvisited; how many were new."""
    schedules = VisitSchedulesRepository(ctx.db)
    raised = 0
    while True:
        batch = await schedules.unvisited_closed(at, 500)
        if not batch:
            return raised
        for doc in batch:
            try:
                await case_reads.append_event(ctx=ctx, event=missed_event(doc))
                raised += 1
            except ConflictError:
                pass  # another process raised it first
            await schedules.mark_missed_reported(doc["_id"])


async def remind_due(*, ctx: Context, at: datetime) -> int:
    """Raise one ``visit.due`` per schedule still unvisited on the last day of its period; how many were new."""
    schedules = VisitSchedulesRepository(ctx.db)
    raised = 0
    while True:
        batch = await schedules.unvisited_ending(at, at + DUE_NOTICE, 500)
        if not batch:
            return raised
        for doc in batch:
            try:
                if doc.get("kind") != CHECKUP:  # daily machine check-ups have no "due today" reminder
                    await case_reads.append_event(ctx=ctx, event=missed_event(doc, DUE))
                    raised += 1
            except ConflictError:
                pass  # another process raised it first
            await schedules.mark_due_reported(doc["_id"])
