"""Training (培训): programmes by category and tier, their sessions, enrolment, attendance and completion.

A programme is organised by a division (the province, a city or a county); administrators
and the supervisors of that division run its sessions and record who attended and who
completed. A training record is one person's enrolment in one session; the plan's training
figures count completed records.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from service.common import pii
from service.common.context import Context
from service.common.errors import (
    PermissionDeniedError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from service.common.imports import RowError, csv_rows, decode_text
from service.common.inputs import given
from service.common.models import Page, Principal
from service.visits.periods import local_date
from service.workforce import checks, rules
from service.workforce.inputs import Enrolment, ProgrammeInput, RecordFields, SessionInput
from service.workforce.models import (
    ImportReport,
    Programme,
    RecordFilter,
    Session,
    TrainingRecord,
)
from service.workforce.register import load_visible, read_scope
from service.workforce.repository.store import WorkforceRepository
from service.workforce.repository.training import record_document

RECORD_CSV_REQUIRED = ("id_card", "status")
RECORD_CSV_OPTIONAL = ("name", "attended_hours", "completed_on", "certificate_no")


MANAGERS_ONLY = "Only administrators and supervisors run training."
STAFF_ONLY = "Training is for staff."


def _require_organiser(principal: Principal, programme: Programme | Session) -> None:
    rules.require_manager(principal, detail=MANAGERS_ONLY)
    if not rules.may_manage_division(principal, programme.organiser_division):
        raise PermissionDeniedError(
            "not_the_organiser", "Only the organising division's supervisors and administrators run this programme."
        )


def _occupation_fits(category: str, occupation: str) -> bool:
    return (category == "elderly_care") == (occupation == "elderly_care")


# ---------------------------------------------------------------- programmes and sessions


async def create_programme(*, ctx: Context, principal: Principal, data: ProgrammeInput) -> Programme:
    """Add a programme organised by the caller's division (administrators: any division, default the province)."""
    rules.require_manager(principal, detail=MANAGERS_ONLY)
    organiser = data.organiser_division
    if organiser is None:
        organiser = rules.home_division(principal)
    try:
        organiser = rules.normalise_division(organiser)
    except ValueError as exc:
        raise ValidationFailedError("invalid_programme", str(exc), {"organiser_division": [str(exc)]}) from None
    if not rules.may_manage_division(principal, organiser):
        raise PermissionDeniedError("outside_your_area", "A programme is organised by your own division.")
    doc = {
        "name": data.name.strip(),
        "category": data.category,
        "tier": data.tier,
        "organiser_division": organiser,
        "description": data.description,
        "created_at": ctx.now(),
        "created_by": {"subject": principal.subject, "role": principal.role},
    }
    return await WorkforceRepository(ctx.db).insert_programme(doc)


async def get_programme(*, ctx: Context, principal: Principal, programme_id: str) -> Programme:
    """One programme (programmes are open to every staff member)."""
    rules.require_staff(principal, detail=STAFF_ONLY)
    return await WorkforceRepository(ctx.db).get_programme(programme_id)


async def list_programmes(
    *,
    ctx: Context,
    principal: Principal,
    category: str | None = None,
    tier: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> Page[Programme]:
    """Programmes, filtered by category and tier."""
    rules.require_staff(principal, detail=STAFF_ONLY)
    query = {k: v for k, v in {"category": category, "tier": tier}.items() if v is not None}
    return await WorkforceRepository(ctx.db).list_programmes(query, limit=limit, cursor=cursor, now=ctx.now())


async def create_session(*, ctx: Context, principal: Principal, programme_id: str, data: SessionInput) -> Session:
    """Add a session (dates, place, hours, trainer) to a programme the caller's division organises."""
    repo = WorkforceRepository(ctx.db)
    programme = await repo.get_programme(programme_id)
    _require_organiser(principal, programme)
    starts, ends = data.starts_on, data.ends_on
    if ends < starts:
        raise ValidationFailedError(
            "invalid_session", "The session ends before it starts.", {"ends_on": ["Must not be before starts_on."]}
        )
    doc = {
        "programme_id": programme.id,
        "category": programme.category,
        "tier": programme.tier,
        "organiser_division": programme.organiser_division,
        "starts_on": starts.isoformat(),
        "ends_on": ends.isoformat(),
        "place": data.place.strip(),
        "hours": float(data.hours),
        "trainer": data.trainer.strip(),
        "created_at": ctx.now(),
    }
    return await repo.insert_session(doc)


async def list_sessions(*, ctx: Context, principal: Principal, programme_id: str) -> list[Session]:
    """The sessions of a programme, by start date."""
    rules.require_staff(principal, detail=STAFF_ONLY)
    repo = WorkforceRepository(ctx.db)
    await repo.get_programme(programme_id)
    return await repo.sessions_of(programme_id)


# ---------------------------------------------------------------- enrolment, attendance, completion


def _check_record_fields(fields: dict[str, Any], session: Session, today: date) -> None:
    row = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in fields.items()}
    clean, problems = checks.check_record_row(row, ends_on=session.ends_on, today=today)
    if problems:
        errors: dict[str, list[str]] = {}
        for f, m in problems:
            errors.setdefault(f, []).append(m)
        raise ValidationFailedError("invalid_training_record", "The training record is not valid; see errors.", errors)
    fields.clear()
    fields.update(clean)


