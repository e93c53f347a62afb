"""Logging in (WeChat, SMS code, staff password), token pairs, refresh rotation, logout, /me.

Refresh tokens are opaque random strings, stored as SHA-256 hashes in rotation families.
Each use spends the token (a conditional update, so exactly one concurrent caller wins)
and issues a new pair in the same family. Presenting a spent token means it was copied:
the whole family and its latest access token are revoked.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from service.common import pii
from service.common.context import Context
from service.common.errors import AuthenticationError, NotFoundError, PermissionDeniedError, RateLimitedError
from service.common.models import Principal
from service.identity import otp, passwords, tokens
from service.identity import wechat_login as wechat
from service.identity.accounts import Me, RefreshTokenRecord, StaffMember, TokenPair
from service.identity.repository.clients import ApiClientsRepository
from service.identity.repository.refresh_tokens import RefreshTokensRepository
from service.identity.repository.residents import ResidentsRepository
from service.identity.repository.staff import StaffRepository

log = logging.getLogger("huimin.auth")


def hash_refresh_token(token: str) -> str:
    """The stored form of a refresh token (it has 256 random bits, so a plain hash suffices)."""
    return hashlib.sha256(token.encode()).hexdigest()


def staff_principal(staff: StaffMember) -> Principal:
    """The principal a staff account acts as."""
    return Principal(
        subject=staff.id, role=staff.role, station_id=staff.station_id, division_prefix=staff.division_prefix
    )


async def issue_token_pair(*, ctx: Context, principal: Principal, family_id: str | None = None) -> TokenPair:
    """An access token plus a refresh token (a new family unless one is given)."""
    now = ctx.now()
    jti = tokens.new_token_id()
    access, ttl = tokens.issue_access_token(
        settings=ctx.settings,
        principal=Principal(
            subject=principal.subject,
            role=principal.role,
            scopes=principal.scopes,
            station_id=principal.station_id,
            division_prefix=principal.division_prefix,
            token_id=jti,
        ),
        now=now,
    )
    refresh = secrets.token_urlsafe(32)
    refresh_ttl = ctx.settings.refresh_token_ttl_seconds
    await RefreshTokensRepository(ctx.db).add(
        RefreshTokenRecord(
            token_hash=hash_refresh_token(refresh),
            family_id=family_id or secrets.token_urlsafe(12),
            subject=principal.subject,
            role=principal.role,
            access_jti=jti,
            access_expires_at=now + timedelta(seconds=ttl),
            expires_at=now + timedelta(seconds=refresh_ttl),
            used=False,
            revoked=False,
            created_at=now,
        )
    )
    return TokenPair(
        access_token=access, expires_in=ttl, role=principal.role, refresh_token=refresh, refresh_expires_in=refresh_ttl
    )


async def login_with_wechat(*, ctx: Context, code: str) -> TokenPair:
    """Log a resident in with a mini-program ``wx.login`` code; first login creates the resident."""
    session = await wechat.code_to_session(ctx=ctx, code=code)
    resident = await ResidentsRepository(ctx.db).upsert_wechat(
        openid=session.openid, unionid=session.unionid, session_key=session.session_key, now=ctx.now()
    )
    return await issue_token_pair(ctx=ctx, principal=Principal(subject=resident.id, role="resident"))


async def request_login_code(*, ctx: Context, phone: str) -> int:
    """Text a login code to a resident's phone; returns the code's lifetime in seconds."""
    return await otp.request_otp(ctx=ctx, phone=phone)


async def login_with_phone(*, ctx: Context, phone: str, code: str) -> TokenPair:
    """Log a resident in with a texted code; first login creates the resident."""
    await otp.verify_otp(ctx=ctx, phone=phone, code=code)
    resident = await ResidentsRepository(ctx.db).upsert_phone(phone=phone, now=ctx.now())
    return await issue_token_pair(ctx=ctx, principal=Principal(subject=resident.id, role="resident"))


async def add_phone(*, ctx: Context, principal: Principal, phone: str, code: str) -> Me:
    """Add a verified phone number to a resident's account (WeChat login first, then a texted code).

    Staff who register a case for a resident (代录, referrals from home visits) find them by
    this number, so the resident hears of it in WeChat as well as in the inbox.
    """
    if principal.role != "resident":
        raise PermissionDeniedError("residents_only", "Only residents add a phone number to their account.")
    await otp.verify_otp(ctx=ctx, phone=phone, code=code)
    await ResidentsRepository(ctx.db).set_phone(principal.subject, phone)
    return await describe_me(ctx=ctx, principal=principal)


def _bad_credentials() -> AuthenticationError:
    return AuthenticationError("invalid_credentials", "The username or password is wrong.")


def _disabled() -> AuthenticationError:
    return AuthenticationError("account_disabled", "This account has been disabled.")


async def login_staff(*, ctx: Context, username: str, password: str) -> TokenPair:
    """Log staff in by password; repeated failures lock the account for a while (state in MongoDB)."""
    s = ctx.settings
    repo = StaffRepository(ctx.db)
    now = ctx.now()
    creds = await repo.credentials(username.strip().lower())
    if creds is not None and creds.locked_until is not None and creds.locked_until > now:
        raise RateLimitedError(
            "account_locked",
            "Too many failed logins; the account is locked for a while.",
            int((creds.locked_until - now).total_seconds()) + 1,
        )
    ok = await passwords.verify_password(creds.password_hash if creds else None, password)
    if creds is None:
        raise _bad_credentials()
    if not ok:
        locked = await repo.record_failure(
            creds.staff.id, now=now, max_failures=s.login_max_failures, lockout_seconds=s.login_lockout_seconds
        )
        if locked:
            log.warning("staff account locked after failed logins", extra={"staff_id": creds.staff.id})
        raise _bad_credentials()
    if not creds.staff.active:
        raise _disabled()
    new_hash = await passwords.hash_password(password) if passwords.needs_rehash(creds.password_hash) else None
    await repo.record_success(creds.staff.id, now=now, new_hash=new_hash)
    return await issue_token_pair(ctx=ctx, principal=staff_principal(creds.staff))


async def _current_principal(ctx: Context, record: RefreshTokenRecord) -> Principal:
    """Who the refresh token's owner is now (role and station may have changed)."""
    if record.role == "resident":
        try:
            await ResidentsRepository(ctx.db).get(record.subject)
        except NotFoundError:
            raise _disabled() from None
        return Principal(subject=record.subject, role="resident")
    try:
        staff = await StaffRepository(ctx.db).get(record.subject)
    except NotFoundError:
        raise _disabled() from None
    if not staff.active:
        raise _disabled()
    return staff_principal(staff)


