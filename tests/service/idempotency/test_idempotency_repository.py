"""Idempotency records: the first claim of (caller, key) wins; only the holder completes or releases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.common.context import Context
from service.idempotency.repository import DONE, PENDING, IdempotencyRecord, IdempotencyRepository
from tests.factories import make_client, make_wechat_resident

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
LEASE = T0 + timedelta(seconds=30)
EXPIRES = T0 + timedelta(hours=24)


async def claim(repo: IdempotencyRepository, subject: str, key: str, owner: str, fingerprint: str = "fp") -> bool:
    return await repo.claim(
        subject=subject, key=key, fingerprint=fingerprint, owner=owner, now=T0, lease_until=LEASE, expires_at=EXPIRES
    )


async def test_the_first_claim_wins_per_caller_and_key(ctx: Context) -> None:
    caller = (await make_client(ctx)).client.client_id
    other = (await make_wechat_resident(ctx)).id
    repo = IdempotencyRepository(ctx.db)
    assert await claim(repo, caller, "order-1", "a")
    assert not await claim(repo, caller, "order-1", "b", fingerprint="other")  # the duplicate loses
    assert await claim(repo, other, "order-1", "c")  # the same key of another caller is its own
    assert await claim(repo, caller, "order-2", "d")
    record = await repo.get(caller, "order-1")
    assert record == IdempotencyRecord(
        subject=caller, key="order-1", fingerprint="fp", state=PENDING, owner="a", lease_until=LEASE
    )
    assert await repo.get(caller, "order-3") is None


async def test_only_the_holder_completes_and_the_response_is_kept(ctx: Context) -> None:
    caller = (await make_client(ctx)).client.client_id
    repo = IdempotencyRepository(ctx.db)
    assert await claim(repo, caller, "k", "holder")
    await repo.complete(subject=caller, key="k", owner="stranger", status=201, body='{"id": "x"}')
    assert (await repo.get(caller, "k")).state == PENDING  # type: ignore[union-attr]
    await repo.complete(subject=caller, key="k", owner="holder", status=201, body='{"编号": "x"}')
    done = await repo.get(caller, "k")
    assert done is not None and (done.state, done.status, done.body) == (DONE, 201, '{"编号": "x"}')
    await repo.release(subject=caller, key="k", owner="holder")  # a finished record is not released
    assert await repo.get(caller, "k") == done
    assert not await claim(repo, caller, "k", "late")


async def test_a_lapsed_lease_is_taken_over_by_exactly_one_and_release_frees_the_key(ctx: Context) -> None:
    caller = (await make_client(ctx)).client.client_id
    repo = IdempotencyRepository(ctx.db)
    assert await claim(repo, caller, "k", "first")
    seen = await repo.get(caller, "k")
    assert seen is not None
    later = LEASE + timedelta(seconds=30)
    assert await repo.take_over(seen, owner="second", lease_until=later)
    assert not await repo.take_over(seen, owner="third", lease_until=later)  # it saw the old holder
    await repo.release(subject=caller, key="k", owner="first")  # the old holder no longer holds it
    now_held = await repo.get(caller, "k")
    assert now_held is not None and (now_held.owner, now_held.lease_until) == ("second", later)
    await repo.release(subject=caller, key="k", owner="second")
    assert await repo.get(caller, "k") is None
    assert await claim(repo, caller, "k", "fourth")
