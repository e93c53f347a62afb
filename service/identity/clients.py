"""Integrator clients and the OAuth2 client-credentials grant (RFC 6749 section 4.4)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from service.common.context import Context
from service.common.errors import AuthenticationError, BadRequestError, ValidationFailedError
from service.common.models import CLIENT_SCOPES, Page, Principal, require_role
from service.identity import tokens
from service.identity.accounts import ApiClient, IssuedClient, TokenPair
from service.identity.auth import revoke_sessions_of
from service.identity.repository.clients import ApiClientsRepository

ADMIN_ONLY = "Only administrators manage API clients."


CLIENT_ID_PREFIX = "hmc_"
SECRET_PREFIX = "hms_"
DIVISION_PREFIX = re.compile(r"^\d{2,12}$")


def _check_division(division_prefix: str | None) -> str | None:
    if division_prefix is not None and not DIVISION_PREFIX.match(division_prefix):
        message = "A division-code prefix of 2-12 digits, e.g. 3410."
        raise ValidationFailedError("validation_failed", message, errors={"division_prefix": [message]})
    return division_prefix


def hash_client_secret(secret: str) -> str:
    """The stored form of a client secret (256 random bits, so a plain hash suffices)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(scopes) - set(CLIENT_SCOPES))
    if unknown:
        message = f"Unknown scope {unknown[0]!r}; known scopes: {', '.join(CLIENT_SCOPES)}."
        raise ValidationFailedError("validation_failed", message, errors={"scopes": [message]})
    return tuple(sorted(set(scopes)))


async def create_client(
    *,
    ctx: Context,
    principal: Principal,
    name: str,
    scopes: list[str],
    rate_limit_per_minute: int,
    division_prefix: str | None = None,
) -> IssuedClient:
    """Register a client; the secret is returned here once and stored only as a hash."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    client = await ApiClientsRepository(ctx.db).insert(
        client_id=CLIENT_ID_PREFIX + secrets.token_hex(8),
        name=name.strip(),
        scopes=_check_scopes(scopes),
        rate_limit_per_minute=rate_limit_per_minute,
        secret_hash=hash_client_secret(secret),
        created_by=principal.subject,
        now=ctx.now(),
        division_prefix=_check_division(division_prefix),
    )
    return IssuedClient(client=client, client_secret=secret)


async def set_client_division(
    *, ctx: Context, principal: Principal, client_id: str, division_prefix: str | None
) -> ApiClient:
    """Set (or with None clear) the territory whose visit-programme events a client receives."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    changes = {"division_prefix": _check_division(division_prefix)}
    return await ApiClientsRepository(ctx.db).update(client_id, changes, ctx.now())


async def get_client(*, ctx: Context, principal: Principal, client_id: str) -> ApiClient:
    """One client (admins only)."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    return await ApiClientsRepository(ctx.db).get(client_id)


async def list_clients(
    *, ctx: Context, principal: Principal, limit: int = 50, cursor: str | None = None
) -> Page[ApiClient]:
    """Clients, newest first (admins only)."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    return await ApiClientsRepository(ctx.db).list(limit=limit, cursor=cursor, now=ctx.now())


async def rotate_client_secret(*, ctx: Context, principal: Principal, client_id: str) -> IssuedClient:
    """Replace a client's secret; the old one stops working at once."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    client = await ApiClientsRepository(ctx.db).update(
        client_id, {"secret_hash": hash_client_secret(secret)}, ctx.now()
    )
    return IssuedClient(client=client, client_secret=secret)


async def disable_client(*, ctx: Context, principal: Principal, client_id: str) -> ApiClient:
    """End a client's access at once: no new tokens, and the tokens it holds stop working."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    client = await ApiClientsRepository(ctx.db).update(client_id, {"active": False}, ctx.now())
    await tokens.revoke_subject(ctx=ctx, subject=client_id)
    await revoke_sessions_of(ctx=ctx, subject=client_id)
    return client


def _oauth_error(family: type[Any], error: str, description: str, **extra: Any) -> Exception:
    return family(error, description, error=error, error_description=description, **extra)  # type: ignore[no-any-return]


def _single(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name, [])
    if len(values) > 1:
        raise _oauth_error(BadRequestError, "invalid_request", f"The parameter {name!r} was sent more than once.")
    return values[0] if values else None


async def issue_client_token(*, ctx: Context, form: dict[str, list[str]], basic: tuple[str, str] | None) -> TokenPair:
    """The client-credentials grant: authenticate the client and issue a scoped access token.

    ``form`` is the parsed form body; ``basic`` the HTTP Basic credentials, if sent. Errors
    carry RFC 6749 ``error`` / ``error_description`` members.
    """
    grant_type = _single(form, "grant_type")
    body_id, body_secret = _single(form, "client_id"), _single(form, "client_secret")
    requested = _single(form, "scope")
    if basic is not None and (body_id is not None or body_secret is not None):
        raise _oauth_error(BadRequestError, "invalid_request", "Use one client authentication method, not two.")
    if not grant_type:
        raise _oauth_error(BadRequestError, "invalid_request", "The grant_type parameter is required.")
    if grant_type != "client_credentials":
        raise _oauth_error(BadRequestError, "unsupported_grant_type", "Only the client_credentials grant is supported.")
    client_id, secret = basic if basic is not None else (body_id, body_secret)
    # The token endpoint takes client credentials, never a bearer token: a 401 challenges
    # with Basic, the scheme a client that used the Authorization header used (RFC 6749 section 5.2).
    scheme = "Basic"
    if not client_id or not secret:
        raise _oauth_error(AuthenticationError, "invalid_client", "Client authentication is required.", scheme=scheme)
    found = await ApiClientsRepository(ctx.db).secret_hash(client_id)
    ok = found is not None and hmac.compare_digest(found[1], hash_client_secret(secret))
    if found is None or not ok:
        raise _oauth_error(AuthenticationError, "invalid_client", "Unknown client or wrong secret.", scheme=scheme)
    client = found[0]
    if not client.active:
        raise _oauth_error(AuthenticationError, "invalid_client", "This client has been disabled.", scheme=scheme)
    granted = set(client.scopes)
    if requested is not None:
        wanted = {s for s in requested.split(" ") if s}
        if not wanted or not wanted <= granted:
            raise _oauth_error(BadRequestError, "invalid_scope", "The requested scope exceeds the client's scopes.")
        granted = wanted
    principal = Principal(subject=client.client_id, role="client", scopes=frozenset(granted))
    access, ttl = tokens.issue_access_token(settings=ctx.settings, principal=principal, now=ctx.now())
    return TokenPair(access_token=access, expires_in=ttl, role="client", scope=" ".join(sorted(granted)))