async def enrol_person(*, ctx: Context, principal: Principal, session_id: str, data: Enrolment) -> TrainingRecord:
    """Enrol a person the caller may see in a session (and record attendance or completion at once if given)."""
    rules.require_manager(principal, detail=MANAGERS_ONLY)
    repo = WorkforceRepository(ctx.db)
    session = await repo.get_session(session_id)
    person = await load_visible(ctx, principal, data.person_id)
    if not rules.may_manage_division(principal, person.division):
        raise PermissionDeniedError("outside_your_area", "You may enrol people of your own division.")
    if not _occupation_fits(session.category, person.occupation):
        raise ValidationFailedError(
            "wrong_occupation",
            "Elderly-care training is for elderly-care workers, the other categories for social workers.",
            {"person_id": ["The person's occupation does not fit the programme's category."]},
        )
    if person.status == "left":
        raise ValidationFailedError(
            "person_has_left", "The person has left; they cannot be enrolled.", {"person_id": ["Has left."]}
        )
    fields = {"status": "enrolled", **given(data.record)}
    _check_record_fields(fields, session, local_date(ctx.now()))
    programme = await repo.get_programme(session.programme_id)
    doc = record_document(
        person={"id": person.id, "name": person.name, "division": person.division},
        session=session,
        programme_name=programme.name,
        fields=fields,
        now=ctx.now(),
    )
    return await repo.insert_record(doc)


async def update_record(*, ctx: Context, principal: Principal, record_id: str, changes: RecordFields) -> TrainingRecord:
    """Record attendance or completion of one enrolment (the organising division)."""
    given_fields = given(changes)
    repo = WorkforceRepository(ctx.db)
    record = await repo.get_record(record_id)
    session = await repo.get_session(record.session_id)
    _require_organiser(principal, session)
    fields = {
        "status": record.status,
        "attended_hours": record.attended_hours or None,
        "certificate_no": record.certificate_no,
        **(
            {"completed_on": record.completed_on}
            if record.completed_on and given_fields.get("status", record.status) == "completed"
            else {}
        ),
        **given_fields,
    }
    _check_record_fields(fields, session, local_date(ctx.now()))
    fields.setdefault("completed_on", None)
    fields.setdefault("certificate_no", None)
    fields["attended_hours"] = float(fields.get("attended_hours") or 0.0)
    return await repo.update_record(record.id, record.version, {**fields, "updated_at": ctx.now()})


