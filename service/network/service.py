"""The station network against the plan: service functions, each enforcing who may do what.

Stations are read through the stations service, staff through the staff service, uploads
through the uploads service; this area owns only its own collections (see repository.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from service.common.context import Context
from service.common.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    ValidationFailedError,
)
from service.common.models import Page, Principal
from service.network import rules
from service.network.models import (
    GROUPINGS,
    Actor,
    DivisionFigures,
    NetworkRecord,
    NetworkStats,
    StationNetwork,
    StationRef,
    Verification,
)
from service.network.repository import NetworkRepository
from service.network.staffing import station_staffing
from service.stations import service as stations
from service.stations.divisions_data import division_table
from service.stations.models import Station
from service.uploads import service as uploads

SHANGHAI = ZoneInfo("Asia/Shanghai")
PAGE_READ = 1000


def _division_name(code: str) -> str:
    found = division_table().by_code.get(code)
    return found.name if found else ""


def _ref(station: Station) -> StationRef:
    """What the network reads of a station (names the station lacks come from the division list)."""
    return StationRef(
        id=station.id,
        code=station.code,
        name=station.name,
        county_code=station.county_code,
        county_name=station.county_name or _division_name(station.county_code),
        city_code=station.city_code,
        city_name=station.city_name or _division_name(station.city_code),
        capabilities=tuple(station.capabilities),
        active=station.active,
    )


def today_in_china(ctx: Context) -> date:
    """Today in Asia/Shanghai (dates of the record are days there)."""
    return ctx.now().astimezone(SHANGHAI).date()


def stamp(ctx: Context) -> datetime:
    """Now, to the millisecond the database keeps, so what a change returns is what a read gives."""
    now = ctx.now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def actor_of(principal: Principal) -> Actor:
    """Who acts, as the record keeps it."""
    return Actor(principal.subject, principal.role)


async def _station(ctx: Context, station_id: str) -> StationRef:
    return _ref(await stations.get_station(ctx=ctx, station_id=station_id))


async def stations_under(ctx: Context, prefix: str, *, include_inactive: bool = False) -> list[StationRef]:
    """The stations whose code starts with ``prefix``, by code, read page by page through the stations service."""
    county = prefix if len(prefix) == 6 else None
    city = prefix + "00" if len(prefix) == 4 else None
    out: list[StationRef] = []
    cursor: str | None = None
    while True:
        page = await stations.list_stations(
            ctx=ctx,
            county_code=county,
            city_code=city,
            include_inactive=include_inactive,
            limit=PAGE_READ,
            cursor=cursor,
        )
        out += [_ref(s) for s in page.items if s.code.startswith(prefix)]
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


async def networks_of(ctx: Context, refs: list[StationRef]) -> list[StationNetwork]:
    """The network view of each station: its record, staffing and latest verification."""
    ids = [r.id for r in refs]
    repo = NetworkRepository(ctx.db)
    records = await repo.get_many(ids)
    latest = await repo.latest_verifications(ids)
    staffing = await station_staffing(ctx=ctx, station_ids=ids)
    return [
        rules.station_network(r, records.get(r.id) or NetworkRecord(station_id=r.id), staffing[r.id], latest.get(r.id))
        for r in refs
    ]


async def _network_of(ctx: Context, station: StationRef, record: NetworkRecord | None = None) -> StationNetwork:
    """A station's network view; with ``record``, of that record (the one just written) rather than a re-read."""
    if record is None:
        return (await networks_of(ctx, [station]))[0]
    latest = (await NetworkRepository(ctx.db).latest_verifications([station.id])).get(station.id)
    staffing = (await station_staffing(ctx=ctx, station_ids=[station.id]))[station.id]
    return rules.station_network(station, record, staffing, latest)


# ---------------------------------------------------------------- one station


async def get_station_network(*, ctx: Context, principal: Principal, station_id: str) -> StationNetwork:
    """A station's construction record, six-haves checklist and latest verification."""
    station = await _station(ctx, station_id)
    rules.check_may_read(principal, station)
    return await _network_of(ctx, station)


def _changed() -> ConflictError:
    return ConflictError(
        "network_record_changed", "The station's record changed since you read it; reload and try again."
    )


def _invalid(errors: dict[str, list[str]]) -> ValidationFailedError:
    return ValidationFailedError("invalid_network_record", "The station's record is not valid; see errors.", errors)


def _where(record: NetworkRecord, upload_id: str) -> str:
    if upload_id in record.site.photos:
        return "site.photos"
    return "workflows" if any(upload_id in d.uploads for d in record.workflows) else "rules"