async def revoke_family(*, ctx: Context, family_id: str) -> None:
    """Revoke every refresh token of a family and the access tokens issued with them."""
    now = ctx.now()
    for record in await RefreshTokensRepository(ctx.db).revoke_family(family_id, now):
        if record.access_expires_at > now:
            await tokens.revoke(ctx=ctx, jti=record.access_jti, expires_at=record.access_expires_at)


async def revoke_sessions_of(*, ctx: Context, subject: str) -> None:
    """Sign an account out everywhere: all refresh tokens and their live access tokens."""
    now = ctx.now()
    for record in await RefreshTokensRepository(ctx.db).revoke_subject(subject, now):
        if record.access_expires_at > now:
            await tokens.revoke(ctx=ctx, jti=record.access_jti, expires_at=record.access_expires_at)


async def refresh_session(*, ctx: Context, refresh_token: str) -> TokenPair:
    """Spend a refresh token for a new pair; a reused token revokes its whole family."""
    repo = RefreshTokensRepository(ctx.db)
    token_hash = hash_refresh_token(refresh_token)
    record = await repo.find(token_hash)
    invalid = AuthenticationError("invalid_refresh_token", "The refresh token is not valid; log in again.")
    if record is None:
        raise invalid
    if record.revoked:
        raise AuthenticationError("refresh_token_revoked", "This session has ended; log in again.")
    if record.expires_at <= ctx.now():
        raise AuthenticationError("refresh_token_expired", "The refresh token has expired; log in again.")
    if not await repo.mark_used(token_hash, ctx.now()):
        again = await repo.find(token_hash)
        if again is not None and again.revoked and not again.used:
            raise AuthenticationError("refresh_token_revoked", "This session has ended; log in again.")
        await revoke_family(ctx=ctx, family_id=record.family_id)
        log.warning("refresh token reused; family revoked", extra={"family_id": record.family_id})
        raise AuthenticationError(
            "refresh_token_reused", "This refresh token was already used; the session is ended. Log in again."
        )
    principal = await _current_principal(ctx, record)
    return await issue_token_pair(ctx=ctx, principal=principal, family_id=record.family_id)


async def logout(*, ctx: Context, principal: Principal) -> None:
    """Revoke the caller's access token and its refresh family."""
    if not principal.token_id:
        return
    record = await RefreshTokensRepository(ctx.db).find_by_access_jti(principal.token_id)
    if record is not None:
        await revoke_family(ctx=ctx, family_id=record.family_id)
    expires_at = ctx.now() + timedelta(seconds=ctx.settings.access_token_ttl_seconds + tokens.LEEWAY_SECONDS)
    await tokens.revoke(ctx=ctx, jti=principal.token_id, expires_at=expires_at)


async def describe_me(*, ctx: Context, principal: Principal) -> Me:
    """What the caller may know about their own account."""
    if principal.role == "resident":
        resident = await ResidentsRepository(ctx.db).get(principal.subject)
        return Me(
            role="resident",
            id=resident.id,
            phone_masked=pii.mask_phone(resident.phone) if resident.phone else None,
            has_wechat=resident.openid is not None,
            has_phone=resident.phone is not None,
        )
    if principal.role == "client":
        client = await ApiClientsRepository(ctx.db).get(principal.subject)
        return Me(
            role="client",
            id=client.client_id,
            client_id=client.client_id,
            name=client.name,
            scopes=tuple(sorted(principal.scopes)),
        )
    staff = await StaffRepository(ctx.db).get(principal.subject)
    return Me(
        role=staff.role,
        id=staff.id,
        username=staff.username,
        name=staff.name,
        station_id=staff.station_id,
        division_prefix=staff.division_prefix,
    )
