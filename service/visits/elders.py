"""The visit register of elderly people in special difficulty (探访关爱对象): who, where, how often.

Station staff manage the people of their own station, supervisors those under their
division prefix, administrators everyone. The ID number is validated (GB 11643), stored
encrypted with a keyed lookup hash and only ever shown masked; every staff read of a
person's record is written to ``audit_log``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from service.audit import service as audit
from service.common import pii
from service.common.context import Context
from service.common.errors import (
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from service.common.inputs import given
from service.common.models import STAFF_ROLES, Page, Principal, require_role
from service.stations import service as stations
from service.visits.elder_fields import check_age_flags, check_elder_fields, id_card_facts, present
from service.visits.inputs import ElderChanges, ElderRegistration
from service.visits.models import END_REASONS, Elder, ElderFilter, RegisterScope
from service.visits.periods import local_date, period_of
from service.visits.repository.elders import EldersRepository
from service.visits.repository.visits import VisitSchedulesRepository
from service.visits.schedules import schedule_elders
from service.visits.tiers import TIER_RANK, tier_table

log = logging.getLogger("huimin.elders")
# Personal fields a staff read shows (the ID number only masked).
READ_FIELDS = ("name", "id_card_masked", "phone", "address", "location", "emergency_contacts")


# ---------------------------------------------------------------- who sees whom


STAFF_ONLY = "Only station staff and supervisors manage the visit register."


def require_staff(principal: Principal) -> None:
    """PermissionDeniedError unless the caller is staff (the register is staff-only)."""
    require_role(principal, STAFF_ROLES, code="staff_only", detail=STAFF_ONLY)


def register_scope(principal: Principal) -> RegisterScope:
    """The part of the register ``principal`` may see."""
    require_staff(principal)
    if principal.role == "admin":
        return RegisterScope()
    if principal.role == "supervisor":
        if not principal.division_prefix:
            raise PermissionDeniedError("no_division", "Your account has no division assigned.")
        return RegisterScope(township_prefix=principal.division_prefix)
    if not principal.station_id:
        raise PermissionDeniedError("no_station", "Your account has no station assigned.")
    return RegisterScope(station_id=principal.station_id)


def can_see(principal: Principal, *, station_id: str, township: str) -> bool:
    """True if ``principal`` may see a person of this station and township."""
    if principal.role == "admin":
        return True
    if principal.role == "supervisor":
        return bool(principal.division_prefix) and township.startswith(principal.division_prefix or "")
    if principal.role in ("worker", "station_head"):
        return principal.station_id is not None and principal.station_id == station_id
    return False


def _not_found(elder_id: str) -> NotFoundError:
    return NotFoundError("elder_not_found", f"There is no registered person {elder_id!r}.")


# ---------------------------------------------------------------- field checks (pure)


# ---------------------------------------------------------------- building a new record


async def _station_of(ctx: Context, township: str) -> str | None:
    return (await stations.station_ids_by_code(ctx=ctx, codes=[township])).get(township)


def _check_area(principal: Principal, station_id: str, township: str) -> None:
    if not can_see(principal, station_id=station_id, township=township):
        raise PermissionDeniedError(
            "outside_your_area", "You may register people only for your own station or division."
        )


def new_doc(
    ctx: Context, principal: Principal, fields: dict[str, Any], number: str, station_id: str, now: datetime
) -> dict[str, Any]:
    key = ctx.settings.data_key_bytes
    _, gender = id_card_facts(number)
    flags = fields.get("flags") or []
    suggested = tier_table(ctx.settings).suggest(flags, fields["township"])
    consent = fields.get("consent")
    if consent is not None:
        consent = {
            "given": consent["given"],
            "method": consent["method"],
            "at": consent.get("at") or now,
            "recorded_by": consent.get("recorded_by") or principal.subject,
        }
    township = fields["township"]
    return {
        "name": fields["name"],
        "id_card_masked": pii.mask_id_card(number),
        "id_card_enc": pii.encrypt(key, number, aad="elder.id_card"),
        "id_card_hash": pii.lookup_hash(key, number),
        "birth_date": fields["birth_date"],
        "gender": gender,
        "township": township,
        "station_id": station_id,
        "county_code": township[:6],
        "city_code": township[:4] + "00",
        "flags": flags,
        "suggested_tier": suggested,
        "tier": fields.get("tier") or suggested,
        # A tier staff chose is pinned: neither the tier rules nor new flags change it.
        "tier_pinned": bool(fields.get("tier")),
        "previous_tier": None,
        "tier_from": None,
        "phone": fields.get("phone"),
        "address": fields.get("address"),
        "location": fields.get("location"),
        "visitor_id": fields.get("visitor_id"),
        "emergency_contacts": fields.get("emergency_contacts") or [],
        "consent": consent,
        "active": True,
        "ended": None,
        "last_visited_at": None,
        "version": 1,
        "created_by": {"subject": principal.subject, "role": principal.role},
        "created_at": now,
        "updated_at": now,
    }


def validate_new(data: dict[str, Any], now: datetime) -> tuple[dict[str, Any], str | None, dict[str, list[str]]]:
    """Fields, the normalised ID number and the errors of a new person."""
    today = local_date(now)
    fields, errors = check_elder_fields(data, partial=False, now=now)
    number = None
    try:
        number = pii.validate_id_card(str(data.get("id_card") or ""), today=today)
    except ValidationFailedError as exc:
        errors.setdefault("id_card", []).extend(m for ms in exc.errors.values() for m in ms)
    if number:
        born, _ = id_card_facts(number)
        if fields.get("birth_date") and fields["birth_date"] != born:
            errors.setdefault("birth_date", []).append("Does not agree with the birth date in the ID number.")
        fields["birth_date"] = born
        fields.setdefault("flags", [])
        check_age_flags(fields, born, today, errors)
    return fields, number, errors


async def create_elder(*, ctx: Context, principal: Principal, data: ElderRegistration) -> Elder:
    """Put a person on the register of the station of their township, and schedule their first visit."""
    require_staff(principal)
    now = ctx.now()
    today = local_date(now)
    fields, number, errors = validate_new(given(data), now)
    if errors:
        code = "invalid_id_card" if list(errors) == ["id_card"] else "invalid_elder"
        raise ValidationFailedError(code, "The record is not valid; see errors.", errors)
    assert number is not None
    station_id = await _station_of(ctx, fields["township"])
    if station_id is None:
        raise ValidationFailedError(
            "unknown_township",
            f"No station serves township {fields['township']}.",
            {"township": ["Not the code of a known station."]},
        )
    _check_area(principal, station_id, fields["township"])
    doc = new_doc(ctx, principal, fields, number, station_id, now)
    elder = await EldersRepository(ctx.db).insert(doc)
    await schedule_elders(ctx=ctx, elders=[{**doc, "_id": elder.id}], at=now)
    return present(elder, today, tier_table(ctx.settings))


# ---------------------------------------------------------------- reading


async def _audit(ctx: Context, principal: Principal, action: str, elder_ids: list[str]) -> None:
    await audit.record_reads(
        ctx=ctx,
        principal=principal,
        action=action,
        target_kind="elder",
        target_ids=elder_ids,
        fields=list(READ_FIELDS),
        keyed_as="elder_id",
    )


async def load_visible(*, ctx: Context, principal: Principal, elder_id: str) -> Elder:
    """A person's record if ``principal`` may see it, else 404 (so other stations' people stay unknown)."""
    require_staff(principal)
    elder = await EldersRepository(ctx.db).get(elder_id)
    if not can_see(principal, station_id=elder.station_id, township=elder.township):
        raise _not_found(elder_id)
    return elder


async def get_elder(*, ctx: Context, principal: Principal, elder_id: str) -> Elder:
    """One person's record (ID number masked); the read is audit-logged."""
    elder = await load_visible(ctx=ctx, principal=principal, elder_id=elder_id)
    await _audit(ctx, principal, "elder.read", [elder.id])
    return present(elder, local_date(ctx.now()), tier_table(ctx.settings))


