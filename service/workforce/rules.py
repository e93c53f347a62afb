"""Pure decisions of the workforce area: who sees what, what a register row must hold, indicator arithmetic.

No I/O here: every function takes what it needs and can be tested on its own.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from service.common import pii
from service.common.errors import PermissionDeniedError
from service.common.imports import RowError, refuse_if_errors
from service.common.models import STAFF_ROLES, Principal, Role, require_role
from service.workforce.models import (
    EMPLOYER_KINDS,
    OCCUPATIONS,
    QUALIFICATION_LEVELS,
    RECORD_STATUSES,
    ROLES,
    STATUSES,
    ImportReport,
)

FIRST_CERTIFICATE_YEAR = 2008  # the national social-work qualification exams began in 2008
_DIVISION = re.compile(r"^[1-9]\d{5}(\d{3})?$")
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


# ---------------------------------------------------------------- divisions and who sees what


def normalise_division(code: str) -> str:
    """A division code as stored: 9 digits for a township (a 12-digit code ending 000 shortened), else 6."""
    code = code.strip()
    if len(code) == 12 and code.endswith("000"):
        code = code[:9]
    if not _DIVISION.match(code):
        raise ValueError("Must be a 6-digit county-level or 9-digit township division code.")
    return code


def prefix_of(code: str) -> str:
    """The code prefix every record under a division shares: 340000 -> 34, 341000 -> 3410, 341002 -> 341002."""
    if len(code) == 6 and code.endswith("0000"):
        return code[:2]
    if len(code) == 6 and code.endswith("00"):
        return code[:4]
    return code


def level_of(prefix: str) -> str:
    """province, city, county or township for a prefix of 2, 4, 6 or 9 digits; ``prefix`` otherwise."""
    return {2: "province", 4: "city", 6: "county", 9: "township"}.get(len(prefix), "prefix")


def code_of(prefix: str) -> str:
    """The division code a prefix stands for: 34 -> 340000, 3410 -> 341000."""
    return prefix.ljust(6, "0") if len(prefix) < 6 else prefix


def scope_match(prefix: str) -> dict[str, Any]:
    """The filter on stored division fields for everything under ``prefix`` (exact fields, so indexes serve it)."""
    if len(prefix) == 2:
        return {"province_code": prefix + "0000"}
    if len(prefix) == 4:
        return {"city_code": prefix + "00"}
    if len(prefix) == 6:
        return {"county_code": prefix}
    if len(prefix) == 9:
        return {"division": prefix}
    return {"division": {"$regex": "^" + re.escape(prefix)}}


def division_fields(division: str) -> dict[str, str]:
    """The stored division fields of a workplace code."""
    return {
        "division": division,
        "county_code": division[:6],
        "city_code": division[:4] + "00",
        "province_code": division[:2] + "0000",
    }


MANAGERS: tuple[Role, ...] = ("supervisor", "admin")
NO_DIVISION = "Your account has no division assigned."


def require_manager(principal: Principal, *, detail: str) -> None:
    """PermissionDeniedError unless an administrator, or a supervisor with a division assigned."""
    require_role(principal, MANAGERS, code="workforce_managers_only", detail=detail)
    if principal.role == "supervisor" and not principal.division_prefix:
        raise PermissionDeniedError("no_division", NO_DIVISION)


def require_staff(principal: Principal, *, detail: str) -> None:
    """PermissionDeniedError ``staff_only`` unless a member of staff."""
    require_role(principal, STAFF_ROLES, code="staff_only", detail=detail)


def home_division(principal: Principal) -> str:
    """The division a manager acts for when none is named: a supervisor's own, else the province."""
    return code_of(principal.division_prefix or "34") if principal.role == "supervisor" else "340000"


def may_see_division(principal: Principal, prefix: str) -> bool:
    """True if ``principal`` may read figures of everything under ``prefix``."""
    if principal.role == "admin":
        return True
    if principal.role == "supervisor":
        return bool(principal.division_prefix) and prefix.startswith(principal.division_prefix or "-")
    return False


