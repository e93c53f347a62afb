"""The filter of a part of the register, shared by the people (``elders``) and their due visits
(``visit_schedules``): both documents carry the person's ``township`` and ``station_id``."""

from __future__ import annotations

import re
from typing import Any

from service.visits.models import RegisterScope


def scope_filter(scope: RegisterScope) -> dict[str, Any]:
    """The documents of the people in ``scope`` (a new dict, the caller's to extend)."""
    if scope.station_id is not None:
        return {"station_id": scope.station_id}
    if scope.township_prefix is not None:
        return {"township": {"$regex": f"^{re.escape(scope.township_prefix)}"}}
    return {}
