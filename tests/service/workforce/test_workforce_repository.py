"""The workforce register: entries change only at the version read, with their history, all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.common.context import Context
from service.common.errors import ConflictError, NotFoundError
from service.workforce.models import PeopleFilter, Person, RecordFilter
from service.workforce.repository.people import history_document, person_changes
from service.workforce.repository.store import WorkforceRepository
from tests.factories import (
    TOWNSHIP,
    id_card,
    import_register,
    import_training_records,
    make_station,
    make_training_session,
    make_wechat_resident,
    worker_row,
)
from tests.helpers_paging import LIMITS, in_pages, made_over_time, read_pages

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
ACTOR = {"subject": "system", "role": "system"}


async def register(ctx: Context, n: int) -> list[Person]:
    """``n`` people of the township's station put on the register by a CSV import, in registration order."""
    await make_station(ctx)
    await import_register(ctx, [worker_row(seq) for seq in range(1, n + 1)])
    page = await WorkforceRepository(ctx.db).list_people(PeopleFilter(), limit=100, cursor=None, now=ctx.now())
    return list(reversed(page.items))  # the list is newest first


async def test_the_register_pages_newest_first_and_missing_entries_are_not_found(ctx: Context) -> None:
    people = await register(ctx, 3)
    assert [p.name for p in people] == ["社工1", "社工2", "社工3"]
    repo = WorkforceRepository(ctx.db)
    first = await repo.list_people(PeopleFilter(), limit=2, cursor=None, now=ctx.now())
    rest = await repo.list_people(PeopleFilter(), limit=2, cursor=first.next_cursor, now=ctx.now())
    assert [p.id for p in first.items + rest.items] == [p.id for p in reversed(people)] and rest.next_cursor is None
    assert await repo.get_person(people[0].id) == people[0]
    for missing in ("not-an-id", (await make_wechat_resident(ctx)).id):
        with pytest.raises(NotFoundError) as exc:
            await repo.get_person(missing)
        assert exc.value.code == "person_not_found"


async def test_an_update_at_a_stale_version_conflicts_and_leaves_no_history(ctx: Context) -> None:
    [person] = await register(ctx, 1)
    repo = WorkforceRepository(ctx.db)
    before = await repo.person_history(person.id)
    changes = person_changes({"phone": "13700000001"})

    def entry() -> dict[str, object]:
        return history_document(person.id, action="update", actor=ACTOR, changes={"phone": "13700000001"}, at=T0)

    updated = await repo.update_person(person.id, person.version, changes, entry())
    assert updated.phone == "13700000001" and updated.version == person.version + 1
    with pytest.raises(ConflictError) as exc:
        await repo.update_person(person.id, person.version, person_changes({"phone": "13700000002"}), entry())
    assert exc.value.code == "person_changed"
    assert (await repo.get_person(person.id)).phone == "13700000001"
    assert len(await repo.person_history(person.id)) == len(before) + 1


async def test_the_register_programmes_and_training_records_page_newest_first_across_windows(ctx: Context) -> None:
    await make_station(ctx)

    async def make(i: int) -> tuple[str, str, str]:
        today = ctx.now().date()
        report = await import_register(ctx, [worker_row(i + 1, start_date=(today - timedelta(days=400)).isoformat())])
        assert not report.errors, report
        session = await make_training_session(
            ctx, starts_on=(today - timedelta(days=3)).isoformat(), ends_on=(today - timedelta(days=1)).isoformat()
        )
        report = await import_training_records(
            ctx, session.id, [{"id_card": id_card("19900101", i + 1, region="341002"), "status": "completed"}]
        )
        assert report.written and not report.errors, report
        repo = WorkforceRepository(ctx.db)
        person = (await repo.list_people(PeopleFilter(), limit=1, cursor=None, now=ctx.now())).items[0]
        wanted = RecordFilter(person_id=person.id)
        record = (await repo.list_records(wanted, limit=1, cursor=None, now=ctx.now())).items[0]
        return person.id, session.programme_id, record.id

    made = list(reversed(await made_over_time(ctx, make)))
    repo = WorkforceRepository(ctx.db)
    county = TOWNSHIP[:6]
    lists = (
        (repo.list_people, PeopleFilter(division_prefix=county), [p for p, _, _ in made]),
        (repo.list_people, PeopleFilter(), [p for p, _, _ in made]),
        (repo.list_programmes, {}, [g for _, g, _ in made]),
        (repo.list_records, RecordFilter(division_prefix=county), [r for _, _, r in made]),
    )
    for list_page, query, ids in lists:
        for limit in LIMITS:

            async def read(
                cursor: str | None, list_page: Any = list_page, query: Any = query, limit: int = limit
            ) -> Any:
                page = await list_page(query, limit=limit, cursor=cursor, now=ctx.now())
                return [x.id for x in page.items], page.next_cursor

            assert await read_pages(read) == in_pages(ids, limit), (list_page, query, limit)
