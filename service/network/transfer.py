"""The station network as CSV: import (dry run listing every row's problems, all or nothing) and export."""

from __future__ import annotations

import csv
import dataclasses
import io

from service.common.context import Context
from service.common.errors import UnsupportedMediaTypeError
from service.common.imports import RowError, csv_rows, decode_upload, refuse_if_errors
from service.common.models import Principal
from service.network import files, rules
from service.network.models import STATUSES, NetworkImportReport, NetworkRecord
from service.network.repository import NetworkRepository
from service.network.service import actor_of, check_division, networks_of, stamp, stations_under, today_in_china


async def import_station_network(
    *, ctx: Context, principal: Principal, body: bytes, content_type: str, dry_run: bool
) -> NetworkImportReport:
    """Check every row of a network CSV; unless a dry run, write all rows or none.

    Supervisors import the stations of their own division, admins any station.
    """
    prefix = rules.scope_of(principal, None)
    if content_type != "text/csv":
        raise UnsupportedMediaTypeError("unsupported_media_type", "Send the file as text/csv.")
    rows = csv_rows(
        decode_upload(body),
        required=files.CSV_REQUIRED,
        optional=(*files.CSV_OPTIONAL, *files.CSV_EXPORT_ONLY),
        what="station network",
    )
    refs = {r.code: r for r in await stations_under(ctx, prefix, include_inactive=True)}
    in_file = {str(row.get("station_code") or "") for _, row in rows} & set(refs)
    repo = NetworkRepository(ctx.db)
    current = await repo.get_many([refs[c].id for c in in_file])
    today = today_in_china(ctx)
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    writes: list[tuple[NetworkRecord, int]] = []
    for line, row in rows:
        if "__error__" in row:
            errors.append(RowError(line, "_row", row["__error__"]))
            continue
        changes, problems = files.parse_row(row, today)
        code = str(row.get("station_code") or "")
        if code and code not in refs:
            problems.append(("station_code", f"No station {code} in your division."))
        elif code in seen:
            problems.append(("station_code", f"Station {code} appears twice in the file (line {seen[code]})."))
        seen.setdefault(code, line)
        if code in refs:
            before = current.get(refs[code].id) or NetworkRecord(station_id=refs[code].id)
            after = rules.apply_changes(before, changes)
            if "status" in changes:  # an unknown status is reported once, above
                for field, msgs in rules.check_dates(after.status, after.dates, today).items():
                    problems.append((_column_of(field), msgs[0]))
            if not problems:
                after = dataclasses.replace(
                    after, revision=before.revision + 1, updated_at=stamp(ctx), updated_by=actor_of(principal)
                )
                writes.append((after, before.revision))
        errors += [RowError(line, f, m) for f, m in problems]
    errors.sort(key=lambda e: e.row)
    report = NetworkImportReport(
        dry_run=dry_run,
        total=len(rows),
        to_create=sum(1 for _, rev in writes if rev == 0),
        to_update=sum(1 for _, rev in writes if rev > 0),
        written=False,
        errors=tuple(errors),
    )
    if not dry_run:
        refuse_if_errors(errors)
    if dry_run or not writes:
        return report
    await repo.save_all(writes)
    return dataclasses.replace(report, written=True)


_COLUMN_OF_DATE = {f"dates.{status}": f"{status}_on" for status in STATUSES}


def _column_of(field: str) -> str:
    return _COLUMN_OF_DATE.get(field, field)


async def export_station_network(*, ctx: Context, principal: Principal, division: str | None = None) -> str:
    """The network of a division as CSV (UTF-8 with a byte-order mark, so Excel reads the Chinese);
    its first columns are the import's, so an edited export can be imported again."""
    prefix = rules.scope_of(principal, division)
    check_division(division)
    networks = await networks_of(ctx, await stations_under(ctx, prefix))
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(files.CSV_COLUMNS)
    for n in networks:
        writer.writerow(files.export_row(n))
    return out.getvalue()
