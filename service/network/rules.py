"""Pure decisions of the station network: who may do what, the checklist, the figures, CSV rows.

Nothing here does I/O; the service functions read what these need and write what they decide.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from service.common.errors import BadRequestError, PermissionDeniedError
from service.common.models import Principal
from service.network.models import (
    COVERING,
    HAVES,
    STATUSES,
    UNREPORTED,
    DivisionFigures,
    HaveCheck,
    NetworkRecord,
    Site,
    Staffing,
    StationNetwork,
    StationRef,
    Verification,
)

PROVINCE_CODE = "340000"
MAX_ITEMS = 200
MAX_PHOTOS = 20
MAX_FLOOR_AREA = 100_000.0


# ---------------------------------------------------------------- divisions


def scope_prefix(division_code: str) -> str:
    """The code prefix every station under a division shares: 340000 -> 34, 341000 -> 3410, 341002 -> 341002."""
    if division_code.endswith("0000"):
        return division_code[:2]
    if division_code.endswith("00"):
        return division_code[:4]
    return division_code


def division_code_of(prefix: str) -> str:
    """The division code a scope prefix stands for (34 -> 340000, 3410 -> 341000)."""
    return prefix.ljust(6, "0") if len(prefix) <= 6 else prefix


def in_division(principal: Principal, station_code: str) -> bool:
    return (
        principal.role == "supervisor"
        and bool(principal.division_prefix)
        and station_code.startswith(principal.division_prefix or "-")
    )


def scope_of(principal: Principal, division: str | None) -> str:
    """The station-code prefix a supervisor or admin reads figures for (``division`` narrows it)."""
    if principal.role == "admin":
        own = ""
    elif principal.role == "supervisor":
        if not principal.division_prefix:
            raise PermissionDeniedError("no_division", "Your account has no division assigned.")
        own = principal.division_prefix
    else:
        raise PermissionDeniedError(
            "role_not_allowed", "The station network's figures are for supervisors and administrators."
        )
    if division is None:
        return own or scope_prefix(PROVINCE_CODE)
    wanted = scope_prefix(division)
    if not wanted.startswith(own):
        raise PermissionDeniedError("division_outside_scope", "That division is outside yours.")
    return wanted


# ---------------------------------------------------------------- who may do what


def check_may_read(principal: Principal, station: StationRef) -> None:
    """Staff of the station, supervisors of its division and admins read its record."""
    if principal.role == "admin" or in_division(principal, station.code):
        return
    if principal.role in ("worker", "station_head") and principal.station_id == station.id:
        return
    if principal.role == "supervisor":
        raise PermissionDeniedError("station_outside_division", "That station is outside your division.")
    raise PermissionDeniedError("not_your_station", "Only this station's own staff and its supervisors may do this.")


def _touches_model(record: NetworkRecord, changes: Mapping[str, Any]) -> bool:
    status = changes.get("status", record.status)
    dates = changes.get("dates") or {}
    return (status == "model") != (record.status == "model") or "model" in dates


def check_may_keep(
    principal: Principal, station: StationRef, record: NetworkRecord, changes: Mapping[str, Any]
) -> None:
    """The station's head keeps its record; supervisors of the division set only status and dates
    (model stations are designated by them, not by the station); admins may do both."""
    if principal.role == "admin":
        return
    if principal.role == "station_head":
        if principal.station_id != station.id:
            raise PermissionDeniedError("not_your_station", "Only the head of this station keeps its record.")
        if _touches_model(record, changes):
            raise PermissionDeniedError(
                "model_designated_by_supervisor",
                "A model station (示范站) is designated by the supervising civil-affairs bureau, not by the station.",
            )
        return
    if principal.role == "supervisor":
        if not in_division(principal, station.code):
            raise PermissionDeniedError("station_outside_division", "That station is outside your division.")
        kept = sorted(set(changes) - {"status", "dates"})
        if kept:
            raise PermissionDeniedError(
                "record_kept_by_station_head",
                f"The station head keeps {', '.join(kept)}; supervisors set the status and its dates and verify.",
                fields=kept,
            )
        return
    raise PermissionDeniedError("not_your_station", "Only the head of this station keeps its record.")


def check_may_verify(principal: Principal, station: StationRef) -> None:
    """Supervisors of the station's division (and admins) verify and sign off."""
    if principal.role == "admin" or in_division(principal, station.code):
        return
    if principal.role == "supervisor":
        raise PermissionDeniedError("station_outside_division", "That station is outside your division.")
    raise PermissionDeniedError("role_not_allowed", "Supervisors of the station's division verify its record.")


# ---------------------------------------------------------------- changes to a record


def check_dates(status: str | None, dates: Mapping[str, date], today: date) -> dict[str, list[str]]:
    """Problems of a status and its dates: the current status has a date, no later status has one,
    the dates follow the order planned <= built <= operating <= model, and none is in the future."""
    errors: dict[str, list[str]] = {}
    for key, day in dates.items():
        if key not in STATUSES:
            errors.setdefault(f"dates.{key}", []).append(f"Unknown status; use {', '.join(STATUSES)}.")
        elif day > today:
            errors.setdefault(f"dates.{key}", []).append("Must not be in the future.")
    if status is None:
        if dates:
            errors.setdefault("status", []).append("Give the status the dates belong to.")
        return errors
    if status not in STATUSES:
        errors.setdefault("status", []).append(f"Must be one of {', '.join(STATUSES)}.")
        return errors
    reached = STATUSES.index(status)
    if status not in dates:
        errors.setdefault(f"dates.{status}", []).append(f"Give the day the station became {status}.")
    for key in STATUSES[reached + 1 :]:
        if key in dates:
            errors.setdefault(f"dates.{key}", []).append(f"The station is {status}, not {key}; remove this date.")
    known = [(k, dates[k]) for k in STATUSES if k in dates]
    for (k1, d1), (k2, d2) in itertools.pairwise(known):
        if d2 < d1:
            errors.setdefault(f"dates.{k2}", []).append(f"Must not be before the {k1} date ({d1.isoformat()}).")
    return errors


