"""The filters of the volunteer collections, built from typed values."""

from __future__ import annotations

import re
from typing import Any

from service.volunteers.models import TimeWindow, VolunteerScope


def scope_filter(scope: VolunteerScope) -> dict[str, Any]:
    """The records of ``scope`` (a new dict, the caller's to extend)."""
    query: dict[str, Any] = {}
    if scope.station_id is not None:
        query["station_id"] = scope.station_id
    if scope.township is not None:
        query["township"] = scope.township
    elif scope.township_prefix is not None:
        query["township"] = {"$regex": f"^{re.escape(scope.township_prefix)}"}
    return query


def window_filter(field: str, window: TimeWindow) -> dict[str, Any]:
    """``field`` within ``window`` (nothing when both ends are open)."""
    cond: dict[str, Any] = {}
    if window.start:
        cond["$gte"] = window.start
    if window.end:
        cond["$lt"] = window.end
    return {field: cond} if cond else {}
