"""Who may see a case: the caller's relationship to it, decided without I/O."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from service.cases import lifecycle
from service.cases.lifecycle import Relationship
from service.cases.models import Case, Parties
from service.common.errors import (
    NotFoundError,
)
from service.common.models import Principal


def access_of(principal: Principal, parties: Parties) -> Relationship:
    """Pure: the caller's relationship to a case, from who it belongs to and who holds it (``Case.parties``)."""
    role = principal.role
    staff_at = role in ("worker", "station_head") and bool(principal.station_id)
    creator = parties.created_by is not None and parties.created_by.subject == principal.subject
    return _relationship(
        role == "resident" and parties.owner == principal.subject,
        creator and (principal.is_staff or (role == "client" and principal.has_scope("cases:read"))),
        creator and principal.is_client and principal.has_scope("cases:read"),
        staff_at and parties.station_id == principal.station_id,
        staff_at and parties.assignee_id == principal.subject,
        role == "supervisor"
        and principal.division_prefix is not None
        and str(parties.division or "").startswith(principal.division_prefix),
        role == "admin",
        bool(parties.assignee_id),
    )


@functools.cache
def _relationship(
    owner: bool,
    creator: bool,
    client_creator: bool,
    station: bool,
    assignee: bool,
    division: bool,
    admin: bool,
    assigned: bool,
) -> Relationship:
    # At most 256 of these frozen values exist: each is built once, and a list of 20 cases
    # (each asked its relationship and, through it, its allowed actions) reuses them.
    return Relationship(
        owner=owner,
        creator=creator,
        client_creator=client_creator,
        station=station,
        assignee=assignee,
        division=division,
        admin=admin,
        assigned=assigned,
    )


REOPEN_WINDOW = timedelta(days=7)


def case_facts(case: Case, now: datetime) -> lifecycle.CaseFacts:
    """What the lifecycle table's guards need to know about this case now."""
    return _FACTS[(case.extension or {}).get("status") == "requested", within_reopen_window(case, now)]


# The four sets of facts, built once (CaseFacts is frozen).
_FACTS = {
    (pending, within): lifecycle.CaseFacts(extension_pending=pending, within_reopen_window=within)
    for pending in (False, True)
    for within in (False, True)
}


def allowed_actions(principal: Principal, rel: Relationship, case: Case, now: datetime) -> list[str]:
    """What the caller may do next on this case: exactly the actions that would succeed now."""
    return lifecycle.allowed_actions(case.status, principal.role, rel, case_facts(case, now))


def ensure_visible(principal: Principal, case: Case) -> Relationship:
    """The caller's relationship to the case; NotFoundError when it may not see it."""
    rel = access_of(principal, case.parties)
    if not rel.can_view:
        # Same answer as a missing case: do not reveal that the id exists.
        raise NotFoundError("case_not_found", f"No case with id {case.id!r}.")
    return rel


def within_reopen_window(case: Case, now: datetime) -> bool:
    """Pure: whether the case was resolved at most REOPEN_WINDOW ago and is still resolved."""
    resolved_at = case.resolved_at
    return case.status == "resolved" and resolved_at is not None and now - resolved_at <= REOPEN_WINDOW
