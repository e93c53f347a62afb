"""Pure checks of what a register row and a training row must hold, and what an edit changed.

No I/O here: every function takes what it needs and can be tested on its own.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from service.common import pii
from service.workforce.models import (
    EMPLOYER_KINDS,
    OCCUPATIONS,
    QUALIFICATION_LEVELS,
    RECORD_STATUSES,
    ROLES,
    STATUSES,
)
from service.workforce.rules import normalise_division

FIRST_CERTIFICATE_YEAR = 2008  # the national social-work qualification exams began in 2008


_PHONE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")
MAX_TEXT = 100
PERSON_FIELDS = (
    "name",
    "id_card",
    "phone",
    "occupation",
    "qualification_level",
    "certificate_no",
    "certificate_year",
    "employer_kind",
    "employer_name",
    "station_id",
    "division",
    "post",
    "role",
    "status",
    "start_date",
    "end_date",
    "staff_id",
)
REQUIRED_PERSON_FIELDS = ("name", "id_card", "employer_kind", "division", "role", "start_date")


# ---------------------------------------------------------------- register fields


def _date(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise ValueError("Must be a date (YYYY-MM-DD).") from None


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("Must be non-empty text.")
    text = value.strip()
    if any(ord(ch) < 32 for ch in text):
        raise ValueError("Must not contain control characters (tabs, line breaks and the like).")
    if len(text) > limit:
        raise ValueError(f"At most {limit} characters.")
    return text


def _choice(options: tuple[str, ...]) -> Any:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError(f"Must be one of {', '.join(options)}.")
        return str(value)

    return check


def _phone(value: Any) -> str:
    number = re.sub(r"[\s()]", "", str(value or ""))
    number = re.sub(r"^(\+86|0086)-?", "", number)
    if not _PHONE.match(number):
        raise ValueError("Must be a mainland mobile (11 digits) or landline (0551-12345678) number.")
    return number


def _year(today: date) -> Any:
    def check(value: Any) -> int:
        try:
            year = int(str(value).strip())
        except ValueError:
            raise ValueError("Must be a year.") from None
        if not FIRST_CERTIFICATE_YEAR <= year <= today.year:
            raise ValueError(f"Must be a year from {FIRST_CERTIFICATE_YEAR} to {today.year}.")
        return year

    return check


def _staff_id(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{24}", value.strip()):
        raise ValueError("Must be the id of a staff account.")
    return value.strip()


def check_person_fields(
    data: dict[str, Any], *, today: date, partial: bool
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Validate and normalise the flat register fields (not the ID number); returns (fields, errors by field).

    The same rules hold for a JSON body and a CSV row. ``partial``: a change, where only
    the given fields are checked on their own (:func:`check_person_whole` checks the result).
    """
    out: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    checks: dict[str, Any] = {
        "name": lambda v: _text(v, 50),
        "phone": _phone,
        "occupation": _choice(OCCUPATIONS),
        "qualification_level": _choice(QUALIFICATION_LEVELS),
        "certificate_no": lambda v: _text(v, 40),
        "certificate_year": _year(today),
        "employer_kind": _choice(EMPLOYER_KINDS),
        "employer_name": _text,
        "station_id": _staff_id,  # same shape: an id
        "division": normalise_division,
        "post": lambda v: _text(v, 50),
        "role": _choice(ROLES),
        "status": _choice(STATUSES),
        "start_date": _date,
        "end_date": _date,
        "staff_id": _staff_id,
    }
    if not partial:
        for name in REQUIRED_PERSON_FIELDS:
            if data.get(name) in (None, ""):
                errors[name] = ["Required."]
    for name, check in checks.items():
        if name not in data or name in errors:
            continue
        value = data[name]
        if value is None or value == "":
            if name in REQUIRED_PERSON_FIELDS:
                errors.setdefault(name, ["Required."])
            else:
                out[name] = None
            continue
        try:
            out[name] = check(value)
        except (ValueError, TypeError) as exc:
            errors.setdefault(name, []).append(str(exc) or "Invalid value.")
    if "station_id" in errors:
        errors["station_id"] = ["Must be the id of a station."]
    return out, errors


def check_person_whole(record: dict[str, Any], today: date) -> dict[str, list[str]]:
    """What a whole register record (after defaults or a change) must hold together."""
    errors: dict[str, list[str]] = {}
    level = record.get("qualification_level") or "none"
    if level == "none" and record.get("certificate_no"):
        errors.setdefault("certificate_no", []).append("A certificate needs a qualification level.")
    if level != "none" and not record.get("certificate_no"):
        errors.setdefault("certificate_no", []).append("Give the certificate number of the qualification.")
    if record.get("occupation") == "elderly_care" and level != "none":
        errors.setdefault("qualification_level", []).append(
            "Social-work qualifications belong to social workers (occupation social_work)."
        )
    start, end = record.get("start_date"), record.get("end_date")
    if start and start > today.isoformat():
        errors.setdefault("start_date", []).append("Must not be in the future.")
    if end and start and end < start:
        errors.setdefault("end_date", []).append("Must not be before start_date.")
    if (record.get("status") == "left") != bool(end):
        errors.setdefault("end_date", []).append("Give end_date exactly when the status is left.")
    kind, division = record.get("employer_kind"), record.get("division") or ""
    if kind == "station" and len(division) != 9:
        errors.setdefault("division", []).append("A station's people work in a township: give its 9-digit code.")
    if kind and kind != "station" and not record.get("employer_name"):
        errors.setdefault("employer_name", []).append("Give the employer's name.")
    if kind and kind != "station" and record.get("station_id"):
        errors.setdefault("station_id", []).append("Only station employers have a station_id.")
    return errors


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Fields whose value changed, {field: {from, to}}; a phone is kept masked."""
    out = {}
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old != new:
            if key == "phone":
                old = pii.mask_phone(old) if old else None
                new = pii.mask_phone(new) if new else None
            out[key] = {"from": old, "to": new}
    return out


# ---------------------------------------------------------------- training rows


def check_record_row(row: dict[str, Any], *, ends_on: str, today: date) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A training record row (status, attended_hours, completed_on, certificate_no): (fields, problems)."""
    out: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    status = row.get("status")
    if status not in RECORD_STATUSES:
        problems.append(("status", f"Must be one of {', '.join(RECORD_STATUSES)}."))
    else:
        out["status"] = status
    hours = row.get("attended_hours")
    if hours not in (None, ""):
        try:
            value = float(hours)
        except (TypeError, ValueError):
            problems.append(("attended_hours", "Must be a number of hours."))
        else:
            if not 0 <= value <= 1000 or value != value:
                problems.append(("attended_hours", "Must be from 0 to 1000 hours."))
            else:
                out["attended_hours"] = value
    completed_on = row.get("completed_on")
    if completed_on not in (None, ""):
        try:
            out["completed_on"] = _date(completed_on)
        except ValueError as exc:
            problems.append(("completed_on", str(exc)))
    if out.get("status") == "completed":
        out.setdefault("completed_on", ends_on)
        if out["completed_on"] > today.isoformat():
            problems.append(("completed_on", "Completion cannot be in the future."))
    elif "completed_on" in out:
        problems.append(("completed_on", "Only a completed record has a completion date."))
    if out.get("status") in ("enrolled",) and out.get("attended_hours"):
        problems.append(("attended_hours", "An enrolment not yet attended has no hours."))
    certificate = row.get("certificate_no")
    if certificate not in (None, ""):
        try:
            out["certificate_no"] = _text(certificate, 40)
        except ValueError as exc:
            problems.append(("certificate_no", str(exc)))
    return out, problems