async def _check_uploads(
    ctx: Context, principal: Principal, changed: NetworkRecord, upload_ids: list[str]
) -> dict[str, list[str]]:
    """Problems of uploads newly referred to: each must be the caller's own (not, say, a case's photo)."""
    errors: dict[str, list[str]] = {}
    for upload_id in upload_ids:
        try:
            upload = await uploads.get_upload(ctx=ctx, principal=principal, upload_id=upload_id)
            mine = upload.owner == principal.subject or principal.role == "admin"
        except NotFoundError:
            mine = False
        if not mine:
            errors.setdefault(_where(changed, upload_id), []).append(
                f"No upload {upload_id} of yours exists; upload the file first."
            )
    return errors


async def update_station_network(
    *,
    ctx: Context,
    principal: Principal,
    station_id: str,
    changes: dict[str, Any],
    expected_revision: int | None = None,
) -> StationNetwork:
    """Change a station's record: its head keeps it, supervisors of its division set status and dates.

    ``changes`` may hold status, dates (merged; None removes one), site (merged), equipment,
    workflows and rules (replaced). ``expected_revision``: refuse with 409 when the record moved on.
    """
    station = await _station(ctx, station_id)
    repo = NetworkRepository(ctx.db)
    current = await repo.get(station.id) or NetworkRecord(station_id=station.id)
    rules.check_may_keep(principal, station, current, changes)
    if expected_revision is not None and expected_revision != current.revision:
        raise _changed()
    changed = rules.apply_changes(current, changes)
    if changed == current:  # nothing new: no revision, and a sign-off stays valid
        return await _network_of(ctx, station)
    errors = rules.check_dates(changed.status, changed.dates, today_in_china(ctx))
    errors.update(await _check_uploads(ctx, principal, changed, rules.new_uploads(current, changed)))
    if errors:
        raise _invalid(errors)
    changed = dataclasses.replace(
        changed, revision=current.revision + 1, updated_at=stamp(ctx), updated_by=actor_of(principal)
    )
    await repo.save(changed, expected_revision=current.revision)
    return await _network_of(ctx, station, changed)


async def verify_station_network(
    *,
    ctx: Context,
    principal: Principal,
    station_id: str,
    outcome: str,
    note: str | None = None,
    revision: int | None = None,
) -> Verification:
    """A supervisor of the station's division signs off (approved) or returns its record; kept forever.

    Approval needs all six haves met. ``revision``: the revision the supervisor looked at
    (409 when the record changed since).
    """
    station = await _station(ctx, station_id)
    rules.check_may_verify(principal, station)
    if outcome not in ("approved", "returned"):
        raise ValidationFailedError("invalid_verification", "Unknown outcome.", {"outcome": ["approved or returned."]})
    network = await _network_of(ctx, station)
    record = network.record
    if record.revision == 0:
        raise InvalidStateError("nothing_to_verify", "The station has recorded nothing yet.")
    if revision is not None and revision != record.revision:
        raise _changed()
    if outcome == "approved" and not network.compliant:
        missing = [c.have for c in network.checklist if not c.met]
        raise InvalidStateError(
            "six_haves_incomplete",
            f"The record does not meet all six haves yet (missing: {', '.join(missing)}); return it instead.",
            missing=missing,
        )
    if outcome == "returned" and not (note or "").strip():
        raise ValidationFailedError(
            "invalid_verification", "Say what is missing when returning a record.", {"note": ["Required to return."]}
        )
    return await NetworkRepository(ctx.db).add_verification(
        station_id=station.id,
        revision=record.revision,
        outcome=outcome,
        note=(note or "").strip() or None,
        by=actor_of(principal),
        at=stamp(ctx),
    )


async def list_verifications(*, ctx: Context, principal: Principal, station_id: str) -> list[Verification]:
    """The station's verifications, newest first (who, when, which revision, outcome)."""
    station = await _station(ctx, station_id)
    rules.check_may_read(principal, station)
    return await NetworkRepository(ctx.db).verifications_of(station.id)


async def open_station_photo(
    *, ctx: Context, principal: Principal, station_id: str, upload_id: str
) -> tuple[uploads.Upload, AsyncIterator[bytes]]:
    """An image the station's record refers to (site photo or document scan), for whoever may read the record."""
    station = await _station(ctx, station_id)
    rules.check_may_read(principal, station)
    record = await NetworkRepository(ctx.db).get(station.id)
    if record is None or upload_id not in rules.upload_ids(record):
        raise NotFoundError("upload_not_found", "There is no such upload.")
    return await uploads.open_referenced_upload(ctx=ctx, upload_id=upload_id)


