"""What other areas may read of people and clients (cases, open311): the identity area's read port."""

from __future__ import annotations

from service.common.context import Context
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
