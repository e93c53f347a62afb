"""Importing the social-worker register from CSV: every row is checked, then all are written or none.

A row whose ID number is on the register changes that entry (the columns it fills); any other
row adds a person.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from service.common import pii
from service.common.context import Context
from service.common.errors import (
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from service.common.imports import RowError, csv_rows, decode_text
from service.common.models import Principal
from service.visits.periods import local_date
from service.workforce import checks, rules
from service.workforce.models import ImportReport
from service.workforce.register import (
    MANAGERS_ONLY,
    actor_of,
    flat_fields,
    new_person_document,
    place_person,
    staff_exists,
    stations_by_code,
)
from service.workforce.repository.people import flat_of, history_document, person_changes
from service.workforce.repository.store import WorkforceRepository

CSV_REQUIRED = checks.REQUIRED_PERSON_FIELDS
CSV_OPTIONAL = tuple(f for f in checks.PERSON_FIELDS if f not in CSV_REQUIRED and f != "station_id")


# ---------------------------------------------------------------- bulk import


async def import_people(
    *, ctx: Context, principal: Principal, body: bytes, content_type: str, dry_run: bool
) -> ImportReport:
    """Check every row of a register CSV; unless a dry run, write all of them or none.

    A row whose ID number is on the register changes that entry (the columns it fills);
    any other row adds a person. Each bad row is reported with its line and field.
    """
    rules.require_manager(principal, detail=MANAGERS_ONLY)
    if content_type != "text/csv":
        raise UnsupportedMediaTypeError("unsupported_media_type", "Send the register as text/csv.")
    text, encoding = decode_text(body)
    rows = csv_rows(text, required=CSV_REQUIRED, optional=CSV_OPTIONAL, what="workforce register")
    now = ctx.now()
    today = local_date(now)
    key = ctx.settings.data_key_bytes
    errors: list[RowError] = []
    checked: list[tuple[int, dict[str, Any], str]] = []
    for line, row in rows:
        if "__error__" in row:
            errors.append(RowError(line, "_row", row["__error__"]))
            continue
        fields, problems = checks.check_person_fields(row, today=today, partial=False)
        number = None
        if "id_card" not in problems:
            try:
                number = pii.validate_id_card(str(row.get("id_card") or ""), today=today)
            except ValidationFailedError as exc:
                problems.setdefault("id_card", []).extend(m for ms in exc.errors.values() for m in ms)
        for name, msgs in problems.items():
            errors += [RowError(line, name, m) for m in msgs]
        if not problems and number:
            checked.append((line, fields, number))
    repo = WorkforceRepository(ctx.db)
    hashes = {n: pii.lookup_hash(key, n) for _, _, n in checked}
    existing = await repo.people_by_hash(hashes.values())
    known = await stations_by_code(ctx, {f["division"] for _, f, _ in checked if f["employer_kind"] == "station"})
    staff_ok = {s: await staff_exists(ctx, s) for s in {f["staff_id"] for _, f, _ in checked if f.get("staff_id")}}
    seen: dict[str, int] = {}
    linked: dict[str, int] = {}
    inserts: list[dict[str, Any]] = []
    updates: list[tuple[str, int, dict[str, Any]]] = []
    history: list[dict[str, Any]] = []
    for line, fields, number in checked:
        h = hashes[number]
        if h in seen:
            errors.append(RowError(line, "id_card", f"The same ID number is on line {seen[h]}."))
            continue
        seen[h] = line
        current = existing.get(h)
        record = (
            {**flat_of(current), **fields}
            if current
            else {"occupation": "social_work", "qualification_level": "none", "status": "active", **fields}
        )
        record["station_id"] = None  # a CSV names the township; its station is found from it
        if record["employer_kind"] == "station" and "employer_name" not in fields:
            record["employer_name"] = None  # the station's own name
        problems = checks.check_person_whole(record, today)
        name, station_id, place_problems = await place_person(ctx, principal, record, known)
        for f, msgs in place_problems.items():
            problems.setdefault(f, []).extend(msgs)
        if current is not None and not rules.may_manage_division(principal, current.division):
            problems.setdefault("id_card", []).append("This person is on the register outside your division.")
        staff_id = record.get("staff_id")
        if staff_id and fields.get("staff_id"):
            if not staff_ok.get(staff_id):
                problems.setdefault("staff_id", []).append("No staff account has this id.")
            elif staff_id in linked:
                problems.setdefault("staff_id", []).append(f"The same staff account is on line {linked[staff_id]}.")
            linked.setdefault(staff_id, line)
        if problems:
            errors += [RowError(line, f, m) for f, msgs in problems.items() for m in msgs]
            continue
        record.update(employer_name=name, station_id=station_id)
        if current is None:
            history.append(
                history_document(
                    ("new", len(inserts)),
                    action="imported",
                    actor=actor_of(principal),
                    changes=checks.diff({}, flat_fields(record)),
                    at=now,
                )
            )
            inserts.append(new_person_document(ctx, principal, record, number, name, station_id, now))
            continue
        before = flat_of(current)
        changed = {k: v for k, v in flat_fields(record).items() if before.get(k) != v}
        if changed:
            updates.append((current.id, current.version, {**person_changes(changed), "updated_at": now}))
            history.append(
                history_document(
                    current.id,
                    action="imported",
                    actor=actor_of(principal),
                    changes=checks.diff(before, flat_fields(record)),
                    at=now,
                )
            )
    report, write = rules.import_outcome(
        dry_run=dry_run,
        total=len(rows),
        to_create=len(inserts),
        to_update=len(updates),
        encoding=encoding,
        errors=errors,
    )
    if not write:
        return report
    await repo.apply_people_import(inserts, updates, history)
    return dataclasses.replace(report, written=True)
