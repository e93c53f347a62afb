"""The identity repositories: staff, residents, clients, refresh tokens, revocations, rate windows.

Accounts are made through the factories (as ``create-staff``, the logins and the admin API make
them); tokens through the login service; the repositories are then read and driven directly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.common.context import Context
from service.common.errors import ConflictError, NotFoundError
from service.identity import tokens
from service.identity.accounts import ApiClient, RefreshTokenRecord, Resident, StaffMember
from service.identity.auth import hash_refresh_token, issue_token_pair, staff_principal
from service.identity.repository.clients import ApiClientsRepository
from service.identity.repository.rate_limits import SlidingWindowLog
from service.identity.repository.refresh_tokens import RefreshTokensRepository
from service.identity.repository.residents import ResidentsRepository
from service.identity.repository.revoked_tokens import RevokedTokensRepository
from service.identity.repository.staff import StaffRepository
from tests.factories import make_client, make_phone_resident, make_staff, make_station, make_wechat_resident
from tests.helpers_paging import LIMITS, in_pages, made_over_time, read_pages

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


async def test_staff_usernames_are_unique_and_missing_accounts_are_not_found(ctx: Context) -> None:
    ctx.clock = lambda: T0  # whole milliseconds, as the store keeps them
    worker = await make_staff(ctx, username="zhang-san")
    repo = StaffRepository(ctx.db)
    got = await repo.get(worker.id)
    assert isinstance(got, StaffMember) and got == worker
    with pytest.raises(ConflictError) as exc:
        await repo.insert(
            username="zhang-san",
            name="张三",
            role="admin",
            station_id=None,
            division_prefix=None,
            password_hash="x",
            now=T0,
        )
    assert exc.value.code == "username_taken"
    for missing in ("not-an-id", (await make_wechat_resident(ctx)).id):  # a malformed id and another kind's id
        with pytest.raises(NotFoundError) as nf:
            await repo.get(missing)
        assert nf.value.code == "staff_not_found"
    with pytest.raises(NotFoundError):
        await repo.update("not-an-id", {"name": "x"}, T0)
    assert await repo.credentials("nobody") is None
    creds = await repo.credentials("zhang-san")
    assert creds is not None and creds.staff.id == worker.id and creds.failed_logins == 0


async def test_staff_pages_newest_first_with_filters(ctx: Context) -> None:
    made = [await make_staff(ctx, role="admin") for _ in range(3)]
    workers = [await make_staff(ctx) for _ in range(2)]
    repo = StaffRepository(ctx.db)
    first = await repo.list(role=None, station_id=None, limit=2, cursor=None, now=ctx.now())
    assert [s.id for s in first.items] == [w.id for w in reversed(workers)] and first.next_cursor
    seen = [s.id for s in first.items]
    cursor: str | None = first.next_cursor
    while cursor:
        page = await repo.list(role=None, station_id=None, limit=2, cursor=cursor, now=ctx.now())
        seen += [s.id for s in page.items]
        cursor = page.next_cursor
    assert seen == [m.id for m in reversed(made + workers)]
    only = await repo.list(role="worker", station_id=workers[0].station_id, limit=10, cursor=None, now=ctx.now())
    assert [s.id for s in only.items] == [w.id for w in reversed(workers)] and only.next_cursor is None
    assert await repo.count_by_station([workers[0].station_id or "", "elsewhere"], ("worker",)) == {
        workers[0].station_id: 2
    }
    await repo.update(workers[0].id, {"active": False}, T0)
    assert [s.id for s in await repo.active_at_station(workers[0].station_id or "", ("worker",))] == [workers[1].id]
    assert await repo.any_with_role("admin") and not await repo.any_with_role("supervisor")


async def test_staff_lock_after_the_limit_and_a_good_login_clears_it(ctx: Context) -> None:
    worker = await make_staff(ctx)
    repo = StaffRepository(ctx.db)
    assert not await repo.record_failure(worker.id, now=T0, max_failures=3, lockout_seconds=60)
    assert not await repo.record_failure(worker.id, now=T0, max_failures=3, lockout_seconds=60)
    assert await repo.record_failure(worker.id, now=T0, max_failures=3, lockout_seconds=60)
    creds = await repo.credentials(worker.username)
    assert creds is not None and creds.locked_until == T0 + timedelta(seconds=60) and creds.failed_logins == 0
    await repo.record_success(worker.id, now=T0, new_hash="rehashed")
    creds = await repo.credentials(worker.username)
    assert creds is not None and creds.locked_until is None and creds.password_hash == "rehashed"


async def test_residents_are_found_again_by_openid_or_phone_and_a_held_phone_conflicts(ctx: Context) -> None:
    repo = ResidentsRepository(ctx.db)
    first = await make_wechat_resident(ctx, openid="o-abc")
    again = await repo.upsert_wechat(openid="o-abc", unionid="u-1", session_key="k2", now=T0)
    assert isinstance(again, Resident) and again.id == first.id and again.unionid == "u-1"
    by_phone = await make_phone_resident(ctx, phone="13900000001")
    assert (await repo.upsert_phone(phone="13900000001", now=T0)).id == by_phone.id
    assert (await repo.find_by_phone("13900000001")) == by_phone
    assert await repo.find_by_phone("13900000002") is None
    with pytest.raises(ConflictError) as exc:
        await repo.set_phone(first.id, "13900000001")
    assert exc.value.code == "phone_in_use"
    assert (await repo.set_phone(first.id, "13900000003")).phone == "13900000003"
    with pytest.raises(NotFoundError) as nf:
        await repo.get((await make_staff(ctx, role="admin")).id)
    assert nf.value.code == "resident_not_found"


async def test_clients_page_newest_first_and_missing_ones_are_not_found(ctx: Context) -> None:
    issued = [await make_client(ctx) for _ in range(3)]
    repo = ApiClientsRepository(ctx.db)
    stored = [await repo.get(c.client.client_id) for c in issued]
    ids = [c.client_id for c in sorted(stored, key=lambda c: (c.created_at, c.client_id), reverse=True)]
    first = await repo.list(limit=2, cursor=None, now=ctx.now())
    rest = await repo.list(limit=2, cursor=first.next_cursor, now=ctx.now())
    assert [c.client_id for c in first.items + rest.items] == ids and rest.next_cursor is None
    got = await repo.get(issued[0].client.client_id)
    assert isinstance(got, ApiClient) and got.scopes == issued[0].client.scopes
    pair = await repo.secret_hash(issued[0].client.client_id)
    assert pair is not None and pair[1] and pair[1] != issued[0].client_secret
    with pytest.raises(ConflictError) as exc:
        await repo.insert(
            client_id=got.client_id,
            name="x",
            scopes=(),
            rate_limit_per_minute=1,
            secret_hash="h",
            created_by="admin",
            now=T0,
        )
    assert exc.value.code == "client_exists"
    with pytest.raises(NotFoundError) as nf:
        await repo.update("no-such-client", {"active": False}, T0)
    assert nf.value.code == "client_not_found"
    assert await repo.secret_hash("no-such-client") is None


async def test_a_refresh_token_is_spent_once_and_family_revocation_returns_newest_first(ctx: Context) -> None:
    ctx.clock = lambda: T0
    worker = await make_staff(ctx)
    first = await issue_token_pair(ctx=ctx, principal=staff_principal(worker))
    repo = RefreshTokensRepository(ctx.db)
    record = await repo.find(hash_refresh_token(first.refresh_token or ""))
    assert isinstance(record, RefreshTokenRecord) and not record.used and record.expires_at > T0
    assert await repo.find_by_access_jti(record.access_jti) == record
    assert await repo.find("no-such-hash") is None
    assert await repo.mark_used(record.token_hash, T0)
    assert not await repo.mark_used(record.token_hash, T0)  # the second spender loses
    ctx.clock = lambda: T0 + timedelta(seconds=5)
    second = await issue_token_pair(ctx=ctx, principal=staff_principal(worker), family_id=record.family_id)
    family = await repo.revoke_family(record.family_id, T0)
    assert [r.token_hash for r in family] == [hash_refresh_token(second.refresh_token or ""), record.token_hash]
    assert all(r.revoked for r in family)
    assert not await repo.mark_used(family[0].token_hash, T0)  # a revoked token cannot be spent


async def test_signing_out_an_account_returns_only_its_live_tokens(ctx: Context) -> None:
    worker, other = await make_staff(ctx), await make_staff(ctx)
    ctx.clock = lambda: T0
    await issue_token_pair(ctx=ctx, principal=staff_principal(worker))
    live = await issue_token_pair(ctx=ctx, principal=staff_principal(worker))
    theirs = await issue_token_pair(ctx=ctx, principal=staff_principal(other))
    repo = RefreshTokensRepository(ctx.db)
    await repo.revoke_family((await repo.find(hash_refresh_token(live.refresh_token or ""))).family_id, T0)  # type: ignore[union-attr]
    revoked = await repo.revoke_subject(worker.id, T0)
    assert len(revoked) == 1 and revoked[0].subject == worker.id  # the revoked family is not "live"
    stays = await repo.find(hash_refresh_token(theirs.refresh_token or ""))
    assert stays is not None and not stays.revoked
    later = T0 + timedelta(seconds=ctx.settings.refresh_token_ttl_seconds + 1)
    assert await repo.revoke_subject(other.id, later) == []  # expired by then: nothing was live ...
    gone = await repo.find(hash_refresh_token(theirs.refresh_token or ""))
    assert gone is not None and gone.revoked  # ... but it is revoked all the same


async def test_revocations_are_idempotent_and_expire_out_of_the_unexpired_set(ctx: Context) -> None:
    repo = RevokedTokensRepository(ctx.db)
    jti = tokens.new_token_id()
    await repo.revoke(jti, T0 + timedelta(minutes=15))
    await repo.revoke(jti, T0 + timedelta(minutes=30))  # a second revocation of the same id is harmless
    assert await repo.is_revoked(jti) and not await repo.is_revoked(tokens.new_token_id())
    marker = tokens.subject_marker((await make_client(ctx)).client.client_id)
    await repo.revoke_until(marker, T0, T0 + timedelta(minutes=5))
    await repo.revoke_until(marker, T0 + timedelta(minutes=1), T0 + timedelta(minutes=6))  # moves the cut
    assert await repo.find([jti, marker, "unknown"]) == {jti: None, marker: T0 + timedelta(minutes=1)}
    in_force = {key for key, _, _ in await repo.unexpired(T0 + timedelta(minutes=10))}
    assert in_force == {jti}
    assert {key for key, _, _ in await repo.unexpired(T0)} == {jti, marker}


async def test_the_sliding_window_refuses_over_the_limit_until_the_oldest_leaves(ctx: Context) -> None:
    log = SlidingWindowLog(ctx.redis)
    key = ctx.key("test-window", tokens.new_token_id())
    t = 1_000_000
    assert [(await log.hit(key, now_ms=t + i, window_ms=1000, limit=3)).allowed for i in range(3)] == [True] * 3
    refused = await log.hit(key, now_ms=t + 500, window_ms=1000, limit=3)
    assert not refused.allowed and refused.count == 3 and refused.retry_after_ms == 500
    again = await log.hit(key, now_ms=t + 600, window_ms=1000, limit=3)  # refusals do not fill the window
    assert not again.allowed and again.retry_after_ms == 400
    assert (await log.hit(key, now_ms=t + 1001, window_ms=1000, limit=3)).allowed
    # A counted request taken back frees its place at once.
    other = ctx.key("test-window", tokens.new_token_id())
    first = await log.hit(other, now_ms=t, window_ms=1000, limit=1)
    assert first.allowed and first.member is not None
    assert not (await log.hit(other, now_ms=t + 1, window_ms=1000, limit=1)).allowed
    await log.take_back(other, first.member)
    assert (await log.hit(other, now_ms=t + 2, window_ms=1000, limit=1)).allowed


async def test_staff_and_clients_page_newest_first_across_windows(ctx: Context) -> None:
    station_id = (await make_station(ctx)).id

    async def make(i: int) -> tuple[str, str]:
        member = await make_staff(ctx, role="station_head" if i % 2 else "worker", station_id=station_id)
        return member.id, (await make_client(ctx)).client.client_id

    in_order = await made_over_time(ctx, make)
    made = list(reversed(in_order))
    staff, clients = StaffRepository(ctx.db), ApiClientsRepository(ctx.db)
    stored = [await clients.get(c) for _, c in made]
    client_ids = [c.client_id for c in sorted(stored, key=lambda c: (c.created_at, c.client_id), reverse=True)]
    heads = [m for i, (m, _) in reversed(list(enumerate(in_order))) if i % 2]
    for limit in LIMITS:

        async def at_station(cursor: str | None, limit: int = limit) -> Any:
            page = await staff.list(role=None, station_id=station_id, limit=limit, cursor=cursor, now=ctx.now())
            return [s.id for s in page.items], page.next_cursor

        async def of_role(cursor: str | None, limit: int = limit) -> Any:
            page = await staff.list(role="station_head", station_id=None, limit=limit, cursor=cursor, now=ctx.now())
            return [s.id for s in page.items], page.next_cursor

        async def every_client(cursor: str | None, limit: int = limit) -> Any:
            page = await clients.list(limit=limit, cursor=cursor, now=ctx.now())
            return [c.client_id for c in page.items], page.next_cursor

        assert await read_pages(at_station) == in_pages([m for m, _ in made], limit), limit
        assert await read_pages(of_role) == in_pages(heads, limit), limit
        assert await read_pages(every_client) == in_pages(client_ids, limit), limit
