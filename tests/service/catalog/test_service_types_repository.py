"""Service-type versions: immutable, unique per (code, version), the highest current one wins."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from service.catalog.models import ServiceType
from service.catalog.repository import ServiceTypesRepository
from service.catalog.seed import SEED_SERVICES
from service.catalog.service import seed_catalog
from service.common.context import Context
from service.common.errors import ConflictError, NotFoundError

CODE = "elderly_home_visit"


async def test_seeding_inserts_each_code_once_and_lists_current_versions_by_code(ctx: Context) -> None:
    await seed_catalog(ctx)
    repo = ServiceTypesRepository(ctx.db)
    current = await repo.list_current()
    assert [s.code for s in current] == sorted({s.code for s in SEED_SERVICES})
    assert all(isinstance(s, ServiceType) and s.version == 1 for s in current)
    assert await repo.insert_missing(current) == 0  # every code exists already
    assert await repo.col.count_documents({}) == len(current)
    one = current[0].scenario
    assert {s.code for s in await repo.list_current(one)} == {s.code for s in current if s.scenario == one}
    with pytest.raises(NotFoundError) as exc:
        await repo.get("no_such_service")
    assert exc.value.code == "service_not_found"


async def test_a_new_version_becomes_current_and_a_taken_version_conflicts(ctx: Context) -> None:
    await seed_catalog(ctx)
    repo = ServiceTypesRepository(ctx.db)
    v1 = await repo.get(CODE)
    await repo.insert_version(dataclasses.replace(v1, version=2, name_zh=v1.name_zh + "（新）"))
    with pytest.raises(ConflictError) as exc:
        await repo.insert_version(dataclasses.replace(v1, version=2))  # a concurrent edit of the same version
    assert exc.value.code == "service_version_conflict"
    assert (await repo.get(CODE)).version == 2
    old = await repo.get(CODE, 1)
    assert old == v1
    assert await repo.col.count_documents({"code": CODE, "current": True}) == 1
    assert [s.version for s in await repo.list_current() if s.code == CODE] == [2]
    retired_at = datetime(2026, 11, 28, tzinfo=UTC)
    assert not await repo.set_retired(CODE, 1, retired_at)  # no longer current
    assert await repo.set_retired(CODE, 2, retired_at)
    assert (await repo.get(CODE)).retired is True


async def test_a_version_stored_by_an_older_release_reports_the_fields_it_lacks(ctx: Context) -> None:
    await seed_catalog(ctx)
    repo = ServiceTypesRepository(ctx.db)
    current, absent = await repo.get_with_absent_keys(CODE)
    assert current == await repo.get(CODE) and absent == frozenset()
    await repo.col.update_many({"code": CODE}, {"$unset": {"icon": "", "clock": ""}})
    old, absent = await repo.get_with_absent_keys(CODE)
    assert absent == {"icon", "clock"} and old.icon == "" and old.clock == "working"
