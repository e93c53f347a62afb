"""Staff accounts: creation (API, CLI, first admin at start), changes by admins; listing by admins and station heads."""

from __future__ import annotations

import logging
import re
from typing import Any

from service.common.context import Context
from service.common.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationFailedError
from service.common.inputs import given
from service.common.models import STAFF_ROLES, Page, Principal, require_role
from service.common.pii import normalize_phone
from service.identity import passwords
from service.identity.accounts import StaffMember
from service.identity.auth import revoke_sessions_of
from service.identity.inputs import StaffChanges
from service.identity.repository.staff import StaffRepository
from service.stations.service import get_station

ADMIN_ONLY = "Only administrators manage staff accounts."


log = logging.getLogger("huimin.staff")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{2,31}$")
DIVISION_PREFIX = re.compile(r"^\d{2,12}$")
FIRST_ADMIN_USERNAME = "admin"


def _invalid(field: str, message: str) -> ValidationFailedError:
    return ValidationFailedError("validation_failed", message, errors={field: [message]})


async def check_station(ctx: Context, station_id: str | None) -> None:
    """Refuse an assignment to a station that does not exist (a worker there would see nothing)."""
    if station_id is None:
        return
    try:
        await get_station(ctx=ctx, station_id=station_id)
    except NotFoundError:
        raise _invalid("station_id", f"There is no station {station_id!r}.") from None


def check_password(password: str) -> None:
    """Refuse passwords shorter than 10 characters (or absurdly long)."""
    if len(password) < passwords.MIN_LENGTH:
        raise _invalid("password", f"The password must have at least {passwords.MIN_LENGTH} characters.")
    if len(password) > passwords.MAX_LENGTH:
        raise _invalid("password", f"The password may have at most {passwords.MAX_LENGTH} characters.")


def normalise_assignment(
    role: str, station_id: str | None, division_prefix: str | None
) -> tuple[str | None, str | None]:
    """The (station_id, division_prefix) a role keeps: workers and heads a station, supervisors a prefix."""
    if role not in STAFF_ROLES:
        raise _invalid("role", f"The role must be one of {', '.join(STAFF_ROLES)}.")
    if role in ("worker", "station_head"):
        if not station_id:
            raise _invalid("station_id", "Workers and station heads need a station_id.")
        return station_id, None
    if role == "supervisor":
        if not division_prefix or not DIVISION_PREFIX.match(division_prefix):
            raise _invalid("division_prefix", "Supervisors need a division_prefix of 2-12 digits, e.g. 3410.")
        return None, division_prefix
    return None, None


async def create_staff(
    *,
    ctx: Context,
    principal: Principal,
    username: str,
    password: str,
    role: str,
    name: str | None = None,
    station_id: str | None = None,
    division_prefix: str | None = None,
    phone: str | None = None,
) -> StaffMember:
    """Create a staff account (admins only); 409 ``username_taken`` if the name is in use."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise _invalid("username", "Usernames are 3-32 characters: lower-case letters, digits, '_', '.', '-'.")
    check_password(password)
    station_id, division_prefix = normalise_assignment(role, station_id, division_prefix)
    await check_station(ctx, station_id)
    return await StaffRepository(ctx.db).insert(
        username=username,
        name=(name or username).strip(),
        role=role,
        station_id=station_id,
        division_prefix=division_prefix,
        password_hash=await passwords.hash_password(password),
        now=ctx.now(),
        phone=normalize_phone(phone) if phone else None,
    )


async def get_staff(*, ctx: Context, principal: Principal, staff_id: str) -> StaffMember:
    """One staff account (admins only)."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    return await StaffRepository(ctx.db).get(staff_id)


