"""Access tokens: short-lived JWTs signed with one explicitly chosen algorithm.

HS256 with ``HUIMIN_JWT_SECRET``, or RS256 / EdDSA with a key pair from files. Verification
accepts exactly that one algorithm, so ``alg: none`` and HS256-signed-with-the-public-key
forgeries are refused. Revoked token ids are kept in MongoDB (the record) and cached in
Redis (the fast path); a Redis outage falls back to MongoDB rather than accepting a
revoked token.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from config import Settings
from service.common.context import Context
from service.common.errors import AuthenticationError
from service.common.models import Principal
from service.identity.repository.revoked_tokens import RevokedTokensRepository
from service.storage.errors import is_redis_down

LEEWAY_SECONDS = 10
# Redis key (under "revoked:") saying its copy of the revocations is complete. It expires, so
# a revocation that reached only MongoDB (Redis was down at the time) counts within a minute.
LOADED_MARKER = "_complete"
LOADED_MARKER_SECONDS = 60
# Verified tokens kept per process (the oldest goes first): about an hour of active callers.
VERIFIED_TOKENS_KEPT = 4096


@dataclasses.dataclass(frozen=True, slots=True)
class Signer:
    algorithm: str
    signing_key: Any
    verifying_key: Any


@cache
def signer_for(settings: Settings) -> Signer:
    """The signing set-up for these settings (cached: keys are read once)."""
    if not settings.jwt_private_key_file:
        return Signer("HS256", settings.jwt_secret, settings.jwt_secret)
    private = load_pem_private_key(Path(settings.jwt_private_key_file).read_bytes(), password=None)
    public = load_pem_public_key(Path(settings.jwt_public_key_file).read_bytes())
    if isinstance(private, rsa.RSAPrivateKey):
        algorithm = "RS256"
    elif isinstance(private, ed25519.Ed25519PrivateKey):
        algorithm = "EdDSA"
    else:
        raise ValueError("HUIMIN_JWT_PRIVATE_KEY_FILE: only RSA and Ed25519 keys are supported")
    return Signer(algorithm, private, public)


def new_token_id() -> str:
    """A random token id (jti)."""
    return secrets.token_urlsafe(16)


def issue_access_token(*, settings: Settings, principal: Principal, now: datetime) -> tuple[str, int]:
    """Sign an access token for ``principal``; returns (token, lifetime in seconds)."""
    ttl = settings.access_token_ttl_seconds
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(principal.subject),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": principal.token_id or new_token_id(),
        "typ": "access",
        "role": principal.role,
        "scope": " ".join(sorted(principal.scopes)),
    }
    if principal.station_id:
        claims["station"] = principal.station_id
    if principal.division_prefix is not None:
        claims["division"] = principal.division_prefix
    s = signer_for(settings)
    return jwt.encode(claims, s.signing_key, algorithm=s.algorithm), ttl


def decode_access_token(*, settings: Settings, token: str) -> dict[str, Any]:
    """Verify signature, issuer, audience and lifetime; returns the claims."""
    s = signer_for(settings)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            s.verifying_key,
            algorithms=[s.algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("token_expired", "The access token has expired; refresh it.") from None
    except jwt.InvalidTokenError:
        raise AuthenticationError("invalid_token", "The access token is not valid.") from None
    if claims.get("typ") != "access" or claims.get("role") not in (
        "resident",
        "worker",
        "station_head",
        "supervisor",
        "admin",
        "client",
    ):
        raise AuthenticationError("invalid_token", "The access token is not valid.")
    return claims


def subject_marker(subject: str) -> str:
    """The revocation key that covers every token of one subject (e.g. a disabled client)."""
    return f"sub:{subject}"


def _stamp(value: datetime) -> int:
    """Whole seconds since the epoch, as in a token's ``iat`` (naive values are UTC, as stored)."""
    return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())


async def is_revoked(*, ctx: Context, jti: str, subject: str, issued_at: int) -> bool:
    """True when the token id was revoked, or its subject was revoked at or after ``issued_at``.

    One Redis round trip (MGET of the token id, the subject marker and the completeness
    marker); MongoDB decides when Redis is down or lost its copy.
    """
    marker = subject_marker(subject)
    try:
        by_jti, subject_cut, complete = await ctx.redis.mget(
            [ctx.key("revoked", jti), ctx.key("revoked", marker), ctx.key("revoked", LOADED_MARKER)]
        )
        if by_jti is not None or (subject_cut is not None and issued_at <= int(subject_cut)):
            return True
        if complete is not None:
            return False
    except Exception as exc:
        if not is_redis_down(exc):
            raise
        return await _revoked_in_db(ctx, jti, marker, issued_at)
    # Redis came back empty (restart without persistence, flush, fail-over to a stale
    # replica): MongoDB decides, and Redis is refilled so the next checks are cheap again.
    await _refill_revocations(ctx)
    return await _revoked_in_db(ctx, jti, marker, issued_at)