async def import_records(
    *, ctx: Context, principal: Principal, session_id: str, body: bytes, content_type: str, dry_run: bool
) -> ImportReport:
    """A session's sign-in and results sheet (CSV): enrol, record attendance and completion; all rows or none.

    Each row names a person on the register by ID number; a person already enrolled in the
    session has their record changed, anyone else is enrolled.
    """
    repo = WorkforceRepository(ctx.db)
    session = await repo.get_session(session_id)
    _require_organiser(principal, session)
    if content_type != "text/csv":
        raise UnsupportedMediaTypeError("unsupported_media_type", "Send the training records as text/csv.")
    text, encoding = decode_text(body)
    rows = csv_rows(text, required=RECORD_CSV_REQUIRED, optional=RECORD_CSV_OPTIONAL, what="training records")
    now = ctx.now()
    today = local_date(now)
    key = ctx.settings.data_key_bytes
    errors: list[RowError] = []
    checked: list[tuple[int, dict[str, Any], str]] = []
    for line, row in rows:
        if "__error__" in row:
            errors.append(RowError(line, "_row", row["__error__"]))
            continue
        problems: list[tuple[str, str]] = []
        number = None
        try:
            number = pii.validate_id_card(str(row.get("id_card") or ""), today=today)
        except ValidationFailedError as exc:
            problems += [("id_card", m) for ms in exc.errors.values() for m in ms]
        fields, more = checks.check_record_row(row, ends_on=session.ends_on, today=today)
        problems += more
        errors += [RowError(line, f, m) for f, m in problems]
        if not problems and number:
            checked.append((line, fields, pii.lookup_hash(key, number)))
    people = await repo.people_by_hash(h for _, _, h in checked)
    enrolled = await repo.records_of_session(session.id, [p.id for p in people.values()])
    programme = await repo.get_programme(session.programme_id)
    seen: dict[str, int] = {}
    inserts: list[dict[str, Any]] = []
    updates: list[tuple[str, int, dict[str, Any]]] = []
    for line, fields, h in checked:
        person = people.get(h)
        if person is None:
            errors.append(RowError(line, "id_card", "Nobody with this ID number is on the register."))
            continue
        if h in seen:
            errors.append(RowError(line, "id_card", f"The same person is on line {seen[h]}."))
            continue
        seen[h] = line
        if not _occupation_fits(session.category, person.occupation):
            errors.append(RowError(line, "id_card", "The person's occupation does not fit the programme's category."))
            continue
        current = enrolled.get(person.id)
        if current is None:
            if person.status == "left":
                errors.append(RowError(line, "id_card", "The person has left; they cannot be enrolled."))
                continue
            inserts.append(
                record_document(
                    person={"id": person.id, "name": person.name, "division": person.division},
                    session=session,
                    programme_name=programme.name,
                    fields=fields,
                    now=now,
                )
            )
            continue
        change = {
            "status": fields["status"],
            "attended_hours": float(fields.get("attended_hours") or 0.0),
            "completed_on": fields.get("completed_on"),
            "certificate_no": fields.get("certificate_no", current.certificate_no),
        }
        if any(getattr(current, k) != v for k, v in change.items()):
            updates.append((current.id, current.version, {**change, "updated_at": now}))
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
    await repo.apply_records(inserts, updates)
    return dataclasses.replace(report, written=True)


# ---------------------------------------------------------------- reading records


async def person_training(*, ctx: Context, principal: Principal, person_id: str) -> list[TrainingRecord]:
    """A person's training record: every enrolment, newest first."""
    person = await load_visible(ctx, principal, person_id)
    page = await WorkforceRepository(ctx.db).list_records(
        RecordFilter(person_id=person.id), limit=10_000, cursor=None, now=ctx.now()
    )
    return sorted(page.items, key=lambda r: r.created_at, reverse=True)


async def list_records(
    *,
    ctx: Context,
    principal: Principal,
    division: str | None = None,
    category: str | None = None,
    status: str | None = None,
    completed_from: date | None = None,
    completed_to: date | None = None,
    session: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> Page[TrainingRecord]:
    """Training records of people the caller may see (by where they worked when enrolled), filtered."""
    scope = read_scope(principal)
    if scope.station_id is not None:
        raise PermissionDeniedError(
            "workforce_managers_only", "Training records are read by supervisors and administrators."
        )
    prefix: str | None = None
    if division:
        prefix = rules.prefix_of(division)
        if principal.role == "supervisor" and not rules.may_see_division(principal, prefix):
            raise PermissionDeniedError("outside_your_area", "That division is outside yours.")
    wanted = RecordFilter(
        scope=scope,
        division_prefix=prefix,
        category=category,
        status=status,
        session_id=session,
        completed_from=completed_from,
        completed_to=completed_to,
    )
    return await WorkforceRepository(ctx.db).list_records(wanted, limit=limit, cursor=cursor, now=ctx.now())
