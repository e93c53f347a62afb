"""Service-type versions: immutable, unique per (code, version), the highest current one wins."""

from __future__ import annotations

import pytest

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
    assert [d["code"] for d in current] == sorted({s.code for s in SEED_SERVICES})
    assert all(d["version"] == 1 and "_id" not in d for d in current)
    again = [{**d, "current": None} for d in current]
    assert await repo.insert_missing(again) == 0  # every code exists already
    assert await repo.col.count_documents({}) == len(current)
    one = current[0]["scenario"]
    assert {d["code"] for d in await repo.list_current(one)} == {d["code"] for d in current if d["scenario"] == one}
    with pytest.raises(NotFoundError) as exc:
        await repo.get("no_such_service")
    assert exc.value.code == "service_not_found"


async def test_a_new_version_becomes_current_and_a_taken_version_conflicts(ctx: Context) -> None:
    await seed_catalog(ctx)
    repo = ServiceTypesRepository(ctx.db)
    v1 = await repo.get(CODE)
    await repo.insert_version({**v1, "version": 2, "name_zh": v1["name_zh"] + "（新）"})
    with pytest.raises(ConflictError) as exc:
        await repo.insert_version({**v1, "version": 2})  # a concurrent edit of the same version
    assert exc.value.code == "service_version_conflict"
    assert (await repo.get(CODE))["version"] == 2
    old = await repo.get(CODE, 1)
    assert old["current"] is False and old["name_zh"] == v1["name_zh"]
    assert [d["version"] for d in await repo.list_current() if d["code"] == CODE] == [2]
    assert not await repo.set_retired(CODE, 1, "2026-11-28")  # no longer current
    assert await repo.set_retired(CODE, 2, "2026-11-28")
    assert (await repo.get(CODE))["retired"] is True