async def _revoked_in_db(ctx: Context, jti: str, marker: str, issued_at: int) -> bool:
    found = await RevokedTokensRepository(ctx.db).find([jti, marker])
    cut = found.get(marker)
    return jti in found or (cut is not None and issued_at <= _stamp(cut))


async def _refill_revocations(ctx: Context) -> None:
    now = ctx.now()
    try:
        for key, expires_at, revoked_at in await RevokedTokensRepository(ctx.db).unexpired(now):
            ttl = max(1, int((expires_at - now).total_seconds()) + LEEWAY_SECONDS)
            value = str(_stamp(revoked_at)) if revoked_at is not None else "1"
            await ctx.redis.set(ctx.key("revoked", key), value, ex=ttl)
        await ctx.redis.set(ctx.key("revoked", LOADED_MARKER), "1", ex=LOADED_MARKER_SECONDS)
    except Exception as exc:
        if not is_redis_down(exc):
            raise


async def revoke(*, ctx: Context, jti: str, expires_at: datetime) -> None:
    """Revoke an access token id until it would have expired anyway."""
    await RevokedTokensRepository(ctx.db).revoke(jti, expires_at)
    ttl = max(1, int((expires_at - ctx.now()).total_seconds()) + LEEWAY_SECONDS)
    try:
        await ctx.redis.set(ctx.key("revoked", jti), "1", ex=ttl)
    except Exception as exc:
        if not is_redis_down(exc):
            raise


async def revoke_subject(*, ctx: Context, subject: str) -> None:
    """Revoke every access token issued to ``subject`` so far, at once (tokens issued later work).

    The marker lives as long as the longest token it covers, so it costs nothing afterwards.
    A token issued in the same second as the revocation counts as revoked.
    """
    now = ctx.now()
    expires_at = now + timedelta(seconds=ctx.settings.access_token_ttl_seconds + LEEWAY_SECONDS)
    marker = subject_marker(subject)
    await RevokedTokensRepository(ctx.db).revoke_until(marker, now, expires_at)
    ttl = int((expires_at - now).total_seconds()) + LEEWAY_SECONDS
    try:
        await ctx.redis.set(ctx.key("revoked", marker), str(_stamp(now)), ex=ttl)
    except Exception as exc:
        if not is_redis_down(exc):
            raise


def verified_claims(*, ctx: Context, token: str) -> dict[str, Any]:
    """``decode_access_token``, remembered per process for tokens that verified.

    The signature, issuer and audience of one token text never change, so a token verified
    once is not verified again; its lifetime is checked on every use, with the same leeway
    (an expired one goes through ``decode_access_token`` again, which refuses it). Revocation
    is not cached: ``authenticate`` asks Redis on every request.
    """
    cache = ctx.process.verified_tokens
    claims = cache.get(token)
    if claims is not None and time.time() < claims["exp"] + LEEWAY_SECONDS:
        return claims
    cache.pop(token, None)
    claims = decode_access_token(settings=ctx.settings, token=token)
    while len(cache) >= VERIFIED_TOKENS_KEPT:
        del cache[next(iter(cache))]
    cache[token] = claims
    return claims


async def authenticate(*, ctx: Context, token: str) -> Principal:
    """The principal of a bearer token, or AuthenticationError."""
    claims = verified_claims(ctx=ctx, token=token)
    await _refuse_revoked(ctx, claims)
    return _principal(claims)


def start_authentication(*, ctx: Context, token: str) -> tuple[Principal, asyncio.Future[None]]:
    """``authenticate`` in two steps, for a read that may begin before revocation is known.

    The principal of a token whose signature, issuer, audience and lifetime hold
    (AuthenticationError at once if not), and its revocation check already under way, which
    ends in AuthenticationError ``token_revoked`` for a revoked token. The caller awaits it
    before anything is disclosed to or written for the token's holder.
    """
    claims = verified_claims(ctx=ctx, token=token)
    return _principal(claims), asyncio.ensure_future(_refuse_revoked(ctx, claims))


async def _refuse_revoked(ctx: Context, claims: dict[str, Any]) -> None:
    if await is_revoked(ctx=ctx, jti=claims["jti"], subject=str(claims["sub"]), issued_at=int(claims["iat"])):
        raise AuthenticationError("token_revoked", "The access token has been revoked.")


def _principal(claims: dict[str, Any]) -> Principal:
    return Principal(
        subject=claims["sub"],
        role=claims["role"],
        scopes=frozenset(s for s in str(claims.get("scope", "")).split() if s),
        station_id=claims.get("station"),
        division_prefix=claims.get("division"),
        token_id=claims["jti"],
    )