def apply_changes(record: NetworkRecord, changes: Mapping[str, Any]) -> NetworkRecord:
    """The record with ``changes`` applied: dates and site merge key by key (None removes a date),
    lists replace."""
    out = record
    if "status" in changes:
        out = dataclasses.replace(out, status=changes["status"])
    if "dates" in changes:
        dates = dict(out.dates)
        for key, day in (changes["dates"] or {}).items():
            if day is None:
                dates.pop(key, None)
            else:
                dates[key] = day
        out = dataclasses.replace(out, dates=dates)
    if "site" in changes:
        site = changes["site"] or {}
        out = dataclasses.replace(
            out,
            site=Site(
                address=site.get("address", out.site.address),
                floor_area_m2=site.get("floor_area_m2", out.site.floor_area_m2),
                photos=tuple(site.get("photos", out.site.photos)),
            ),
        )
    if "equipment" in changes:
        out = dataclasses.replace(out, equipment=tuple(changes["equipment"]))
    if "workflows" in changes:
        out = dataclasses.replace(out, workflows=tuple(changes["workflows"]))
    if "rules" in changes:
        out = dataclasses.replace(out, rules=tuple(changes["rules"]))
    return out


def upload_ids(record: NetworkRecord) -> set[str]:
    """Every upload a record refers to: site photos and document scans."""
    found = set(record.site.photos)
    for doc in (*record.workflows, *record.rules):
        found.update(doc.uploads)
    return found


def new_uploads(record: NetworkRecord, changed: NetworkRecord) -> list[str]:
    """Upload ids ``changed`` refers to that ``record`` did not (those are checked against the caller)."""
    return sorted(upload_ids(changed) - upload_ids(record))


# ---------------------------------------------------------------- the checklist


def checklist(record: NetworkRecord, staffing: Staffing, capabilities: Iterable[str]) -> tuple[HaveCheck, ...]:
    """The six haves, each met or not with what is missing."""
    site_missing = tuple(
        name
        for name, ok in (
            ("address", bool(record.site.address)),
            ("floor_area_m2", bool(record.site.floor_area_m2 and record.site.floor_area_m2 > 0)),
            ("photos", bool(record.site.photos)),
        )
        if not ok
    )
    checks = {
        "site": site_missing,
        "equipment": () if record.equipment else ("equipment",),
        "staff": () if staffing.people > 0 else ("staff",),
        "services": () if tuple(capabilities) else ("capabilities",),
        "workflows": () if record.workflows else ("workflow_documents",),
        "rules": () if record.rules else ("rule_documents",),
    }
    return tuple(HaveCheck(have, not checks[have], checks[have]) for have in HAVES)


def is_verified(compliant: bool, record: NetworkRecord, latest: Verification | None) -> bool:
    """A sign-off holds for the revision it saw: any later change needs a new one."""
    return (
        compliant
        and latest is not None
        and latest.outcome == "approved"
        and latest.revision == record.revision
        and record.revision > 0
    )


def station_network(
    station: StationRef, record: NetworkRecord, staffing: Staffing, latest: Verification | None
) -> StationNetwork:
    """A station's record with its checklist and verification state."""
    checks = checklist(record, staffing, station.capabilities)
    compliant = all(c.met for c in checks)
    return StationNetwork(
        station=station,
        record=record,
        staffing=staffing,
        checklist=checks,
        compliant=compliant,
        verification=latest,
        verified=is_verified(compliant, record, latest),
    )


# ---------------------------------------------------------------- figures


def pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def figures(code: str, name: str, level: str, townships: set[str], networks: list[StationNetwork]) -> DivisionFigures:
    """Coverage (townships with an operating or model station / all townships) and six-haves compliance
    (stations verified as meeting all six / stations) of one division."""
    by_status = {status: 0 for status in (*STATUSES, UNREPORTED)}
    covered: set[str] = set()
    compliant = verified = 0
    for n in networks:
        by_status[n.status] += 1
        if n.status in COVERING:
            covered.add(n.station.code)
        compliant += n.compliant
        verified += n.verified
    covered &= townships
    stations = len(networks)
    return DivisionFigures(
        code=code,
        name=name,
        level=level,
        townships=len(townships),
        covered_townships=len(covered),
        coverage_pct=pct(len(covered), len(townships)),
        stations=stations,
        by_status=by_status,
        model_stations=by_status["model"],
        compliant=compliant,
        verified=verified,
        compliance_pct=pct(verified, stations),
        reported_compliance_pct=pct(compliant, stations),
    )


# ---------------------------------------------------------------- paging


def encode_cursor(station_code: str) -> str:
    """The opaque cursor of a page of the network table that ended at ``station_code``."""
    return base64.urlsafe_b64encode(station_code.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The station code a cursor continues after; one this server did not write is 400 ``invalid_cursor``."""
    try:
        code = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeError):
        code = ""
    if not code.isdigit():
        raise BadRequestError("invalid_cursor", "The cursor is not valid; start again without it.")
    return code
