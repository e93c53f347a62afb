"""Bulk import of the visit register from CSV: every row checked, all or nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from service.common import pii
from service.common.context import Context
from service.common.errors import (
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from service.common.imports import RowError, csv_rows, decode_text, refuse_if_errors
from service.common.models import Principal
from service.stations import service as station_service
from service.visits.elders import can_see, new_doc, require_staff, validate_new
from service.visits.repository.elders import EldersRepository
from service.visits.schedules import schedule_elders

CSV_REQUIRED = ("name", "id_card", "township")


CSV_OPTIONAL = (
    "birth_date",
    "phone",
    "address",
    "lon",
    "lat",
    "coord_system",
    "flags",
    "tier",
    "visitor_id",
    "consent_given",
    "consent_method",
    "emergency_contact_name",
    "emergency_contact_relation",
    "emergency_contact_phone",
)


@dataclasses.dataclass(frozen=True, slots=True)
class ElderImportReport:
    dry_run: bool
    total: int
    to_create: int
    written: bool
    encoding: str = "utf-8"
    errors: tuple[RowError, ...] = ()


def _csv_data(row: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        k: row[k]
        for k in ("name", "id_card", "township", "birth_date", "phone", "address", "flags", "tier", "visitor_id")
        if k in row
    }
    if "lon" in row or "lat" in row:
        data["location"] = {"lon": row.get("lon"), "lat": row.get("lat"), "coord_system": row.get("coord_system")}
    if "emergency_contact_name" in row or "emergency_contact_phone" in row:
        data["emergency_contacts"] = [
            {
                "name": row.get("emergency_contact_name"),
                "relation": row.get("emergency_contact_relation") or "家属",
                "phone": row.get("emergency_contact_phone"),
            }
        ]
    if "consent_given" in row:
        given = str(row["consent_given"]).lower() in ("1", "true", "yes", "y", "是")
        data["consent"] = {"given": given, "method": row.get("consent_method") or "written"}
    return data


def import_doc(*, ctx: Context, principal: Principal, row: dict[str, Any], station_id: str) -> dict[str, Any]:
    """The register document the CSV import writes for one row (checked the same way); for bulk loaders."""
    fields, number, errors = validate_new(_csv_data(row), ctx.now())
    if errors or number is None:
        raise ValidationFailedError("invalid_elder", "The row is not valid; see errors.", errors)
    return new_doc(ctx, principal, fields, number, station_id, ctx.now())


async def import_elders(
    *,
    ctx: Context,
    principal: Principal,
    body: bytes,
    content_type: str,
    dry_run: bool,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ElderImportReport:
    """Check every row of a register CSV; unless a dry run, register all of them or none."""
    require_staff(principal)
    if content_type != "text/csv":
        raise UnsupportedMediaTypeError("unsupported_media_type", "Send the register as text/csv.")
    text, encoding = decode_text(body)
    rows = csv_rows(text, required=CSV_REQUIRED, optional=CSV_OPTIONAL, what="elders")
    now = ctx.now()
    errors: list[RowError] = []
    checked: list[tuple[int, dict[str, Any], str]] = []
    for line, row in rows:
        if "__error__" in row:
            errors.append(RowError(line, "_row", row["__error__"]))
            continue
        fields, number, problems = validate_new(_csv_data(row), now)
        for name, msgs in problems.items():
            errors += [RowError(line, name, m) for m in msgs]
        if not problems and number:
            checked.append((line, fields, number))
    stations = await station_service.station_ids_by_code(ctx=ctx, codes={f["township"] for _, f, _ in checked})
    key = ctx.settings.data_key_bytes
    hashes = {n: pii.lookup_hash(key, n) for _, _, n in checked}
    taken = await EldersRepository(ctx.db).active_hashes(list(hashes.values())) if hashes else set()
    seen: dict[str, int] = {}
    docs = []
    for line, fields, number in checked:
        station_id = stations.get(fields["township"])
        if station_id is None:
            errors.append(RowError(line, "township", f"No station serves township {fields['township']}."))
            continue
        if not can_see(principal, station_id=station_id, township=fields["township"]):
            errors.append(RowError(line, "township", "Outside your station or division."))
            continue
        h = hashes[number]
        if h in taken:
            errors.append(RowError(line, "id_card", "Already on an active visit register."))
            continue
        if h in seen:
            errors.append(RowError(line, "id_card", f"The same ID number is on line {seen[h]}."))
            continue
        seen[h] = line
        docs.append(new_doc(ctx, principal, fields, number, station_id, now))
    errors.sort(key=lambda e: e.row)
    report = ElderImportReport(
        dry_run=dry_run,
        total=len(rows),
        to_create=len(docs),
        written=False,
        encoding=encoding,
        errors=tuple(errors),
    )
    if dry_run:
        return report
    refuse_if_errors(errors)
    if not docs:
        return report
    if on_total:
        on_total(len(docs))
    ids = await EldersRepository(ctx.db).insert_all(docs, progress)
    await schedule_elders(ctx=ctx, elders=[{**d, "_id": i} for d, i in zip(docs, ids, strict=True)], at=now)
    return dataclasses.replace(report, written=True)
