"""Township social-work stations: validation, admin changes, bulk import, seeding, lookups."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np

from service.catalog.service import get_service
from service.common.context import Context
from service.common.errors import (
    NotFoundError,
    ValidationFailedError,
)
from service.common.geo import point_doc_in, to_wgs84
from service.common.inputs import given
from service.common.models import Page, Principal, require_role
from service.common.paging import encode_cursor
from service.stations.fields import check_station_fields, complete_station
from service.stations.index import current_index, invalidate_index
from service.stations.inputs import StationChanges, StationRegistration
from service.stations.models import Station
from service.stations.repository import CountiesRepository, StationsRepository

ADMIN_ONLY = "Only an administrator may change stations."

# ---------------------------------------------------------------- field checks (pure)


# ---------------------------------------------------------------- admin changes


async def _fill_names(ctx: Context, doc: dict[str, Any]) -> None:
    if not doc.get("county_name"):
        doc["county_name"] = (await CountiesRepository(ctx.db).names()).get(doc["county_code"], "")
    if not doc.get("city_name"):
        page = await StationsRepository(ctx.db).list_page(
            county_code=None, city_code=doc["city_code"], active=None, limit=1, cursor=None
        )
        doc["city_name"] = page.items[0].city_name if page.items else ""


async def create_station(*, ctx: Context, principal: Principal, data: StationRegistration) -> Station:
    """Add a station; routing in every process sees it within a few seconds."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    fields, errors = check_station_fields(given(data), partial=False)
    if errors:
        raise ValidationFailedError("invalid_station", "The station is not valid; see errors.", errors)
    doc = complete_station(fields, ctx.now())
    await _fill_names(ctx, doc)
    station = await StationsRepository(ctx.db).insert(Station(id="", **doc))
    invalidate_index(ctx=ctx)
    return station


async def update_station(*, ctx: Context, principal: Principal, station_id: str, changes: StationChanges) -> Station:
    """Change some fields of a station."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    repo = StationsRepository(ctx.db)
    current = await repo.get(station_id)
    given_fields = given(changes)
    fields, errors = check_station_fields(given_fields, partial=True)
    for name in ("code", "name", "location"):
        if name in given_fields and given_fields[name] is None:
            errors[name] = ["Cannot be removed."]
    if "code" in fields and not fields["code"].startswith(fields.get("county_code", current.county_code)):
        errors.setdefault("code", []).append("The station code must start with its county code.")
    if errors:
        raise ValidationFailedError("invalid_station", "The change is not valid; see errors.", errors)
    fields["updated_at"] = ctx.now()
    station = await repo.update(station_id, fields)
    invalidate_index(ctx=ctx)
    return station


async def deactivate_station(*, ctx: Context, principal: Principal, station_id: str) -> Station:
    """Take a station out of routing (it is kept for its cases)."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    station = await StationsRepository(ctx.db).update(station_id, {"active": False, "updated_at": ctx.now()})
    invalidate_index(ctx=ctx)
    return station


async def adjust_open_cases(*, ctx: Context, station_id: str, delta: int) -> None:
    """Count a case opened (+1) or closed (-1) at a station; routing sees it within a second."""
    await StationsRepository(ctx.db).adjust_open_cases(station_id, delta)


# ---------------------------------------------------------------- reading


def in_coord_system(station: Station, coord_system: str) -> Station:
    """The station with its location in ``coord_system`` (WGS-84 stays stored)."""
    if coord_system == "wgs84":
        return station
    return dataclasses.replace(station, location=point_doc_in(station.location, coord_system) or station.location)


async def get_station(*, ctx: Context, station_id: str, coord_system: str = "wgs84") -> Station:
    """One station by id, its location in ``coord_system``."""
    return in_coord_system(await StationsRepository(ctx.db).get(station_id), coord_system)


