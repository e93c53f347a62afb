"""Background sweeps over cases: overdue flags and automatic closing of resolved cases."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from service.cases.changes import event_doc, history_entry
from service.cases.repository.cases import CasesRepository, SweepCandidate
from service.cases.repository.events import EventsRepository
from service.common.context import Context
from service.common.loops import pause
from service.storage.transactions import in_transaction

log = logging.getLogger("huimin.cases")


AUTO_CLOSE_AFTER = timedelta(days=7)


async def sweep_once(*, ctx: Context, limit: int = 500) -> dict[str, int]:
    """Flag overdue cases once (督办) and auto-close cases resolved 7 days ago; safe with several sweepers."""
    repo = CasesRepository(ctx.db)
    now = ctx.now()
    counts = {"sign_overdue": 0, "resolve_overdue": 0, "auto_closed": 0}
    for kind in ("sign", "resolve"):
        for doc in await repo.overdue_unflagged(kind, now, limit=limit):
            if await _flag_overdue(ctx, doc, kind, now):
                counts[f"{kind}_overdue"] += 1
    for doc in await repo.resolved_before(now - AUTO_CLOSE_AFTER, limit=limit):
        if await _auto_close(ctx, doc, now):
            counts["auto_closed"] += 1
    return counts


async def _flag_overdue(ctx: Context, doc: SweepCandidate, kind: str, now: datetime) -> bool:
    repo = CasesRepository(ctx.db)
    due = doc.sign_due_at if kind == "sign" else doc.resolve_due_at
    event = event_doc(
        doc.ref,
        seq=doc.version + 1,
        event_type="case.overdue",
        actor=None,
        from_state=doc.status,
        to_state=doc.status,
        now=now,
        data={"kind": kind, "due_at": due},
    )
    entry = history_entry(
        event_id=event.id,
        action="overdue",
        actor=None,
        from_state=doc.status,
        to_state=doc.status,
        now=now,
        note=f"超时督办 overdue ({kind})",
        data={"kind": kind},
    )

    async def write(session: Any) -> bool:
        if not await repo.flag_overdue(
            doc.ref.id, kind=kind, status=doc.status, now=now, history=entry, session=session
        ):
            return False
        await EventsRepository(ctx.db).append(event, session=session)
        return True

    return bool(await in_transaction(ctx, write))


async def _auto_close(ctx: Context, doc: SweepCandidate, now: datetime) -> bool:
    repo = CasesRepository(ctx.db)
    event = event_doc(
        doc.ref,
        seq=doc.version + 1,
        event_type="case.closed",
        actor=None,
        from_state="resolved",
        to_state="closed",
        now=now,
        data={"auto": True},
    )
    entry = history_entry(
        event_id=event.id,
        action="auto_close",
        actor=None,
        from_state="resolved",
        to_state="closed",
        now=now,
        note="7 天未评价，自动归档 auto-closed without a rating",
    )

    async def write(session: Any) -> bool:
        if not await repo.apply(
            doc.ref.id,
            expected_version=doc.version,
            expected_status="resolved",
            fields={"status": "closed", "closed_at": now, "updated_at": now},
            history=entry,
            session=session,
        ):
            return False
        await EventsRepository(ctx.db).append(event, session=session)
        return True

    return bool(await in_transaction(ctx, write))


async def sweep_loop(ctx: Context) -> None:
    """Background loop: sweep every ``case_sweep_seconds``."""
    while True:
        async with ctx.loops.guard("case-sweep"):
            counts = await sweep_once(ctx=ctx)
            if any(counts.values()):
                log.info("case sweep", extra=counts)
        await pause(ctx.settings.case_sweep_seconds)
