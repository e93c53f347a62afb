"""What every change of a case writes besides the case: its event, its history entry, the station placement and load."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from service.cases.models import DIVISION_PROVINCE, CaseEvent, CaseRef, HistoryEntry, region_codes
from service.common.context import Context
from service.common.errors import (
    NotFoundError,
)
from service.common.models import Principal
from service.stations import routing
from service.stations import service as stations

log = logging.getLogger("huimin.cases")


def event_doc(
    case: CaseRef,
    *,
    seq: int,
    event_type: str,
    actor: Principal | None,
    from_state: str | None,
    to_state: str,
    now: datetime,
    data: dict[str, Any],
) -> CaseEvent:
    """The outbox event for a change that leaves the case at version ``seq`` (``case``: where it then sits)."""
    return CaseEvent(
        type=event_type,
        case_id=case.id,
        seq=seq,
        actor_subject=actor.subject if actor else "system",
        actor_role=actor.role if actor else "system",
        time=now,
        case_number=case.number,
        station_id=case.station_id,
        division=case.division,
        from_state=from_state,
        to_state=to_state,
        data=data,
    )


def history_entry(
    *,
    event_id: str,
    action: str,
    actor: Principal | None,
    from_state: str | None,
    to_state: str,
    now: datetime,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> HistoryEntry:
    """The history line of a change, naming its event (``actor`` None: the system's own doing)."""
    return HistoryEntry(
        event_id=event_id,
        action=action,
        actor_subject=actor.subject if actor else "system",
        actor_role=actor.role if actor else "system",
        from_state=from_state,
        to_state=to_state,
        at=now,
        note=note,
        data=data or {},
    )


def station_placement(decision: routing.RoutingDecision) -> dict[str, Any]:
    """Fields that say where a case sits after a routing decision."""
    if decision.station_id:
        return {
            "status": "dispatched",
            "station_id": decision.station_id,
            "station_code": decision.station_code,
            "station_name": decision.station_name,
            "division": decision.station_code,
            "county_code": decision.county_code,
            **region_codes(decision.station_code),
        }
    return {
        "status": "unrouted",
        "station_id": None,
        "station_code": None,
        "station_name": None,
        "division": decision.county_code or DIVISION_PROVINCE,
        "county_code": decision.county_code,
        **region_codes(decision.county_code or DIVISION_PROVINCE),
    }


async def adjust_load(ctx: Context, changes: list[tuple[str, int]]) -> None:
    """Keep stations' open-case counts (used for capacity) in step; best effort after the commit."""
    for station_id, delta in changes:
        if station_id:
            try:
                await stations.adjust_open_cases(ctx=ctx, station_id=station_id, delta=delta)
            except NotFoundError:
                log.warning("open-case count not adjusted: station %s is gone", station_id)
