"""Staff login, lockout, and the staff-account administration API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from config import Settings
from handlers.keys import CTX
from run import create_app
from service.common.models import utcnow
from service.common.paging import encode_cursor
from tests.factories import STAFF_PASSWORD, admin_token, bearer, login, make_staff, make_station


async def _login(client: Any, username: str, password: str) -> Any:
    return await client.post("/api/v1/auth/login", json={"username": username, "password": password})


async def test_staff_login_returns_token_pair_and_me(client: Any) -> None:
    station = await make_station(client.app[CTX])
    await make_staff(client.app[CTX], username="zhangmin", role="station_head", name="张敏", station_id=station.id)
    body = await login(client, "ZhangMin")
    assert body["role"] == "station_head" and body["refresh_token"]
    me = await (await client.get("/api/v1/me", headers=bearer(body["access_token"]))).json()
    assert me == {
        "role": "station_head",
        "id": me["id"],
        "username": "zhangmin",
        "name": "张敏",
        "station_id": station.id,
        "division_prefix": None,
        "phone_masked": None,
        "has_wechat": None,
        "has_phone": None,
        "client_id": None,
        "scopes": None,
    }


async def test_wrong_password_and_unknown_user_get_the_same_answer(client: Any) -> None:
    await make_staff(client.app[CTX], username="worker1")
    wrong = await _login(client, "worker1", "not-the-password")
    unknown = await _login(client, "nobody", "not-the-password")
    assert wrong.status == unknown.status == 401
    a, b = await wrong.json(), await unknown.json()
    assert a["code"] == b["code"] == "invalid_credentials"
    assert a["detail"] == b["detail"]


async def test_account_locks_after_failures_and_unlocks_after_the_window(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await aiohttp_client(create_app(settings.replace(login_max_failures=3, login_lockout_seconds=60)))
    await make_staff(client.app[CTX], username="worker1")
    for _ in range(3):
        assert (await _login(client, "worker1", "wrong-password!")).status == 401
    resp = await _login(client, "worker1", STAFF_PASSWORD)
    assert resp.status == 429
    assert (await resp.json())["code"] == "account_locked"
    assert 1 <= int(resp.headers["Retry-After"]) <= 61
    # The window is counted on the app's clock: move it past the lock instead of waiting.
    ctx = client.app[CTX]
    later = utcnow() + timedelta(seconds=61)
    ctx.clock = lambda: later
    assert (await _login(client, "worker1", STAFF_PASSWORD)).status == 200


async def test_good_login_resets_the_failure_count(aiohttp_client: Any, settings: Settings) -> None:
    client = await aiohttp_client(create_app(settings.replace(login_max_failures=3)))
    await make_staff(client.app[CTX], username="worker1")
    for _ in range(2):
        await _login(client, "worker1", "wrong-password!")
    assert (await _login(client, "worker1", STAFF_PASSWORD)).status == 200
    for _ in range(2):
        await _login(client, "worker1", "wrong-password!")
    assert (await _login(client, "worker1", STAFF_PASSWORD)).status == 200


async def test_admin_creates_lists_and_reads_staff(client: Any) -> None:
    token = await admin_token(client)
    ctx = client.app[CTX]
    stations = [(await make_station(ctx, code=code)).id for code in ("341002001", "341002002")]
    created = []
    for i, role in enumerate(["worker", "worker", "station_head", "supervisor"]):
        body: dict[str, Any] = {"username": f"user{i}", "password": "long-enough-pw", "role": role, "name": f"员工{i}"}
        body |= {"division_prefix": "3410"} if role == "supervisor" else {"station_id": stations[i % 2]}
        resp = await client.post("/api/v1/staff", json=body, headers=bearer(token))
        assert resp.status == 201, await resp.text()
        out = await resp.json()
        assert "password" not in out and "password_hash" not in out
        created.append(out)
    assert created[3]["division_prefix"] == "3410" and created[3]["station_id"] is None
    page1 = await (await client.get("/api/v1/staff?limit=2", headers=bearer(token))).json()
    assert len(page1["items"]) == 2 and page1["next_cursor"]
    page2 = await (
        await client.get(f"/api/v1/staff?limit=2&cursor={page1['next_cursor']}", headers=bearer(token))
    ).json()
    page3 = await (
        await client.get(f"/api/v1/staff?limit=2&cursor={page2['next_cursor']}", headers=bearer(token))
    ).json()
    names = [s["username"] for s in page1["items"] + page2["items"] + page3["items"]]
    assert names == ["user3", "user2", "user1", "user0", "root"]  # newest first
    assert page3["next_cursor"] is None
    # A cursor of the list when it was read oldest first (the bare id, encoded) is refused, not read backwards.
    old = await client.get(f"/api/v1/staff?cursor={encode_cursor(created[0]['id'])}", headers=bearer(token))
    assert old.status == 400 and (await old.json())["code"] == "invalid_cursor"
    workers = await (await client.get("/api/v1/staff?role=worker", headers=bearer(token))).json()
    assert [s["username"] for s in workers["items"]] == ["user1", "user0"]
    station = await (await client.get(f"/api/v1/staff?station_id={stations[0]}", headers=bearer(token))).json()
    assert [s["username"] for s in station["items"]] == ["user2", "user0"]
    one = await (await client.get(f"/api/v1/staff/{created[0]['id']}", headers=bearer(token))).json()
    assert one["username"] == "user0" and one["name"] == "员工0"


async def test_staff_creation_rules(client: Any) -> None:
    token = await admin_token(client)
    station = await make_station(client.app[CTX])
    base = {"username": "worker9", "password": "long-enough-pw", "role": "worker", "station_id": station.id}
    cases = [
        ({**base, "password": "short"}, 422, "password"),
        ({**base, "station_id": None}, 422, "station_id"),
        ({**base, "station_id": "000000000000000000000000"}, 422, "station_id"),  # no such station
        ({**base, "station_id": "st-1"}, 422, "station_id"),
        ({**base, "role": "supervisor", "division_prefix": "34a"}, 422, "division_prefix"),
        ({**base, "role": "supervisor"}, 422, "division_prefix"),
        ({**base, "role": "mayor"}, 422, "role"),
    ]
    for body, status, field in cases:
        resp = await client.post("/api/v1/staff", json=body, headers=bearer(token))
        assert resp.status == status, body
        assert field in (await resp.json())["errors"], body
    assert (await client.post("/api/v1/staff", json=base, headers=bearer(token))).status == 201
    resp = await client.post("/api/v1/staff", json={**base, "username": "Worker9"}, headers=bearer(token))
    assert resp.status == 409
    assert (await resp.json())["code"] == "username_taken"


async def test_patch_changes_role_and_resets_password(client: Any) -> None:
    token = await admin_token(client)
    member = await make_staff(client.app[CTX], username="worker1")
    old_session = await login(client, "worker1")
    resp = await client.patch(
        f"/api/v1/staff/{member.id}",
        json={"role": "supervisor", "division_prefix": "341002", "password": "brand-new-password", "name": "李华"},
        headers=bearer(token),
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["role"], body["division_prefix"], body["station_id"], body["name"]) == (
        "supervisor",
        "341002",
        None,
        "李华",
    )
    assert (await _login(client, "worker1", STAFF_PASSWORD)).status == 401
    new = await login(client, "worker1", "brand-new-password")
    assert new["role"] == "supervisor"
    # A password reset ends the sessions that existed before it.
    resp = await client.get("/api/v1/me", headers=bearer(old_session["access_token"]))
    assert resp.status == 401 and (await resp.json())["code"] == "token_revoked"
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": old_session["refresh_token"]})
    assert resp.status == 401


async def test_disabled_staff_cannot_log_in_or_refresh(client: Any) -> None:
    token = await admin_token(client)
    member = await make_staff(client.app[CTX], username="worker1")
    session = await login(client, "worker1")
    resp = await client.patch(f"/api/v1/staff/{member.id}", json={"active": False}, headers=bearer(token))
    assert resp.status == 200 and (await resp.json())["active"] is False
    resp = await _login(client, "worker1", STAFF_PASSWORD)
    assert resp.status == 401
    assert (await resp.json())["code"] == "account_disabled"
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert resp.status == 401


async def test_disabled_staff_refresh_is_refused_even_with_an_unspent_token(client: Any) -> None:
    await make_staff(client.app[CTX], username="worker1")
    session = await login(client, "worker1")
    # Disable behind the API's back (e.g. by another process), so no session was revoked.
    await client.app[CTX].db["staff"].update_one({"username": "worker1"}, {"$set": {"active": False}})
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert resp.status == 401
    assert (await resp.json())["code"] == "account_disabled"


async def test_unknown_staff_id_is_404(client: Any) -> None:
    token = await admin_token(client)
    for sid in ("000000000000000000000000", "not-an-id"):
        resp = await client.get(f"/api/v1/staff/{sid}", headers=bearer(token))
        assert resp.status == 404
        assert (await resp.json())["code"] == "staff_not_found"


async def test_only_admins_use_the_staff_api(client: Any) -> None:
    await make_staff(client.app[CTX], username="sup", role="supervisor")
    token = (await login(client, "sup"))["access_token"]
    resp = await client.get("/api/v1/staff", headers=bearer(token))
    assert resp.status == 403
    assert (await resp.json())["code"] == "role_not_allowed"


async def test_moving_a_worker_to_a_station_that_does_not_exist_is_refused_and_nothing_changes(client: Any) -> None:
    token = await admin_token(client)
    member = await make_staff(client.app[CTX], username="worker1")
    resp = await client.patch(
        f"/api/v1/staff/{member.id}", json={"station_id": "000000000000000000000000"}, headers=bearer(token)
    )
    problem = await resp.json()
    assert resp.status == 422 and "station_id" in problem["errors"], problem
    after = await (await client.get(f"/api/v1/staff/{member.id}", headers=bearer(token))).json()
    assert after["station_id"] == member.station_id
