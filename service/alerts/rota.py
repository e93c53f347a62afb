"""The on-duty rota (值班表) of a station: who is on call when, with the phone to text."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from service.alerts import rules
from service.alerts.access import manages_rota, require_staff, sees_station
from service.alerts.inputs import RotaShift
from service.alerts.models import Recipient, RotaEntry
from service.alerts.repository import RotaRepository
from service.common.context import Context
from service.common.errors import NotFoundError, PermissionDeniedError, ValidationFailedError
from service.common.models import SYSTEM, Principal
from service.common.pii import mobile_or_none
from service.identity import staff
from service.stations import service as stations

MAX_SHIFT = timedelta(days=7)
MAX_LISTED = 200


async def _station(ctx: Context, principal: Principal, station_id: str) -> Any:
    try:
        station = await stations.get_station(ctx=ctx, station_id=station_id)
    except NotFoundError:
        station = None
    if station is None or not sees_station(principal, station_id=station.id, township=station.code):
        raise NotFoundError("station_not_found", f"There is no station {station_id!r}.")
    return station


async def add_rota_entry(*, ctx: Context, principal: Principal, station_id: str, data: RotaShift) -> RotaEntry:
    """Put a worker of the station on duty for a shift (station heads, supervisors over it, admins)."""
    require_staff(principal)
    station = await _station(ctx, principal, station_id)
    if not manages_rota(principal, station_id=station.id, township=station.code):
        raise PermissionDeniedError(
            "rota_managers_only", "Only the station head, a supervisor or an admin sets the rota."
        )
    starts, ends = data.starts_at, data.ends_at
    errors: dict[str, list[str]] = {}
    if ends <= starts:
        errors["ends_at"] = ["Must be after starts_at."]
    elif ends - starts > MAX_SHIFT:
        errors["ends_at"] = ["A shift lasts at most 7 days."]
    try:
        member = await staff.get_staff(ctx=ctx, principal=SYSTEM, staff_id=data.staff_id)
    except NotFoundError:
        member = None
    if (
        member is None
        or not member.active
        or member.station_id != station.id
        or member.role
        not in (
            "worker",
            "station_head",
        )
    ):
        errors["staff_id"] = ["Not an active worker or head of this station."]
    phone = mobile_or_none(data.phone or (member.phone if member else None))
    if not phone:
        errors["phone"] = ["An on-call mainland mobile number is required (the account has none)."]
    if errors:
        raise ValidationFailedError(
            "invalid_rota_entry", "The rota entry cannot be stored as given; see errors.", errors
        )
    return await RotaRepository(ctx.db).insert(
        {
            "station_id": station.id,
            "staff_id": data.staff_id,
            "phone": phone,
            "starts_at": starts,
            "ends_at": ends,
            "note": data.note,
            "created_by": principal.subject,
            "created_at": ctx.now(),
        }
    )


async def list_rota(
    *, ctx: Context, principal: Principal, station_id: str, at: datetime | None = None
) -> list[RotaEntry]:
    """A station's shifts not over yet (from ``at``, default now), soonest first."""
    require_staff(principal)
    station = await _station(ctx, principal, station_id)
    entries = await RotaRepository(ctx.db).ending_after(station.id, at or ctx.now(), MAX_LISTED)
    names: dict[str, str | None] = {}
    for sid in {e.staff_id for e in entries}:
        try:
            names[sid] = (await staff.get_staff(ctx=ctx, principal=SYSTEM, staff_id=sid)).name
        except NotFoundError:
            names[sid] = None
    return [dataclasses.replace(e, staff_name=names.get(e.staff_id)) for e in entries]


async def remove_rota_entry(*, ctx: Context, principal: Principal, entry_id: str) -> None:
    """Take a shift off the rota."""
    require_staff(principal)
    repo = RotaRepository(ctx.db)
    entry = await repo.get(entry_id)
    station = await _station(ctx, principal, entry.station_id)
    if not manages_rota(principal, station_id=station.id, township=station.code):
        raise PermissionDeniedError(
            "rota_managers_only", "Only the station head, a supervisor or an admin sets the rota."
        )
    await repo.delete(entry_id)


async def _station_staff(ctx: Context, station_id: str, role: str) -> list[Recipient]:
    out: list[Recipient] = []
    cursor = None
    while True:
        page = await staff.list_staff(
            ctx=ctx, principal=SYSTEM, role=role, station_id=station_id, limit=100, cursor=cursor
        )
        out.extend(Recipient(m.id, m.role) for m in page.items if m.active)
        cursor = page.next_cursor
        if not cursor:
            return out


async def first_responders(*, ctx: Context, station_id: str, at: datetime) -> list[Recipient]:
    """Who hears of an urgent alert first: the on-duty staff of the station, else its workers."""
    entries = rules.on_duty(await RotaRepository(ctx.db).covering(station_id, at), at)
    if entries:
        seen: dict[str, Recipient] = {}
        for e in entries:
            seen.setdefault(e.staff_id, Recipient(e.staff_id, "on_duty", e.phone))
        return list(seen.values())
    return await _station_staff(ctx, station_id, "worker")


async def escalation_targets(*, ctx: Context, station_id: str, county_code: str, to: str) -> list[Recipient]:
    """The people one escalation step reaches: the station's heads, or supervisors over the county."""
    if to == "station_head":
        return await _station_staff(ctx, station_id, "station_head")
    covering: list[tuple[int, Recipient]] = []
    cursor = None
    while True:
        page = await staff.list_staff(ctx=ctx, principal=SYSTEM, role="supervisor", limit=100, cursor=cursor)
        covering.extend(
            (len(m.division_prefix), Recipient(m.id, m.role))
            for m in page.items
            if m.active and m.division_prefix and county_code.startswith(m.division_prefix)
        )
        cursor = page.next_cursor
        if not cursor:
            break
    # The county's own supervisors; a county without any: the nearest level above that has some.
    nearest = max((n for n, _ in covering), default=0)
    return [r for n, r in covering if n == nearest]
