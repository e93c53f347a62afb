"""Who may see a case: the caller's relationship to it, decided without I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from service.cases import lifecycle
from service.cases.lifecycle import Relationship
from service.common.errors import (
    NotFoundError,
)
from service.common.models import Principal


def access_of(principal: Principal, case: dict[str, Any]) -> Relationship:
    """Pure: the caller's relationship to the case."""
    role = principal.role
    created_by = case.get("created_by") or {}
    staff_at = role in ("worker", "station_head") and bool(principal.station_id)
    creator = created_by.get("subject") == principal.subject
    return Relationship(
        owner=role == "resident" and case.get("owner") == principal.subject,
        creator=creator and (principal.is_staff or (role == "client" and principal.has_scope("cases:read"))),
        client_creator=creator and principal.is_client and principal.has_scope("cases:read"),
        station=staff_at and case.get("station_id") == principal.station_id,
        assignee=staff_at and case.get("assignee_id") == principal.subject,
        division=role == "supervisor"
        and principal.division_prefix is not None
        and str(case.get("division") or "").startswith(principal.division_prefix),
        admin=role == "admin",
        assigned=bool(case.get("assignee_id")),
    )


REOPEN_WINDOW = timedelta(days=7)


def case_facts(case: dict[str, Any], now: datetime) -> lifecycle.CaseFacts:
    """What the lifecycle table's guards need to know about this case now."""
    return lifecycle.CaseFacts(
        extension_pending=(case.get("extension") or {}).get("status") == "requested",
        within_reopen_window=within_reopen_window(case, now),
    )


def allowed_actions(principal: Principal, rel: Relationship, case: dict[str, Any], now: datetime) -> list[str]:
    """What the caller may do next on this case: exactly the actions that would succeed now."""
    return lifecycle.allowed_actions(case["status"], principal.role, rel, case_facts(case, now))


def ensure_visible(principal: Principal, case: dict[str, Any]) -> Relationship:
    rel = access_of(principal, case)
    if not rel.can_view:
        # Same answer as a missing case: do not reveal that the id exists.
        raise NotFoundError("case_not_found", f"No case with id {case['_id']!r}.")
    return rel


def within_reopen_window(case: dict[str, Any], now: datetime) -> bool:
    resolved_at = case.get("resolved_at")
    return case.get("status") == "resolved" and resolved_at is not None and now - resolved_at <= REOPEN_WINDOW
