"""Personal data on a case: one rule for ``contact``, ``served_person`` and form answers alike.

Every copy of a personal field has a kind (``phone``, ``id_card``, ``name``, ``address``) and
may identify the reporter (the person filing). The service definition says so for each form
field (``FormField.personal`` / ``reporter``); ``contact`` is the reporter's, ``served_person``
is the person helped. The rule, decided here without I/O:

* anonymous reports store nothing that identifies the reporter (``stored_answers``);
* confidential cases hide everything that identifies the reporter from station staff
  (``Disclosure.reporter``);
* phone numbers are shown in clear only to the resident who filed and the assigned worker;
* ID numbers are stored encrypted and always shown masked;
* names and addresses are shown to whoever may see the case (they are needed to help).

Cases keep the marks of the form they were filed with (``personal``), as they keep its version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from service.cases.lifecycle import Relationship
from service.cases.models import Case, parts_of
from service.common import pii

# The fixed parts of a case and the kind of each personal key in them.
CONTACT_KINDS = {"name": "name", "phone": "phone"}
SERVED_KINDS = {"name": "name", "phone": "phone", "id_card_masked": "id_card", "address": "address"}


@dataclasses.dataclass(frozen=True, slots=True)
class Disclosure:
    """What one caller may see of the people on one case."""

    reporter: bool  # may see who filed (contact, answers that identify the reporter)
    phones: bool  # phone numbers in clear


def disclosure(rel: Relationship, case: Case) -> Disclosure:
    """Pure: confidential cases hide the reporter from station staff (supervisors see a named
    reporter, nobody but the reporter an anonymous one); phones are clear to owner and assignee."""
    anonymous = case.anonymous
    confidential = anonymous or case.service.confidential
    hide = confidential and not (rel.owner or rel.admin or (rel.division and not anonymous))
    return Disclosure(reporter=not hide, phones=rel.owner or rel.assignee)


def personal_marks(service_type: Any) -> dict[str, dict[str, Any]]:
    """The personal fields of a form, stored on each case filed with it."""
    return {f.code: {"kind": f.personal, "reporter": bool(f.reporter)} for f in service_type.fields if f.personal}


def _legacy_marks(answers: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    # Cases filed before forms carried marks: the built-in forms name their phone and ID fields so.
    marks: dict[str, dict[str, Any]] = {}
    for code in answers:
        if code.endswith("phone"):
            marks[code] = {"kind": "phone", "reporter": True}
        elif code.endswith("id_card"):
            marks[code] = {"kind": "id_card", "reporter": False}
    return marks


def stored_answers(service_type: Any, answers: dict[str, Any], *, anonymous: bool) -> dict[str, Any]:
    """Pure: the answers to store; an anonymous report keeps nothing that identifies the reporter."""
    if not anonymous:
        return dict(answers)
    drop = {code for code, mark in personal_marks(service_type).items() if mark["reporter"]}
    return {k: v for k, v in answers.items() if k not in drop}


def shown_value(value: Any, kind: str, seen: Disclosure) -> Any:
    """One personal value as this caller may see it."""
    if not isinstance(value, str) or not value:
        return value
    if kind == "phone" and not seen.phones:
        return pii.mask_phone(value)
    if kind == "id_card":
        return pii.mask_id_card(value)
    return value


def _shown_part(part: dict[str, Any], kinds: dict[str, str], seen: Disclosure) -> dict[str, Any] | None:
    if not part:
        return None
    return {k: shown_value(v, kinds[k], seen) if k in kinds else v for k, v in part.items()}


def shown_contact(case: Case, seen: Disclosure) -> dict[str, Any] | None:
    """The reporter's contact, or None when the caller may not know who filed."""
    if not seen.reporter or case.contact is None:
        return None
    return _shown_part(parts_of(case.contact), CONTACT_KINDS, seen)


def shown_served_person(case: Case, seen: Disclosure) -> dict[str, Any] | None:
    """The person helped (never the encrypted ID number or its hash)."""
    held = parts_of(case.served_person) if case.served_person is not None else {}
    served = {k: v for k, v in held.items() if k not in ("id_card_enc", "id_card_hash")}
    return _shown_part(served, SERVED_KINDS, seen)


def _marks(case: Case) -> Mapping[str, Mapping[str, Any]]:
    return case.personal if case.personal is not None else _legacy_marks(case.answers)


def shown_answers(case: Case, seen: Disclosure) -> dict[str, Any]:
    """The form answers, with the same rule as contact and served person."""
    marks = _marks(case)
    out: dict[str, Any] = {}
    for code, value in case.answers.items():
        mark = marks.get(code)
        if mark is None:
            out[code] = value
        elif mark.get("reporter") and not seen.reporter:
            continue
        else:
            out[code] = shown_value(value, str(mark.get("kind")), seen)
    return out


def clear_phones(case: Case, seen: Disclosure) -> list[str]:
    """Which phone numbers this caller is shown in clear (for the audit log)."""
    if not seen.phones:
        return []
    shown = []
    if seen.reporter and case.contact is not None and case.contact.phone:
        shown.append("contact.phone")
    if case.served_person is not None and case.served_person.phone:
        shown.append("served_person.phone")
    marks = _marks(case)
    for code, value in case.answers.items():
        mark = marks.get(code) or {}
        if mark.get("kind") == "phone" and value and (seen.reporter or not mark.get("reporter")):
            shown.append(f"answers.{code}")
    return shown
