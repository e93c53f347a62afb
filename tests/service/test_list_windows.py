"""The shared list windows: ids made at a time, the newest-first cursor, windows on a stored time, and
conditions applied beside an index range. Each is checked against one sorted query over real data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from service.common import paging
from service.common.context import Context
from service.common.errors import BadRequestError
from service.common.ids import id_at, id_time, is_id, new_id
from service.common.models import utcnow
from service.identity.repository.clients import ApiClientsRepository
from tests.factories import make_client
from tests.helpers_paging import made_over_time


def test_an_id_made_at_a_time_sorts_with_the_windows_of_that_time() -> None:
    now = utcnow().replace(microsecond=0)
    made = new_id(now)
    assert is_id(made) and id_time(made) == now
    assert id_at(now) <= made < id_at(now + timedelta(seconds=1))
    assert new_id(now) > made  # the same second: in the order made
    assert id_time("not-an-id") is None


def test_a_newest_first_cursor_is_told_apart_from_an_oldest_first_one() -> None:
    item = new_id()
    assert paging.decode_newest_cursor(paging.encode_newest_cursor(item)) == item
    assert paging.decode_newest_cursor(None) is None
    for old in (paging.encode_cursor(item), item, paging.encode_cursor("x", paging.NEWEST)):
        with pytest.raises(BadRequestError) as exc:
            paging.decode_newest_cursor(old)
        assert exc.value.code == "invalid_cursor"


def test_only_equalities_on_an_index_prefix_are_read_in_windows() -> None:
    assert paging.served_with_id_range({"station_id": "s"}, ("station_id",))
    assert paging.served_with_id_range({"station_id": "s", "active": True}, ("station_id", "active"))
    assert not paging.served_with_id_range({}, ("station_id",))
    assert not paging.served_with_id_range({"station_id": "s", "tier": "high"}, ("station_id",))
    assert not paging.served_with_id_range({"township": {"$regex": "^34"}}, ("township",))


async def test_windows_on_a_stored_time_page_like_one_sorted_query(ctx: Context) -> None:
    made = await made_over_time(ctx, lambda i: make_client(ctx))
    col = ApiClientsRepository(ctx.db).col
    expected = [d["_id"] async for d in col.find({}).sort([("created_at", -1), ("_id", -1)])]
    assert sorted(expected) == sorted(c.client.client_id for c in made)
    issued: list[dict[str, Any]] = []

    async def find(condition: dict[str, Any], n: int) -> list[dict[str, Any]]:
        issued.append(condition)
        return await col.find(condition).sort([("created_at", -1), ("_id", -1)]).limit(n).to_list()

    for want in (1, 3, 100):
        issued.clear()
        docs = await paging.newest_by_time(find, field="created_at", want=want, now=ctx.now())
        assert [d["_id"] for d in docs] == expected[:want]
        # Every query but the last reaches back no further than its window.
        assert all("$gte" in c["created_at"] for c in issued[:-1]), issued
        if want < len(expected):
            assert all(c for c in issued), issued
    ties = await paging.newest_by_time(
        find, field="created_at", want=100, now=ctx.now(), after=(docs[1]["created_at"], docs[1]["_id"])
    )
    assert [d["_id"] for d in ties] == expected[2:]
    assert await paging.newest_by_time(find, field="created_at", want=100, now=ctx.now(), windows=False) == docs


async def test_a_condition_applied_beside_the_range_reads_on_until_the_page_is_full() -> None:
    docs = [{"_id": f"{i:02d}", "hidden": i % 3 == 0} for i in range(30, 0, -1)]

    async def find(id_range: dict[str, Any], n: int) -> list[dict[str, Any]]:
        upper = id_range.get("$lt")
        return [d for d in docs if upper is None or d["_id"] < upper][:n]

    read = paging.skipping(find, lambda d: d["hidden"])
    shown = [d["_id"] for d in docs if not d["hidden"]]
    for n in (1, 2, 5, 100):
        assert [d["_id"] for d in await read({}, n)] == shown[:n]