async def list_staff(
    *,
    ctx: Context,
    principal: Principal,
    role: str | None = None,
    station_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[StaffMember]:
    """Staff accounts, newest first, filtered by role and/or station (admins; station heads their own station)."""
    station_id = listing_station(principal, station_id)
    return await StaffRepository(ctx.db).list(
        role=role, station_id=station_id, limit=limit, cursor=cursor, now=ctx.now()
    )


def listing_station(principal: Principal, station_id: str | None) -> str | None:
    """The station whose staff the caller may list: as asked for admins (None: all), a station head's own only."""
    require_role(principal, ("admin", "station_head"), code="admin_only", detail=ADMIN_ONLY)
    if principal.role == "admin":
        return station_id
    if principal.station_id is None or station_id not in (None, principal.station_id):
        raise PermissionDeniedError("station_outside_scope", "Station heads list only their own station's staff.")
    return principal.station_id


async def count_station_staff(*, ctx: Context, station_ids: list[str]) -> dict[str, int]:
    """Read port: active worker and station-head accounts per station id (for the station network)."""
    return await StaffRepository(ctx.db).count_by_station(station_ids, ("worker", "station_head"))


async def update_staff(*, ctx: Context, principal: Principal, staff_id: str, changes: StaffChanges) -> StaffMember:
    """Change name, role, assignment, active flag, phone or password (admins only).

    Disabling an account, resetting its password or changing its role or assignment ends
    its sessions.
    """
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    repo = StaffRepository(ctx.db)
    current = await repo.get(staff_id)
    given_fields = given(changes)
    updates: dict[str, Any] = {k: given_fields[k] for k in ("name", "active") if k in given_fields}
    if "phone" in given_fields:
        updates["phone"] = normalize_phone(changes.phone) if changes.phone else None
    if updates.get("active") is False and staff_id == principal.subject:
        raise ConflictError("cannot_disable_self", "Administrators cannot disable their own account.")
    if {"role", "station_id", "division_prefix"} & changes.fields_set:
        role = given_fields.get("role", current.role)
        station_id, division_prefix = normalise_assignment(
            role,
            given_fields.get("station_id", current.station_id),
            given_fields.get("division_prefix", current.division_prefix),
        )
        if station_id != current.station_id:
            await check_station(ctx, station_id)
        updates.update(role=role, station_id=station_id, division_prefix=division_prefix)
    if changes.password is not None:
        check_password(changes.password)
        updates.update(
            password_hash=await passwords.hash_password(changes.password), failed_logins=0, locked_until=None
        )
    updated = await repo.update(staff_id, updates, ctx.now())
    # Tokens carry role, station and division: a change there must not live on in old tokens.
    scope_changed = (updated.role, updated.station_id, updated.division_prefix) != (
        current.role,
        current.station_id,
        current.division_prefix,
    )
    if "password_hash" in updates or updates.get("active") is False or scope_changed:
        await revoke_sessions_of(ctx=ctx, subject=staff_id)
    return updated


async def ensure_first_admin(ctx: Context) -> None:
    """Start-up hook: create ``admin`` from HUIMIN_ADMIN_PASSWORD when no admin exists yet.

    Safe when several processes start at once: the unique username decides, the loser
    sees ``username_taken`` and moves on.
    """
    password = ctx.settings.admin_password
    repo = StaffRepository(ctx.db)
    if not password:
        if not await repo.any_with_role("admin"):
            log.warning(
                "no administrator account yet: restart with HUIMIN_ADMIN_PASSWORD=<a password> to create "
                "'%s', or run: python run.py create-staff --username %s --role admin",
                FIRST_ADMIN_USERNAME,
                FIRST_ADMIN_USERNAME,
            )
        return
    if await repo.any_with_role("admin"):
        return
    try:
        await repo.insert(
            username=FIRST_ADMIN_USERNAME,
            name="系统管理员 Administrator",
            role="admin",
            station_id=None,
            division_prefix=None,
            password_hash=await passwords.hash_password(password),
            now=ctx.now(),
        )
        log.info("first administrator account created", extra={"username": FIRST_ADMIN_USERNAME})
    except ConflictError:
        log.info("first administrator account exists already")
