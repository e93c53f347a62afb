"""Who may see a case: the caller's relationship to it, decided without I/O."""

from __future__ import annotations

import dataclasses
from typing import Any

from service.models import Principal


@dataclasses.dataclass(frozen=True, slots=True)
class Access:
    """How the caller relates to one case; drives visibility, masking and allowed actions."""

    owner: bool = False  # the resident who filed it
    creator: bool = False  # the integrator client (with cases:read) or staff member who created it
    station: bool = False  # staff of the station that holds it
    assignee: bool = False  # the worker it is assigned to
    division: bool = False  # a supervisor whose prefix covers it
    admin: bool = False

    @property
    def can_view(self) -> bool:
        return self.owner or self.creator or self.station or self.division or self.admin


def access_of(principal: Principal, case: dict[str, Any]) -> Access:
    """Pure: the caller's relationship to the case."""
    role = principal.role
    created_by = case.get("created_by") or {}
    staff_at = role in ("worker", "station_head") and bool(principal.station_id)
    return Access(
        owner=role == "resident" and case.get("owner") == principal.subject,
        creator=created_by.get("subject") == principal.subject
        and (principal.is_staff or (role == "client" and principal.has_scope("cases:read"))),
        station=staff_at and case.get("station_id") == principal.station_id,
        assignee=staff_at and case.get("assignee_id") == principal.subject,
        division=role == "supervisor"
        and principal.division_prefix is not None
        and str(case.get("division") or "").startswith(principal.division_prefix),
        admin=role == "admin",
    )
