"""The case as callers see it: the output view of a case and its history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.cases import privacy as case_privacy
from service.cases import states
from service.cases.access import allowed_actions
from service.cases.lifecycle import Relationship
from service.common.models import Principal


def view(
    case: dict[str, Any], principal: Principal, rel: Relationship, now: datetime, *, with_history: bool = True
) -> dict[str, Any]:
    """The case as this caller may see it: one privacy rule (``case_privacy``) for every personal field."""
    hidden = ("_id", "history", "contact", "served_person", "answers_secure", "personal")
    out = {k: v for k, v in case.items() if k not in hidden}
    out["id"] = case["_id"]
    seen = case_privacy.disclosure(rel, case)
    hide_reporter = not seen.reporter
    out["contact"] = case_privacy.shown_contact(case, seen)
    if hide_reporter:
        out["created_by"] = {"role": (case.get("created_by") or {}).get("role")}
    out["served_person"] = case_privacy.shown_served_person(case, seen)
    out["answers"] = case_privacy.shown_answers(case, seen)
    out["allowed_actions"] = allowed_actions(principal, rel, case, now)
    out["status_label"] = states.STATE_LABELS.get(case["status"])
    if with_history:
        out["history"] = [_history_view(h, hide_reporter) for h in case.get("history", [])]
    return out


def _history_view(entry: dict[str, Any], hide_reporter: bool) -> dict[str, Any]:
    entry = dict(entry)
    if hide_reporter and (entry.get("actor") or {}).get("role") in ("resident", "client"):
        entry["actor"] = {"role": entry["actor"]["role"]}
    return entry
