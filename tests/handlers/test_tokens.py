"""Access and refresh tokens: rotation, reuse detection, logout, and forged tokens refused."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from config import Settings
from handlers.endpoint import endpoint
from handlers.keys import CTX
from run import create_app
from service.common.models import Principal, utcnow
from service.identity.tokens import LEEWAY_SECONDS, issue_access_token
from tests.factories import admin_token, bearer, login, make_staff


async def _refresh(client: Any, token: str) -> Any:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def _me(client: Any, access: str) -> Any:
    return await client.get("/api/v1/me", headers=bearer(access))


async def test_refresh_rotates_and_each_token_is_single_use(client: Any) -> None:
    await make_staff(client.app[CTX], username="worker1")
    first = await login(client, "worker1")
    resp = await _refresh(client, first["refresh_token"])
    assert resp.status == 200
    second = await resp.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["role"] == "worker" and second["refresh_expires_in"] > 0
    assert (await _me(client, second["access_token"])).status == 200
    resp = await _refresh(client, second["refresh_token"])
    assert resp.status == 200


async def test_reusing_a_spent_refresh_token_revokes_the_family(client: Any) -> None:
    await make_staff(client.app[CTX], username="worker1")
    first = await login(client, "worker1")
    second = await (await _refresh(client, first["refresh_token"])).json()
    resp = await _refresh(client, first["refresh_token"])  # a copied token comes back
    assert resp.status == 401
    assert (await resp.json())["code"] == "refresh_token_reused"
    # The legitimate holder's latest tokens are dead too.
    resp = await _me(client, second["access_token"])
    assert resp.status == 401 and (await resp.json())["code"] == "token_revoked"
    resp = await _refresh(client, second["refresh_token"])
    assert resp.status == 401 and (await resp.json())["code"] == "refresh_token_revoked"
    # Other sessions of the same person are untouched.
    other = await login(client, "worker1")
    assert (await _refresh(client, other["refresh_token"])).status == 200


async def test_concurrent_use_of_one_refresh_token_lets_exactly_one_through(client: Any) -> None:
    await make_staff(client.app[CTX], username="worker1")
    pair = await login(client, "worker1")
    results = await asyncio.gather(*(_refresh(client, pair["refresh_token"]) for _ in range(3)))
    statuses = sorted(r.status for r in results)
    assert statuses == [200, 401, 401]
    codes = [(await r.json())["code"] for r in results if r.status == 401]
    # The first loser finds the token spent and revokes the family; a later one may already
    # find the whole family revoked. Either way, nobody gets a second pair.
    assert "refresh_token_reused" in codes
    assert set(codes) <= {"refresh_token_reused", "refresh_token_revoked"}


async def test_refresh_tokens_are_stored_hashed(client: Any) -> None:
    await make_staff(client.app[CTX], username="worker1")
    pair = await login(client, "worker1")
    docs = [d async for d in client.app[CTX].db["refresh_tokens"].find({})]
    assert len(docs) == 1
    assert pair["refresh_token"] not in str(docs)


async def test_unknown_and_expired_refresh_tokens_are_refused(aiohttp_client: Any, settings: Settings) -> None:
    client = await aiohttp_client(create_app(settings))
    resp = await _refresh(client, "made-up-token")
    assert resp.status == 401 and (await resp.json())["code"] == "invalid_refresh_token"
    await make_staff(client.app[CTX], username="worker1")
    pair = await login(client, "worker1")
    await (
        client.app[CTX].db["refresh_tokens"].update_many({}, {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}})
    )
    resp = await _refresh(client, pair["refresh_token"])
    assert resp.status == 401 and (await resp.json())["code"] == "refresh_token_expired"


async def test_logout_revokes_access_token_and_refresh_family(client: Any) -> None:
    await make_staff(client.app[CTX], username="worker1")
    pair = await login(client, "worker1")
    resp = await client.post("/api/v1/auth/logout", headers=bearer(pair["access_token"]))
    assert resp.status == 204
    resp = await _me(client, pair["access_token"])
    assert resp.status == 401 and (await resp.json())["code"] == "token_revoked"
    resp = await _refresh(client, pair["refresh_token"])
    assert resp.status == 401 and (await resp.json())["code"] == "refresh_token_revoked"


async def test_expired_access_token_is_refused(client: Any, settings: Settings) -> None:
    member = await make_staff(client.app[CTX], username="worker1")
    token, _ = issue_access_token(
        settings=settings,
        principal=Principal(subject=member.id, role="worker", station_id="st-340102001"),
        now=utcnow() - timedelta(hours=1),
    )
    resp = await _me(client, token)
    assert resp.status == 401
    assert (await resp.json())["code"] == "token_expired"


async def test_access_token_accepted_before_is_refused_once_it_expires(client: Any, settings: Settings) -> None:
    # A verified token is remembered per process; its lifetime must still be checked on each use.
    member = await make_staff(client.app[CTX], username="worker1")
    lifetime = timedelta(seconds=settings.access_token_ttl_seconds + LEEWAY_SECONDS)
    token, _ = issue_access_token(
        settings=settings,
        principal=Principal(subject=member.id, role="worker", station_id="st-340102001"),
        now=utcnow() - lifetime + timedelta(seconds=2),
    )
    resp = await _me(client, token)
    assert resp.status == 200
    await asyncio.sleep(2.5)
    resp = await _me(client, token)
    assert resp.status == 401 and (await resp.json())["code"] == "token_expired"


async def test_route_without_a_token_is_401(client: Any) -> None:
    resp = await client.get("/api/v1/me")
    assert resp.status == 401
    assert (await resp.json())["code"] == "authentication_required"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_wrong_role_is_403(client: Any) -> None:
    await make_staff(client.app[CTX], username="worker1")
    token = (await login(client, "worker1"))["access_token"]
    resp = await client.post("/api/v1/clients", json={"name": "x", "scopes": ["open311"]}, headers=bearer(token))
    assert resp.status == 403
    assert (await resp.json())["code"] == "role_not_allowed"


async def test_client_missing_a_scope_is_403(aiohttp_client: Any, settings: Settings) -> None:
    probe = web.RouteTableDef()

    @probe.get("/api/v1/test-probe")
    @endpoint("probe needing cases:write", roles=("client", "admin"), scopes=("cases:write",))
    async def needs_scope(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = create_app(settings)
    app.add_routes(probe)
    client = await aiohttp_client(app)
    admin = await admin_token(client)
    tokens = {}
    for scopes in (["cases:read"], ["cases:write"]):
        resp = await client.post("/api/v1/clients", json={"name": "x", "scopes": scopes}, headers=bearer(admin))
        issued = await resp.json()
        form = (
            f"grant_type=client_credentials&client_id={issued['client']['client_id']}"
            f"&client_secret={issued['client_secret']}"
        )
        resp = await client.post(
            "/oauth/token", data=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        tokens[scopes[0]] = (await resp.json())["access_token"]
    resp = await client.get("/api/v1/test-probe", headers=bearer(tokens["cases:read"]))
    assert resp.status == 403
    assert (await resp.json())["code"] == "insufficient_scope"
    assert (await client.get("/api/v1/test-probe", headers=bearer(tokens["cases:write"]))).status == 200


# ------------------------------------------------------------------ forged tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(settings: Settings, subject: str, **changes: Any) -> dict[str, Any]:
    now = int(utcnow().timestamp())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "forged-" + str(now),
        "typ": "access",
        "role": "admin",
        "scope": "",
    }
    return {**claims, **changes}


def _hs256_by_hand(claims: dict[str, Any], key: bytes) -> str:
    """HS256 signed with arbitrary bytes (PyJWT refuses to HMAC with a PEM key, attackers do not)."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def _alg_none(claims: dict[str, Any]) -> str:
    head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{head}.{_b64(json.dumps(claims).encode())}."


