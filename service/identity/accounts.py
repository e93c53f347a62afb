"""Identity records: residents, staff accounts, API clients and refresh tokens."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from service.common.models import Role


@dataclasses.dataclass(frozen=True, slots=True)
class Resident:
    """A resident who logged in by WeChat and/or phone. ``session_key`` never leaves the server."""

    id: str
    openid: str | None
    unionid: str | None
    phone: str | None
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class StaffMember:
    """A staff account; the password hash stays in storage."""

    id: str
    username: str
    name: str
    role: Role
    station_id: str | None
    division_prefix: str | None
    active: bool
    created_at: datetime
    updated_at: datetime
    locked_until: datetime | None = None
    # Mobile number for SMS notices the person switched on; shown masked (mask_phone).
    phone: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class StaffCredentials:
    """What login needs: the account, its password hash and lockout state."""

    staff: StaffMember
    password_hash: str
    failed_logins: int
    locked_until: datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class ApiClient:
    """An integrator application using OAuth2 client credentials."""

    client_id: str
    name: str
    scopes: tuple[str, ...]
    rate_limit_per_minute: int
    active: bool
    created_at: datetime
    updated_at: datetime
    # The territory (division-code prefix) whose visit-programme events the client receives;
    # None: none of them.
    division_prefix: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class IssuedClient:
    """A client with its secret, shown once at creation or rotation."""

    client: ApiClient
    client_secret: str


@dataclasses.dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    """One refresh token of a rotation family (the token itself is stored only as a hash)."""

    token_hash: str
    family_id: str
    subject: str
    role: Role
    access_jti: str
    access_expires_at: datetime
    expires_at: datetime
    used: bool
    revoked: bool
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class TokenPair:
    """What every login answers with; clients get no refresh token."""

    access_token: str
    expires_in: int
    role: Role
    refresh_token: str | None = None
    refresh_expires_in: int | None = None
    scope: str | None = None
    token_type: str = "Bearer"


@dataclasses.dataclass(frozen=True, slots=True)
class Me:
    """The caller as shown by GET /me; fields that do not apply to the role are None."""

    role: Role
    id: str
    phone_masked: str | None = None
    has_wechat: bool | None = None
    has_phone: bool | None = None
    username: str | None = None
    name: str | None = None
    station_id: str | None = None
    division_prefix: str | None = None
    client_id: str | None = None
    scopes: tuple[str, ...] | None = None