async def list_stations(
    *,
    ctx: Context,
    county_code: str | None = None,
    city_code: str | None = None,
    include_inactive: bool = False,
    capability: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
    after_code: str | None = None,
) -> Page[Station]:
    """Stations by code, optionally of one county or city, or offering one capability; ``after_code``
    starts the list after that station code (as a cursor that ended there would)."""
    if cursor is None and after_code:
        cursor = encode_cursor(after_code)
    return await StationsRepository(ctx.db).list_page(
        county_code=county_code,
        city_code=city_code,
        active=None if include_inactive else True,
        capability=capability,
        limit=limit,
        cursor=cursor,
    )


async def _capability_of(ctx: Context, service_code: str) -> str:
    try:
        return (await get_service(ctx=ctx, code=service_code)).capability
    except NotFoundError:
        raise ValidationFailedError(
            "unknown_service", f"There is no service with code {service_code!r}.", {"service": ["Unknown service."]}
        ) from None


@dataclasses.dataclass(frozen=True, slots=True)
class NearbyStation:
    station: Station
    distance_km: float


async def find_nearby_stations(
    *,
    ctx: Context,
    lon: float,
    lat: float,
    coord_system: str = "wgs84",
    service_code: str | None = None,
    limit: int = 10,
) -> list[NearbyStation]:
    """Active stations nearest a point (offering a service, if given), from the routing index."""
    point = to_wgs84(lon, lat, coord_system)
    index = await current_index(ctx=ctx)
    if service_code is not None:
        mask = index.candidate_mask(await _capability_of(ctx, service_code), ())
    else:
        mask = np.ones(len(index), dtype=bool)
    radius = 25.0
    while True:
        idx, dist = index.nearest(point, mask, radius)
        if len(idx) >= limit or radius >= 2500:
            break
        radius *= 2
    idx, dist = idx[:limit], dist[:limit]
    stations = await StationsRepository(ctx.db).get_many([index.station(int(i)).id for i in idx])
    by_id = {s.id: s for s in stations}
    out = []
    for i, d in zip(idx, dist, strict=True):
        s = by_id.get(index.station(int(i)).id)
        if s is not None:
            out.append(NearbyStation(s, round(float(d), 3)))
    return out


# ---------------------------------------------------------------- bulk import


# ---------------------------------------------------------------- seeding


async def search_stations(
    *,
    ctx: Context,
    near: tuple[float, float] | None = None,
    coord_system: str = "wgs84",
    service: str | None = None,
    county: str | None = None,
    city: str | None = None,
    include_inactive: bool = False,
    limit: int = 20,
    cursor: str | None = None,
) -> Page[Any]:
    """Nearest stations to a point (one page, with distances), or the list by code with filters.

    ``coord_system`` is the system of ``near`` and of the locations returned (WGS-84 stays stored).
    """
    if near is not None:
        hits = await find_nearby_stations(
            ctx=ctx, lon=near[0], lat=near[1], coord_system=coord_system, service_code=service, limit=limit
        )
        return Page(
            items=[
                dataclasses.replace(h, station=in_coord_system(h.station, coord_system))
                for h in hits
                if (not county or h.station.county_code == county) and (not city or h.station.city_code == city)
            ],
            next_cursor=None,
        )
    # The capability is part of the query, so every page is full until the last.
    page = await list_stations(
        ctx=ctx,
        county_code=county,
        city_code=city,
        include_inactive=include_inactive,
        capability=await _capability_of(ctx, service) if service is not None else None,
        limit=limit,
        cursor=cursor,
    )
    return Page(items=[in_coord_system(s, coord_system) for s in page.items], next_cursor=page.next_cursor)


async def station_ids_by_code(*, ctx: Context, codes: Iterable[str]) -> dict[str, str]:
    """Map of station code -> station id for the codes that name a station."""
    return await StationsRepository(ctx.db).codes(codes)


async def stations_by_id(*, ctx: Context, ids: Iterable[str]) -> list[Station]:
    """Stations by id, in the order asked (unknown ids left out)."""
    return await StationsRepository(ctx.db).get_many(ids)
