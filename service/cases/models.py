"""Typed records of the cases area that other modules and areas hold."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from service.common.ids import new_id


@dataclasses.dataclass(frozen=True, slots=True)
class CaseEvent:
    """One entry of a case's history."""

    type: str
    case_id: str
    seq: int
    actor_subject: str
    actor_role: str
    time: datetime
    case_number: str | None = None
    station_id: str | None = None
    division: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    id: str = dataclasses.field(default_factory=new_id)
    created_at: datetime | None = None
