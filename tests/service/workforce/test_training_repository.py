"""Training: programmes and sessions read back as added, one record per person and session (even
from two sheets imported at once), a record changed only at the version read, a sheet written all
or nothing, pages that continue where they stopped.

Programmes, sessions, people and records are made by the workforce service (the register's and
the training sheet's CSV imports); the repository is then read and driven directly.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest

from service.common.context import Context
from service.common.errors import ConflictError, NotFoundError
from service.common.ids import is_id
from service.common.models import SYSTEM, utcnow
from service.workforce import training
from service.workforce.inputs import Enrolment, ProgrammeInput, SessionInput
from service.workforce.models import PeopleFilter, Person, RecordFilter, Session, TrainingRecord
from service.workforce.repository.store import WorkforceRepository
from service.workforce.repository.training import record_document
from tests.factories import (
    id_card,
    import_register,
    import_training_records,
    make_station,
    make_training_session,
    worker_row,
)


async def register(ctx: Context, n: int) -> list[Person]:
    """``n`` social workers of the township's station put on the register by a CSV import, in order."""
    await make_station(ctx)
    await import_register(ctx, [worker_row(seq) for seq in range(1, n + 1)])
    return (await WorkforceRepository(ctx.db).list_people(PeopleFilter(), limit=100, cursor=None, now=ctx.now())).items


def sheet_row(seq: int, **fields: Any) -> dict[str, Any]:
    """A training sheet row for the ``seq``-th person of :func:`register` (enrolled unless told)."""
    return {"id_card": id_card("19900101", seq, region="341002"), "status": "enrolled", **fields}


async def enrol(ctx: Context, session: Session, person: Person) -> TrainingRecord:
    """An administrator enrols a person in a session."""
    return await training.enrol_person(
        ctx=ctx, principal=SYSTEM, session_id=session.id, data=Enrolment(person_id=person.id)
    )


def hold_clock(ctx: Context) -> None:
    """Hold the clock at a whole second, so times read back equal the ones written."""
    now = utcnow().replace(microsecond=0)
    ctx.clock = lambda: now


async def test_programmes_and_sessions_read_back_as_added_and_missing_ones_are_not_found(ctx: Context) -> None:
    hold_clock(ctx)
    session = await make_training_session(ctx, category="manager", tier="senior")
    repo = WorkforceRepository(ctx.db)
    assert await repo.get_session(session.id) == session and is_id(session.id)
    programme = await repo.get_programme(session.programme_id)
    assert (programme.category, programme.tier, programme.organiser_division) == ("manager", "senior", "340000")
    assert programme.created_at == ctx.now() and programme.created_at.utcoffset() is not None
    assert (session.starts_on, session.ends_on, session.hours) == ("2025-04-01", "2025-04-03", 24.0)
    for call, code in (
        (repo.get_programme(session.id), "programme_not_found"),
        (repo.get_programme("not-an-id"), "programme_not_found"),
        (repo.get_session(programme.id), "session_not_found"),
        (repo.get_session("not-an-id"), "session_not_found"),
        (repo.get_record(session.id), "record_not_found"),
        (repo.get_record("not-an-id"), "record_not_found"),
    ):
        with pytest.raises(NotFoundError) as exc:
            await call
        assert exc.value.code == code


async def test_sessions_come_by_start_date_and_programmes_page_newest_first_with_filters(ctx: Context) -> None:
    programme = await training.create_programme(
        ctx=ctx, principal=SYSTEM, data=ProgrammeInput(name="社工实务培训", category="certified", tier="beginner")
    )
    starts = ["2025-09-01", "2025-03-01", "2025-06-01"]
    made = [
        await training.create_session(
            ctx=ctx,
            principal=SYSTEM,
            programme_id=programme.id,
            data=SessionInput(
                starts_on=date.fromisoformat(day),
                ends_on=date.fromisoformat(day),
                place="合肥",
                hours=8,
                trainer="李老师",
            ),
        )
        for day in starts
    ]
    repo = WorkforceRepository(ctx.db)
    assert [s.starts_on for s in await repo.sessions_of(programme.id)] == sorted(starts)
    assert {s.id for s in await repo.sessions_of(programme.id)} == {s.id for s in made}
    assert await repo.sessions_of(made[0].id) == []
    others = [(await make_training_session(ctx, category=c)).programme_id for c in ("manager", "certified")]
    everything = [others[1], others[0], programme.id]  # newest first
    first = await repo.list_programmes({}, limit=2, cursor=None, now=ctx.now())
    rest = await repo.list_programmes({}, limit=2, cursor=first.next_cursor, now=ctx.now())
    assert [p.id for p in first.items] == everything[:2] and first.next_cursor
    assert [p.id for p in rest.items] == everything[2:] and rest.next_cursor is None
    certified = await repo.list_programmes({"category": "certified"}, limit=1, cursor=None, now=ctx.now())
    more = await repo.list_programmes({"category": "certified"}, limit=1, cursor=certified.next_cursor, now=ctx.now())
    assert [p.id for p in certified.items + more.items] == [others[1], programme.id] and more.next_cursor is None