def _tampered(token: str, **changes: Any) -> str:
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims.update(changes)
    return f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"


async def _assert_refused(client: Any, token: str) -> None:
    resp = await _me(client, token)
    assert resp.status == 401, token
    assert (await resp.json())["code"] == "invalid_token"


async def test_forged_hs256_tokens_are_refused(client: Any, settings: Settings) -> None:
    member = await make_staff(client.app[CTX], username="worker1")
    genuine = (await login(client, "worker1"))["access_token"]
    assert (await _me(client, genuine)).status == 200
    secret = settings.jwt_secret.encode()
    await _assert_refused(client, _alg_none(_claims(settings, member.id)))
    await _assert_refused(client, jwt.encode(_claims(settings, member.id), "another-secret-" * 3, algorithm="HS256"))
    await _assert_refused(client, _hs256_by_hand(_claims(settings, member.id, aud="other-app"), secret))
    await _assert_refused(client, _hs256_by_hand(_claims(settings, member.id, iss="someone-else"), secret))
    await _assert_refused(client, _tampered(genuine, role="admin"))
    await _assert_refused(client, genuine[:-4] + ("AAAA" if not genuine.endswith("AAAA") else "BBBB"))
    await _assert_refused(client, "not.a.jwt")


def _write_keys(tmp: Path, kind: str) -> tuple[str, str, bytes]:
    private: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else (ed25519.Ed25519PrivateKey.generate())
    )
    priv_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp / f"{kind}.key").write_bytes(priv_pem)
    (tmp / f"{kind}.pub").write_bytes(pub_pem)
    return str(tmp / f"{kind}.key"), str(tmp / f"{kind}.pub"), pub_pem


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
async def test_key_pair_tokens_refuse_hs256_signed_with_the_public_key(
    aiohttp_client: Any, settings: Settings, tmp_path: Path, kind: str
) -> None:
    priv, pub, pub_pem = _write_keys(tmp_path, kind)
    s = settings.replace(jwt_private_key_file=priv, jwt_public_key_file=pub)
    client = await aiohttp_client(create_app(s))
    member = await make_staff(client.app[CTX], username="worker1")
    genuine = (await login(client, "worker1"))["access_token"]
    assert jwt.get_unverified_header(genuine)["alg"] == ("RS256" if kind == "rsa" else "EdDSA")
    assert (await _me(client, genuine)).status == 200
    await _assert_refused(client, _hs256_by_hand(_claims(s, member.id), pub_pem))
    await _assert_refused(client, _hs256_by_hand(_claims(s, member.id), pub_pem.strip()))
    await _assert_refused(client, _alg_none(_claims(s, member.id)))
    (tmp_path / "other").mkdir()
    other_priv, _, _ = _write_keys(tmp_path / "other", kind)
    other_key = serialization.load_pem_private_key(Path(other_priv).read_bytes(), password=None)
    await _assert_refused(
        client, jwt.encode(_claims(s, member.id), other_key, algorithm="RS256" if kind == "rsa" else "EdDSA")
    )
    await _assert_refused(client, _tampered(genuine, role="admin"))


async def test_revoked_token_stays_revoked_after_redis_loses_its_data(client: Any) -> None:
    await make_staff(client.app[CTX], username="worker1")
    pair = await login(client, "worker1")
    resp = await client.post("/api/v1/auth/logout", headers=bearer(pair["access_token"]))
    assert resp.status == 204
    ctx = client.app[CTX]
    # Redis restarted without persistence (or failed over to a replica that lagged)
    keys = [k async for k in ctx.redis.scan_iter(match=ctx.key("*"))]
    assert keys
    await ctx.redis.delete(*keys)
    resp = await _me(client, pair["access_token"])
    assert resp.status == 401 and (await resp.json())["code"] == "token_revoked"
    other = await login(client, "worker1")
    assert (await _me(client, other["access_token"])).status == 200