# ---------------------------------------------------------------- the network of a division


async def list_station_network(
    *,
    ctx: Context,
    principal: Principal,
    division: str | None = None,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[StationNetwork]:
    """The network table of a division (a supervisor's own by default), by station code.

    Read a page of stations at a time from the cursor's code on, so a page costs about a page of
    stations and their records, not the whole division's.
    """
    prefix = rules.scope_of(principal, division)
    check_division(division)
    after = rules.decode_cursor(cursor) if cursor else None
    networks: list[StationNetwork] = []
    station_cursor: str | None = None
    while len(networks) <= limit:
        page = await stations.list_stations(
            ctx=ctx,
            county_code=prefix[:6] if len(prefix) >= 6 else None,
            city_code=prefix + "00" if len(prefix) == 4 else None,
            limit=limit + 1,
            cursor=station_cursor,
            after_code=after,
        )
        refs = [_ref(s) for s in page.items if s.code.startswith(prefix)]
        found = await networks_of(ctx, refs) if refs else []
        networks += [n for n in found if status is None or n.status == status]
        if page.next_cursor is None:
            break
        station_cursor = page.next_cursor
    items = networks[:limit]
    return Page(items=items, next_cursor=rules.encode_cursor(items[-1].station.code) if len(networks) > limit else None)


def check_division(code: str | None) -> None:
    """Refuse a division code the division list does not know (404 ``division_not_found``)."""
    if code is not None and code not in division_table().by_code:
        raise NotFoundError("division_not_found", f"No division has code {code}.")


def _township_universe(prefix: str, refs: list[StationRef]) -> set[str]:
    """Every township under the prefix (the NBS list), and township-like units or other codes that hold a station."""
    table = division_table()
    codes = {c for c, d in table.by_code.items() if d.level == "township" and c.startswith(prefix)}
    return codes | {r.code for r in refs}


def _name_of(code: str) -> tuple[str, str]:
    d = division_table().by_code.get(code)
    return (d.name, d.level) if d else ("", "division")


def _group_of(code: str, group_by: str) -> str:
    """The city or county-level division a township code belongs to."""
    if group_by == "city":
        return code[:4] + "00"
    d = division_table().by_code.get(code) or division_table().township_like.get(code)
    return d.parent if d is not None and d.parent else code[:6]


async def _figures(ctx: Context, prefix: str, group_by: str | None) -> NetworkStats:
    refs = await stations_under(ctx, prefix)
    networks = await networks_of(ctx, refs)
    townships = _township_universe(prefix, refs)
    code = rules.division_code_of(prefix)
    name, level = _name_of(code)
    total = rules.figures(code, name, level, townships, networks)
    groups: list[DivisionFigures] = []
    if group_by is not None:
        keys = sorted({_group_of(t, group_by) for t in townships})
        for key in keys:
            in_group = {t for t in townships if _group_of(t, group_by) == key}
            gname, glevel = _name_of(key)
            groups.append(
                rules.figures(key, gname, glevel, in_group, [n for n in networks if n.station.code in in_group])
            )
    return NetworkStats(division=total, group_by=group_by, groups=tuple(groups))


async def get_station_stats(
    *, ctx: Context, principal: Principal, division: str | None = None, group_by: str | None = None
) -> NetworkStats:
    """Townships, stations by status, coverage and six-haves compliance against the 100% target,
    for a division within the caller's (supervisors: their own by default; admins: the province)."""
    prefix = rules.scope_of(principal, division)
    check_division(division)
    if group_by is not None and group_by not in GROUPINGS:
        raise ValidationFailedError("invalid_group_by", "Unknown grouping.", {"group_by": ["city or county."]})
    return await _figures(ctx, prefix, group_by)


async def division_coverage(*, ctx: Context, division_code: str) -> DivisionFigures:
    """Read port for other areas (workforce, plan indicators): coverage and six-haves compliance of a
    division (6-digit code: province, city or county). No caller check: the calling area decides who
    may see what it builds from these figures."""
    check_division(division_code)
    return (await _figures(ctx, rules.scope_prefix(division_code), None)).division


async def division_coverage_by(*, ctx: Context, division_code: str, group_by: str) -> tuple[DivisionFigures, ...]:
    """Read port: the same figures for each city or county (``group_by``) under a division."""
    check_division(division_code)
    if group_by not in GROUPINGS:
        raise ValidationFailedError("invalid_group_by", "Unknown grouping.", {"group_by": ["city or county."]})
    return (await _figures(ctx, rules.scope_prefix(division_code), group_by)).groups