async def list_elders(
    *,
    ctx: Context,
    principal: Principal,
    station: str | None = None,
    tier: str | None = None,
    flag: str | None = None,
    active: bool | None = True,
    limit: int = 20,
    cursor: str | None = None,
) -> Page[Elder]:
    """People on the register the caller may see, filtered, newest registered first, one page; the read is
    audit-logged."""
    where = ElderFilter(register_scope(principal), station_id=station, tier=tier, flag=flag, active=active)
    page = await EldersRepository(ctx.db).list_page(where, limit=limit, cursor=cursor, now=ctx.now())
    await _audit(ctx, principal, "elder.list", [e.id for e in page.items])
    today = local_date(ctx.now())
    table = tier_table(ctx.settings)
    return Page(items=[present(e, today, table) for e in page.items], next_cursor=page.next_cursor)


# ---------------------------------------------------------------- changes


async def update_elder(*, ctx: Context, principal: Principal, elder_id: str, changes: ElderChanges) -> Elder:
    """Change a person's record; a new tier applies from the next ISO week.

    ``tier`` given: staff chose it, so it is pinned. ``tier_pinned: false``: the tier follows
    the tier rules again. New flags whose suggested tier is higher raise an unpinned tier.
    """
    elder = await load_visible(ctx=ctx, principal=principal, elder_id=elder_id)
    if not elder.active:
        raise InvalidStateError("elder_not_active", "An ended record cannot be changed.")
    now = ctx.now()
    today = local_date(now)
    table = tier_table(ctx.settings)
    given_fields = given(changes)
    pin = given_fields.pop("tier_pinned", None)
    fields, errors = check_elder_fields(given_fields, partial=True, now=now)
    if "birth_date" in fields and fields["birth_date"] != elder.birth_date:
        errors.setdefault("birth_date", []).append("Does not agree with the birth date in the ID number.")
    if "flags" in fields:
        check_age_flags(fields, elder.birth_date, today, errors)
    if pin is True and "tier" not in fields:
        errors.setdefault("tier_pinned", []).append("To pin a tier, give the tier.")
    if errors:
        raise ValidationFailedError("invalid_elder", "The change is not valid; see errors.", errors)
    fields.pop("birth_date", None)
    if "township" in fields and fields["township"] != elder.township:
        station_id = await _station_of(ctx, fields["township"])
        if station_id is None:
            raise ValidationFailedError(
                "unknown_township",
                f"No station serves township {fields['township']}.",
                {"township": ["Not the code of a known station."]},
            )
        _check_area(principal, station_id, fields["township"])
        fields.update(
            station_id=station_id, county_code=fields["township"][:6], city_code=fields["township"][:4] + "00"
        )
    if "consent" in fields and fields["consent"] is not None:
        c = fields["consent"]
        fields["consent"] = {**c, "at": c.get("at") or now, "recorded_by": c.get("recorded_by") or principal.subject}
    suggested = table.suggest(fields.get("flags", elder.flags), fields.get("township", elder.township))
    if "flags" in fields or "township" in fields:
        fields["suggested_tier"] = suggested
    new_tier = _new_tier(elder, fields, pin, suggested)
    if new_tier is not None:
        fields.update(tier_change(elder, new_tier, now))
    fields["updated_at"] = now
    updated = await EldersRepository(ctx.db).update(elder_id, elder.version, fields)
    return present(updated, today, table)