def may_see_person(principal: Principal, *, division: str, station_id: str | None, staff_id: str | None) -> bool:
    """Admins see everyone, supervisors their division, station staff their station's people and themselves."""
    if principal.role == "admin":
        return True
    if principal.role == "supervisor":
        return bool(principal.division_prefix) and division.startswith(principal.division_prefix or "-")
    if principal.role in ("worker", "station_head"):
        return (station_id is not None and station_id == principal.station_id) or staff_id == principal.subject
    return False


def may_manage_division(principal: Principal, division: str) -> bool:
    """Admins change every record, supervisors those of their own division."""
    if principal.role == "admin":
        return True
    return (
        principal.role == "supervisor"
        and bool(principal.division_prefix)
        and division.startswith(principal.division_prefix or "-")
    )


def show_phone(principal: Principal, phone: str | None, staff_id: str | None) -> str | None:
    """The phone as ``principal`` sees it: in full only to the person themselves, else masked."""
    if phone is None:
        return None
    return phone if staff_id is not None and staff_id == principal.subject else pii.mask_phone(phone)


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


# ---------------------------------------------------------------- indicator arithmetic


def as_of_date(year: int, today: date) -> date:
    """The day a year's figures are taken on: 31 December, or today for the year in progress."""
    end = date(year, 12, 31)
    return min(end, today)


def ratio(numerator: float, denominator: float, per: float = 1.0) -> float | None:
    """``numerator`` per ``per`` units of ``denominator`` (None when there is no denominator)."""
    if not denominator:
        return None
    return round(numerator * per / denominator, 4)


def compare(target: float | None, actual: float | None) -> tuple[float | None, float | None, bool | None]:
    """(gap, progress, met) of an at-least target: how far short (0 when met), actual/target, reached or not."""
    if target is None or actual is None:
        return None, None, None
    gap = round(max(0.0, target - actual), 4)
    progress = round(actual / target, 4) if target else None
    return gap, progress, actual >= target


def people_pipeline(match: dict[str, Any], as_of: str, before: str) -> list[dict[str, Any]]:
    """Social workers in post on ``as_of`` (by employer kind) and on ``before``, under ``match``."""
    in_post = {"$or": [{"end_date": None}, {"end_date": {"$gt": as_of}}]}
    was_in_post = {"start_date": {"$lte": before}, "$or": [{"end_date": None}, {"end_date": {"$gt": before}}]}
    return [
        {"$match": {**match, "occupation": "social_work", "start_date": {"$lte": as_of}}},
        {
            "$facet": {
                "now": [{"$match": in_post}, {"$group": {"_id": "$employer.kind", "n": {"$sum": 1}}}],
                "before": [{"$match": was_in_post}, {"$count": "n"}],
            }
        },
    ]


def training_pipeline(match: dict[str, Any], year_start: str, period_start: str, as_of: str) -> list[dict[str, Any]]:
    """Completions under ``match``: people per category this year, elderly-care completions in the period."""
    return [
        {"$match": {**match, "status": "completed", "completed_on": {"$gte": period_start, "$lte": as_of}}},
        {
            "$facet": {
                "year_people": [
                    {"$match": {"completed_on": {"$gte": year_start}}},
                    {"$group": {"_id": {"c": "$category", "p": "$person_id"}}},
                    {"$group": {"_id": "$_id.c", "n": {"$sum": 1}}},
                ],
                "period_elderly_care": [{"$match": {"category": "elderly_care"}}, {"$count": "n"}],
            }
        },
    ]


def import_outcome(
    *, dry_run: bool, total: int, to_create: int, to_update: int, encoding: str, errors: list[RowError]
) -> tuple[ImportReport, bool]:
    """The report of a checked CSV import and whether to write it.

    A dry run only reports; otherwise any row error refuses every row (ValidationFailedError),
    and an import that changes nothing writes nothing.
    """
    ordered = sorted(errors, key=lambda e: (e.row, e.field))
    report = ImportReport(
        dry_run=dry_run,
        total=total,
        to_create=to_create,
        to_update=to_update,
        written=False,
        encoding=encoding,
        errors=tuple(ordered),
    )
    if dry_run:
        return report, False
    refuse_if_errors(ordered)
    return report, bool(to_create or to_update)
