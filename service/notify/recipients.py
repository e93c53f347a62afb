"""Who among the staff hears of an event: the station's workers or head, the assignee, the supervisors
over the division, the on-duty staff an alert names; never the one who did it."""

from __future__ import annotations

import dataclasses
from typing import Any

from service.cases.models import CaseNotice
from service.common.context import Context
from service.identity import directory
from service.identity.accounts import StaffMember
from service.notify.models import OutboxEvent


@dataclasses.dataclass(frozen=True, slots=True)
class Recipient:
    """A staff member to tell, keyed as notification records name recipients."""

    key: str  # resident:<id> / staff:<id>
    role: str
    person: StaffMember


async def staff_recipients(ctx: Context, event: OutboxEvent, case: CaseNotice | None) -> list[Recipient]:
    """The active staff who hear of ``event`` (about ``case``, when it is about one)."""
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
        await add_assignee(event.data.get("assignee_id") or (case.assignee_id if case else None))
    elif t in ("case.urged", "case.overdue"):
        await add_station(("station_head",))
        if not await add_assignee((case.assignee_id if case else None) or event.data.get("assignee_id")):
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
    return [Recipient("staff:" + sid, str(s.role), s) for sid, s in found.items()]
