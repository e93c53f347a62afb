"""Pure decisions of the workforce area: who sees what, and indicator arithmetic.

No I/O here: every function takes what it needs and can be tested on its own. What a register
row or a training row must hold is checked in checks.py.
"""

from __future__ import annotations

import re
from datetime import date

from service.common import pii
from service.common.errors import PermissionDeniedError
from service.common.imports import RowError, refuse_if_errors
from service.common.models import STAFF_ROLES, Principal, Role, require_role
from service.workforce.models import (
    ImportReport,
)

_DIVISION = re.compile(r"^[1-9]\d{5}(\d{3})?$")


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
