"""The case as callers see it: the output view of a case and its history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.cases import privacy as case_privacy
from service.cases import states
from service.cases.access import allowed_actions
from service.cases.lifecycle import Relationship
from service.cases.models import Case, HistoryEntry, parts_of
from service.common.memo import CASES_KEPT, VersionMemo
from service.common.models import Principal

# The wire format of a case (``schemas.cases.CaseSchema`` dumps it): plain JSON-able values by field name.
CaseView = dict[str, Any]


def _held(case: Case) -> dict[str, Any]:
    """The case's own fields as the API shows them, before the privacy rule and the caller's actions."""
    service, placement, rating = case.service, case.placement, case.rating
    location = case.location
    return {
        "number": case.number,
        "version": case.version,
        "status": case.status,
        "service": parts_of(service),
        "description": case.description,
        "location": {"type": "Point", "coordinates": [location.lon, location.lat]} if location else None,
        "division_code": case.division_code,
        "address": case.address,
        "preferred_window": case.preferred_window,
        "anonymous": case.anonymous,
        "photos": list(case.photos),
        "result_photos": list(case.result_photos),
        "created_by": {"subject": case.created_by.subject, "role": case.created_by.role},
        "source": case.source,
        "station_id": placement.station_id,
        "station_code": placement.station_code,
        "station_name": placement.station_name,
        "county_code": placement.county_code,
        "division": placement.division,
        "routing": case.routing,
        "return_count": case.return_count,
        "assignee_id": case.assignee_id,
        "sign_due_at": case.sign_due_at,
        "resolve_due_at": case.resolve_due_at,
        "next_due_at": case.next_due_at,
        "overdue": {"sign": case.overdue.sign, "resolve": case.overdue.resolve},
        "urge_count": case.urge_count,
        "accepted_at": case.accepted_at,
        "scheduled_at": case.scheduled_at,
        "resolved_at": case.resolved_at,
        "closed_at": case.closed_at,
        "result": case.result,
        "rating": rating.score if rating is not None else None,
        "extension": case.extension,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
    }


# The fields of a view that depend on who asks (the privacy rule and the caller's actions); all the
# others depend on the case alone. ``created_by`` is one of the case's own fields whose reporter
# some callers may not see.
CALLER_FIELDS = ("contact", "created_by", "served_person", "answers", "allowed_actions")

# The fields of a case's view that are the same for every caller, by the case's id, version and last
# change (every write raises the version: ``service.cases.repository``), for the next view of the
# same version. Kept values are never changed: each view is a new dict over them.
HELD_VIEWS: VersionMemo[CaseView] = VersionMemo(CASES_KEPT)


def _held_view(case: Case) -> CaseView:
    key = (case.id, case.version, case.updated_at)
    held = HELD_VIEWS.get(key)
    if held is None:
        held = _held(case)
        # A field the case has never held is left out, one it holds as null is shown so.
        for name in held.keys() - case.fields_set:
            del held[name]
        held["id"] = case.id
        held["status_label"] = states.STATE_LABELS.get(case.status)
        HELD_VIEWS.put(key, held)
    return held


def view(case: Case, principal: Principal, rel: Relationship, now: datetime, *, with_history: bool = True) -> CaseView:
    """The case as this caller may see it: one privacy rule (``case_privacy``) for every personal field.

    A field the case has never held is left out (``Case.fields_set``), one it holds as null is shown so.
    """
    out: CaseView = dict(_held_view(case))
    seen = case_privacy.disclosure(rel, case)
    hide_reporter = not seen.reporter
    out["contact"] = case_privacy.shown_contact(case, seen)
    if hide_reporter:
        out["created_by"] = {"role": case.created_by.role}
    out["served_person"] = case_privacy.shown_served_person(case, seen)
    out["answers"] = case_privacy.shown_answers(case, seen)
    out["allowed_actions"] = allowed_actions(principal, rel, case, now)
    if with_history:
        out["history"] = [_history_view(h, hide_reporter) for h in case.history]
    return out


def _history_view(entry: HistoryEntry, hide_reporter: bool) -> dict[str, Any]:
    hide = hide_reporter and entry.actor_role in ("resident", "client")
    return {
        "event_id": entry.event_id,
        "action": entry.action,
        "actor": {"role": entry.actor_role} if hide else {"subject": entry.actor_subject, "role": entry.actor_role},
        "from_state": entry.from_state,
        "to_state": entry.to_state,
        "at": entry.at,
        "note": entry.note,
        "data": entry.data,
    }