def _new_tier(elder: Elder, fields: dict[str, Any], pin: bool | None, suggested: str) -> str | None:
    """The tier a change sets (None: unchanged); sets ``tier_pinned`` in ``fields`` when that changes."""
    if "tier" in fields:
        fields["tier_pinned"] = pin is not False
        return str(fields.pop("tier"))
    if pin is False:
        fields["tier_pinned"] = False
        return suggested
    if not elder.tier_pinned and TIER_RANK[suggested] > TIER_RANK[elder.tier]:
        return suggested
    return None


def tier_change(elder: Elder, new_tier: str, now: datetime) -> dict[str, Any]:
    """The stored fields of a tier change: the tier in force now keeps the current ISO week."""
    in_force = elder.tier_at(now)
    if new_tier == in_force:
        return {"tier": new_tier, "previous_tier": None, "tier_from": None}
    return {"tier": new_tier, "previous_tier": in_force, "tier_from": period_of("week", now).end}


async def end_elder(
    *, ctx: Context, principal: Principal, elder_id: str, reason: str, note: str | None = None
) -> Elder:
    """Take a person off the active register (moved, deceased, in care, other).

    From this moment they leave the due list and the visit rate: their unvisited schedules of
    periods not yet over are withdrawn (kept, marked ``withdrawn``); the history stays.
    """
    await load_visible(ctx=ctx, principal=principal, elder_id=elder_id)
    if reason not in END_REASONS:
        raise ValidationFailedError(
            "invalid_end_reason", "Unknown reason.", {"reason": [f"Must be one of {', '.join(END_REASONS)}."]}
        )
    now = ctx.now()
    ended = {"reason": reason, "note": note, "at": now, "by": principal.subject}
    elder = await EldersRepository(ctx.db).end(elder_id, ended, now)
    await VisitSchedulesRepository(ctx.db).withdraw_open(elder_id, at=now, reason=f"ended:{reason}")
    return present(elder, local_date(now), tier_table(ctx.settings))


# ---------------------------------------------------------------- the tier rules


# ---------------------------------------------------------------- bulk import