async def test_a_person_is_enrolled_once_and_a_record_changes_only_at_the_version_read(ctx: Context) -> None:
    hold_clock(ctx)
    [person] = await register(ctx, 1)
    session = await make_training_session(ctx)
    repo = WorkforceRepository(ctx.db)
    record = await enrol(ctx, session, person)
    assert await repo.get_record(record.id) == record and is_id(record.id)
    assert (record.person_id, record.session_id, record.status, record.version) == (
        person.id,
        session.id,
        "enrolled",
        1,
    )
    with pytest.raises(ConflictError) as exc:
        await enrol(ctx, session, person)
    assert exc.value.code == "already_enrolled"
    counted = await repo.register_version()
    tries = (8.0, 12.0, 16.0)
    outcomes = await asyncio.gather(
        *(repo.update_record(record.id, 1, {"status": "attended", "attended_hours": h}) for h in tries),
        return_exceptions=True,
    )
    won = [o for o in outcomes if isinstance(o, TrainingRecord)]
    lost = [o for o in outcomes if isinstance(o, ConflictError)]
    assert len(won) == 1 and [e.code for e in lost] == ["record_changed"] * 2
    stored = await repo.get_record(record.id)
    assert stored == won[0] and (stored.version, stored.status) == (2, "attended")
    assert await repo.register_version() == counted + 1  # only the write that happened counts
    with pytest.raises(ConflictError):
        await repo.update_record(record.id, 1, {"attended_hours": 1.0})
    assert await repo.get_record(record.id) == stored
    with pytest.raises(NotFoundError) as nf:
        await repo.update_record(person.id, 1, {"attended_hours": 1.0})
    assert nf.value.code == "record_not_found"
    assert {k: r.id for k, r in (await repo.records_of_session(session.id, [person.id, session.id])).items()} == {
        person.id: record.id
    }


async def test_a_sheet_is_written_all_or_nothing(ctx: Context) -> None:
    people = await register(ctx, 2)
    session = await make_training_session(ctx)
    repo = WorkforceRepository(ctx.db)
    record = await enrol(ctx, session, people[0])
    await repo.update_record(record.id, record.version, {"status": "attended", "attended_hours": 8.0})
    programme = await repo.get_programme(session.programme_id)
    newcomer = record_document(
        person={"id": people[1].id, "name": people[1].name, "division": people[1].division},
        session=session,
        programme_name=programme.name,
        fields={"status": "enrolled"},
        now=utcnow(),
    )
    with pytest.raises(ConflictError) as exc:  # the first person's record at the version read before the change
        await repo.apply_records([newcomer], [(record.id, record.version, {"status": "completed"})])
    assert exc.value.code == "record_changed"
    assert await repo.records_of_session(session.id, [people[1].id]) == {}  # the insert was undone
    assert (await repo.get_record(record.id)).status == "attended"
    await repo.apply_records([newcomer], [(record.id, record.version + 1, {"status": "not_completed"})])
    after = await repo.records_of_session(session.id, [p.id for p in people])
    assert after[people[0].id].status == "not_completed" and after[people[0].id].version == 3
    assert after[people[1].id].status == "enrolled"


async def test_two_sheets_imported_at_once_enrol_each_person_once(ctx: Context) -> None:
    people = await register(ctx, 3)
    session = await make_training_session(ctx)
    rows = [sheet_row(seq) for seq in range(1, 4)]

    async def upload() -> str:
        try:
            report = await import_training_records(ctx, session.id, rows)
        except ConflictError as exc:
            return exc.code
        return "written" if report.written else "unchanged"  # read after the other was written

    outcomes = await asyncio.gather(upload(), upload())
    assert outcomes.count("written") == 1 and set(outcomes) <= {"written", "already_enrolled", "unchanged"}
    repo = WorkforceRepository(ctx.db)
    records = await repo.records_of_session(session.id, [p.id for p in people])
    assert set(records) == {p.id for p in people}
    assert await repo.records.count_documents({"session_id": session.id}) == 3


async def test_records_page_newest_first_and_a_cursor_continues_where_it_stopped(ctx: Context) -> None:
    people = await register(ctx, 5)
    session = await make_training_session(ctx)
    other = await make_training_session(ctx, starts_on="2025-05-01", ends_on="2025-05-02")
    report = await import_training_records(ctx, session.id, [sheet_row(seq) for seq in range(1, 6)])
    assert report.written
    await enrol(ctx, other, people[0])
    repo = WorkforceRepository(ctx.db)
    query = RecordFilter(session_id=session.id)
    seen: list[str] = []
    cursor = None
    sizes = []
    while True:
        page = await repo.list_records(query, limit=2, cursor=cursor, now=ctx.now())
        seen += [r.id for r in page.items]
        sizes.append(len(page.items))
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sizes == [2, 2, 1]  # no page comes back short but the last
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 5  # newest first
    assert {r.person_id for r in (await repo.list_records(query, limit=10, cursor=None, now=ctx.now())).items} == {
        p.id for p in people
    }
    everyone = await repo.list_records(RecordFilter(), limit=10, cursor=None, now=ctx.now())
    assert len(everyone.items) == 6 and everyone.next_cursor is None
