"""The workforce register: entries change only at the version read, with their history, all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.common.context import Context
from service.common.errors import ConflictError, NotFoundError
from service.workforce.models import Person
from service.workforce.repository.people import history_document, person_changes
from service.workforce.repository.store import WorkforceRepository
from tests.factories import import_register, make_station, make_wechat_resident, worker_row

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
ACTOR = {"subject": "system", "role": "system"}


async def register(ctx: Context, n: int) -> list[Person]:
    """``n`` people of the township's station put on the register by a CSV import, in registration order."""
    await make_station(ctx)
    await import_register(ctx, [worker_row(seq) for seq in range(1, n + 1)])
    page = await WorkforceRepository(ctx.db).list_people({}, limit=100, cursor=None)
    return page.items


async def test_the_register_pages_in_registration_order_and_missing_entries_are_not_found(ctx: Context) -> None:
    people = await register(ctx, 3)
    assert [p.name for p in people] == ["社工1", "社工2", "社工3"]
    repo = WorkforceRepository(ctx.db)
    first = await repo.list_people({}, limit=2, cursor=None)
    rest = await repo.list_people({}, limit=2, cursor=first.next_cursor)
    assert [p.id for p in first.items + rest.items] == [p.id for p in people] and rest.next_cursor is None
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
