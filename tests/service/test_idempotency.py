"""Idempotency-Key semantics over the real database, with a real creating operation."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from service.common.context import Context
from service.common.errors import BadRequestError, ConflictError, NotFoundError, ValidationFailedError
from service.idempotency.repository import IdempotencyRepository
from service.idempotency.service import run_idempotent
from service.identity.accounts import Resident
from tests.factories import make_case, make_station, make_wechat_resident, principal_of


class Filings:
    """The creating operation that Idempotency-Key guards in production: a resident filing a case.

    Answers as the handler does, with a JSON-ready summary of the new case.
    """

    def __init__(self, ctx: Context, who: Resident) -> None:
        self.ctx = ctx
        self.who = who

    async def create(self, description: str) -> tuple[int, dict[str, Any]]:
        case = await make_case(self.ctx, self.who, description=description)
        return 201, {"id": case["id"], "number": case["number"], "name": case["description"]}

    async def count(self) -> int:
        return await self.ctx.db["cases"].count_documents({})


@pytest.fixture
async def alice(ctx: Context) -> Resident:
    await make_station(ctx)
    return await make_wechat_resident(ctx)


@pytest.fixture
def things(ctx: Context, alice: Resident) -> Filings:
    return Filings(ctx, alice)


async def test_fifty_concurrent_calls_with_one_key_create_one_thing(
    ctx: Context, alice: Resident, things: Filings
) -> None:
    results = await asyncio.gather(
        *(
            run_idempotent(
                ctx=ctx,
                principal=principal_of(alice),
                key="k-1",
                fingerprint="f1",
                operation=lambda: things.create("a"),
            )
            for _ in range(50)
        )
    )
    assert await things.count() == 1
    assert len({r[1]["id"] for r in results}) == 1
    assert all(r[0] == 201 for r in results)
    assert sorted(r[2] for r in results) == [False] + [True] * 49


async def test_same_key_and_body_replays_the_first_response(ctx: Context, alice: Resident, things: Filings) -> None:
    first = await run_idempotent(
        ctx=ctx, principal=principal_of(alice), key="k", fingerprint="f", operation=lambda: things.create("a")
    )
    again = await run_idempotent(
        ctx=ctx, principal=principal_of(alice), key="k", fingerprint="f", operation=lambda: things.create("b")
    )
    assert first[:2] == again[:2]
    assert (first[2], again[2]) == (False, True)
    assert await things.count() == 1


async def test_same_key_with_another_body_is_refused(ctx: Context, alice: Resident, things: Filings) -> None:
    await run_idempotent(
        ctx=ctx, principal=principal_of(alice), key="k", fingerprint="f", operation=lambda: things.create("a")
    )
    with pytest.raises(ValidationFailedError) as exc:
        await run_idempotent(
            ctx=ctx, principal=principal_of(alice), key="k", fingerprint="g", operation=lambda: things.create("b")
        )
    assert exc.value.code == "idempotency_key_reused"
    assert await things.count() == 1


async def test_keys_are_scoped_to_the_caller(ctx: Context, alice: Resident, things: Filings) -> None:
    bob = await make_wechat_resident(ctx)
    bobs = Filings(ctx, bob)
    a = await run_idempotent(
        ctx=ctx, principal=principal_of(alice), key="k", fingerprint="f", operation=lambda: things.create("a")
    )
    b = await run_idempotent(
        ctx=ctx, principal=principal_of(bob), key="k", fingerprint="f", operation=lambda: bobs.create("b")
    )
    assert a[1]["id"] != b[1]["id"]
    assert not b[2]
    assert await things.count() == 2


async def test_without_a_key_every_call_runs(ctx: Context, alice: Resident, things: Filings) -> None:
    for _ in range(2):
        await run_idempotent(
            ctx=ctx, principal=principal_of(alice), key=None, fingerprint="f", operation=lambda: things.create("a")
        )
    assert await things.count() == 2


async def test_a_failed_operation_releases_the_key(ctx: Context, alice: Resident, things: Filings) -> None:

    async def fail() -> tuple[int, dict[str, Any]]:
        raise NotFoundError("service_not_found", "No such service.")

    with pytest.raises(NotFoundError):
        await run_idempotent(ctx=ctx, principal=principal_of(alice), key="k", fingerprint="f", operation=fail)
    status, _body, replayed = await run_idempotent(
        ctx=ctx, principal=principal_of(alice), key="k", fingerprint="f", operation=lambda: things.create("a")
    )
    assert (status, replayed) == (201, False)
    assert await things.count() == 1


async def test_a_slow_first_call_makes_a_duplicate_wait_then_409(
    ctx: Context, alice: Resident, things: Filings
) -> None:
    release = asyncio.Event()

    async def slow() -> tuple[int, dict[str, Any]]:
        await release.wait()
        return await things.create("slow")

    first = asyncio.create_task(
        run_idempotent(ctx=ctx, principal=principal_of(alice), key="k", fingerprint="f", operation=slow)
    )
    await asyncio.sleep(0.1)
    with pytest.raises(ConflictError) as exc:
        await run_idempotent(
            ctx=ctx,
            principal=principal_of(alice),
            key="k",
            fingerprint="f",
            operation=lambda: things.create("x"),
            wait_seconds=0.2,
        )
    assert exc.value.code == "idempotency_in_progress"
    release.set()
    _status, body, _ = await first
    assert body["name"] == "slow"
    assert await things.count() == 1


async def test_an_abandoned_pending_key_is_taken_over_after_its_lease(
    ctx: Context, alice: Resident, things: Filings
) -> None:
    now = ctx.now()
    await IdempotencyRepository(ctx.db).claim(
        subject=alice.id,
        key="k",
        fingerprint="f",
        owner="dead-process",
        now=now - timedelta(minutes=5),
        lease_until=now - timedelta(minutes=4),
        expires_at=now + timedelta(hours=23),
    )
    status, _body, replayed = await run_idempotent(
        ctx=ctx,
        principal=principal_of(alice),
        key="k",
        fingerprint="f",
        operation=lambda: things.create("a"),
        wait_seconds=1,
    )
    assert (status, replayed) == (201, False)
    assert await things.count() == 1


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "tab\tkey", "键"])
async def test_malformed_keys_are_refused(ctx: Context, alice: Resident, things: Filings, key: str) -> None:
    with pytest.raises(BadRequestError) as exc:
        await run_idempotent(
            ctx=ctx, principal=principal_of(alice), key=key, fingerprint="f", operation=lambda: things.create("a")
        )
    assert exc.value.code == "invalid_idempotency_key"
    assert await things.count() == 0


async def test_records_expire_after_a_day_by_ttl_index(ctx: Context, alice: Resident, things: Filings) -> None:
    await run_idempotent(
        ctx=ctx, principal=principal_of(alice), key="k", fingerprint="f", operation=lambda: things.create("a")
    )
    info = await ctx.db["idempotency_keys"].index_information()
    assert info["expires_at_ttl"]["expireAfterSeconds"] == 0
    doc = await ctx.db["idempotency_keys"].find_one({})
    assert doc is not None
    assert doc["expires_at"] - doc["created_at"] == timedelta(hours=24)
