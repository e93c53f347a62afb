"""What other areas may read of people and clients (cases, open311, notify, webhooks): the identity area's read port."""

from __future__ import annotations

from service.common.context import Context
from service.common.errors import NotFoundError
from service.identity.accounts import ApiClient, Resident, StaffMember
from service.identity.repository.clients import ApiClientsRepository
from service.identity.repository.residents import ResidentsRepository
from service.identity.repository.staff import StaffRepository


async def staff_member(*, ctx: Context, staff_id: str) -> StaffMember:
    """One staff account; NotFoundError when there is none."""
    return await StaffRepository(ctx.db).get(staff_id)


async def resident_by_phone(*, ctx: Context, phone: str) -> Resident | None:
    """The resident registered with this phone number, if any."""
    return await ResidentsRepository(ctx.db).find_by_phone(phone)


async def client_secret_hash(*, ctx: Context, client_id: str) -> tuple[ApiClient, str] | None:
    """An API client and the hash of its secret, if it exists."""
    return await ApiClientsRepository(ctx.db).secret_hash(client_id)


async def staff_or_none(*, ctx: Context, staff_id: str) -> StaffMember | None:
    """One staff account, or None when there is none."""
    try:
        return await StaffRepository(ctx.db).get(staff_id)
    except NotFoundError:
        return None


async def active_station_staff(*, ctx: Context, station_id: str, roles: tuple[str, ...]) -> list[StaffMember]:
    """Active staff of a station with one of the roles."""
    return await StaffRepository(ctx.db).active_at_station(station_id, roles)


async def active_supervisors_over(*, ctx: Context, division: str) -> list[StaffMember]:
    """Active supervisors whose division prefix covers ``division``."""
    supervisors = await StaffRepository(ctx.db).active_with_role("supervisor")
    return [s for s in supervisors if division.startswith(s.division_prefix or "\x00")]


async def resident_or_none(*, ctx: Context, resident_id: str) -> Resident | None:
    """One resident (with their openid and phone), or None when there is none."""
    try:
        return await ResidentsRepository(ctx.db).get(resident_id)
    except NotFoundError:
        return None


async def client_or_none(*, ctx: Context, client_id: str) -> ApiClient | None:
    """One API client, or None when there is none."""
    try:
        return await ApiClientsRepository(ctx.db).get(client_id)
    except NotFoundError:
        return None
