"""The visit register of elderly people in special difficulty (探访关爱对象): who, where, how often.

Station staff manage the people of their own station, supervisors those under their
division prefix, administrators everyone. The ID number is validated (GB 11643), stored
encrypted with a keyed lookup hash and only ever shown masked; every staff read of a
person's record is written to ``audit_log``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from service import pii
from service.context import Context
from service.elders_model import CONSENT_METHODS, END_REASONS, FLAGS, VERY_OLD_AGE, Elder
from service.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from service.geo import COORD_SYSTEMS, to_wgs84
from service.imports import RowError, csv_rows, decode_text, refuse_if_errors
from service.models import Page, Principal
from service.pii import mask_name
from service.storage.elders import ElderAuditRepository, EldersRepository
from service.storage.stations import StationsRepository
from service.storage.visits import VisitSchedulesRepository
from service.visit_periods import TIERS, age_on, local_date, period_of
from service.visit_schedules import schedule_elders
from service.visit_tiers import TIER_RANK, TierTable, tier_table

log = logging.getLogger("huimin.elders")
MAX_CONTACTS = 5
# Times a record may carry (consent, visits): nothing before the programme's records began,
# nothing in the future beyond clock skew.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(minutes=5)
# Personal fields a staff read shows (the ID number only masked).
READ_FIELDS = ("name", "id_card_masked", "phone", "address", "location", "emergency_contacts")
_PHONE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")
_TOWNSHIP = re.compile(r"^[1-9]\d{8}$")
STAFF = ("worker", "station_head", "supervisor", "admin")
CSV_REQUIRED = ("name", "id_card", "township")
CSV_OPTIONAL = (
    "birth_date",
    "phone",
    "address",
    "lon",
    "lat",
    "coord_system",
    "flags",
    "tier",
    "visitor_id",
    "consent_given",
    "consent_method",
    "emergency_contact_name",
    "emergency_contact_relation",
    "emergency_contact_phone",
)


# ---------------------------------------------------------------- who sees whom


def _require_staff(principal: Principal) -> None:
    if principal.role not in STAFF:
        raise PermissionDeniedError("staff_only", "Only station staff and supervisors manage the visit register.")


def scope_query(principal: Principal) -> dict[str, Any]:
    """The register filter for what ``principal`` may see."""
    _require_staff(principal)
    if principal.role == "admin":
        return {}
    if principal.role == "supervisor":
        if not principal.division_prefix:
            raise PermissionDeniedError("no_division", "Your account has no division assigned.")
        return {"township": {"$regex": f"^{re.escape(principal.division_prefix)}"}}
    if not principal.station_id:
        raise PermissionDeniedError("no_station", "Your account has no station assigned.")
    return {"station_id": principal.station_id}


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


def has_control_chars(text: str) -> bool:
    """True if ``text`` holds a control or format character (a tab, line break, NUL, bidi override ...)."""
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def sane_time(value: Any, now: datetime, *, earliest: datetime = EARLIEST) -> str | None:
    """Why ``value`` is not a time a record may carry (before ``earliest`` or in the future), or None."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        return "Must be a date-time with a UTC offset."
    # Compare the year first: converting year 1 or 9999 with an offset to UTC overflows.
    if not earliest.year - 1 <= value.year <= now.year + 1 or value < earliest:
        return f"Must be between {earliest.date().isoformat()} and now."
    if value > now + CLOCK_SKEW:
        return "Must not be in the future."
    return None


def _text(limit: int) -> Callable[[Any], str]:
    def fn(v: Any) -> str:
        if not isinstance(v, str) or not v.strip():
            raise ValueError("Must be non-empty text.")
        if has_control_chars(v.strip()):
            raise ValueError("Must not contain control characters (tabs, line breaks and the like).")
        if len(v.strip()) > limit:
            raise ValueError(f"At most {limit} characters.")
        return v.strip()

    return fn


def _phone(v: Any) -> str:
    number = re.sub(r"[\s()]", "", str(v or ""))
    number = re.sub(r"^(\+86|0086)-?", "", number)
    if not _PHONE.match(number):
        raise ValueError("Must be a mainland mobile (11 digits) or landline (0551-12345678) number.")
    return number


def _flags(v: Any) -> list[str]:
    if isinstance(v, str):
        v = [p for p in re.split(r"[;|,\s]+", v) if p]
    if not isinstance(v, list) or not all(isinstance(f, str) for f in v):
        raise ValueError("Must be a list of situation flags.")
    bad = [f for f in v if f not in FLAGS]
    if bad:
        raise ValueError(f"Unknown flag {bad[0]!r}; use {', '.join(FLAGS)}.")
    return sorted(set(v), key=FLAGS.index)


def _tier(v: Any) -> str:
    if v not in TIERS:
        raise ValueError(f"Must be one of {', '.join(TIERS)}.")
    return str(v)


def _location(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict) or "lon" not in v or "lat" not in v:
        raise ValueError("Give {lon, lat, coord_system}.")
    system = v.get("coord_system") or "wgs84"
    if system not in COORD_SYSTEMS:
        raise ValueError(f"coord_system must be one of {', '.join(COORD_SYSTEMS)}.")
    try:
        point = to_wgs84(v["lon"], v["lat"], system)
    except ValidationFailedError as exc:
        raise ValueError("; ".join(m for ms in exc.errors.values() for m in ms)) from None
    return {"type": "Point", "coordinates": [round(point.lon, 7), round(point.lat, 7)]}


def _contacts(v: Any) -> list[dict[str, str]]:
    if not isinstance(v, list) or len(v) > MAX_CONTACTS:
        raise ValueError(f"Must be a list of at most {MAX_CONTACTS} contacts.")
    out = []
    for i, c in enumerate(v):
        if not isinstance(c, dict):
            raise ValueError(f"Contact {i + 1}: must be {{name, relation, phone}}.")
        try:
            out.append(
                {
                    "name": _text(50)(c.get("name")),
                    "relation": _text(20)(c.get("relation")),
                    "phone": _phone(c.get("phone")),
                }
            )
        except ValueError as exc:
            raise ValueError(f"Contact {i + 1}: {exc}") from None
    return out


def _date(v: Any) -> str:
    if isinstance(v, datetime):
        v = v.date()
    if isinstance(v, date):
        return v.isoformat()
    try:
        return date.fromisoformat(str(v).strip()).isoformat()
    except ValueError:
        raise ValueError("Must be a date (YYYY-MM-DD).") from None


def check_elder_fields(
    data: dict[str, Any], *, partial: bool, now: datetime
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Validate and normalise register fields (not the ID number); returns (clean fields, errors by field)."""
    out: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}

    def attempt(name: str, fn: Callable[[Any], Any]) -> None:
        if name not in data:
            return
        if data[name] is None and name not in ("name", "township"):
            out[name] = [] if name in ("flags", "emergency_contacts") else None
            return
        try:
            out[name] = fn(data[name])
        except (ValueError, TypeError) as exc:
            errors.setdefault(name, []).append(str(exc) or "Invalid value.")

    if not partial:
        for name in ("name", "township"):
            if data.get(name) in (None, ""):
                errors[name] = ["Required."]
    attempt("name", _text(50))
    attempt("township", lambda v: _township(v))
    attempt("birth_date", _date)
    attempt("phone", _phone)
    attempt("address", _text(200))
    attempt("location", _location)
    attempt("flags", _flags)
    attempt("tier", _tier)
    attempt("visitor_id", _text(64))
    attempt("emergency_contacts", _contacts)
    if "consent" in data and data["consent"] is not None:
        c = data["consent"]
        if not isinstance(c, dict) or not isinstance(c.get("given"), bool):
            errors["consent"] = ["Give {given: true|false, method: written|verbal, at?, recorded_by?}."]
        elif c.get("method") not in CONSENT_METHODS:
            errors["consent"] = [f"method must be one of {', '.join(CONSENT_METHODS)}."]
        elif c.get("at") is not None and (problem := sane_time(c["at"], now)):
            errors["consent.at"] = [problem]
        else:
            out["consent"] = dict(c)
    return out, errors


def _township(v: Any) -> str:
    text = str(v).strip()
    if re.fullmatch(r"\d{12}", text) and text.endswith("000"):
        text = text[:9]
    if not _TOWNSHIP.match(text):
        raise ValueError("Must be a 9-digit township division code.")
    return text


def id_card_facts(number: str) -> tuple[str, str]:
    """Birth date (YYYY-MM-DD) and gender (male, female) written in an ID number."""
    born = f"{number[6:10]}-{number[10:12]}-{number[12:14]}"
    return born, "male" if int(number[16]) % 2 else "female"


def _check_age_flags(fields: dict[str, Any], birth: str, today: date, errors: dict[str, list[str]]) -> None:
    age = age_on(date.fromisoformat(birth), today)
    flags = fields.get("flags")
    if flags is None:
        return
    if age >= VERY_OLD_AGE and "very_old" not in flags:
        fields["flags"] = sorted({*flags, "very_old"}, key=FLAGS.index)
    elif age < VERY_OLD_AGE and "very_old" in flags:
        errors.setdefault("flags", []).append(
            f"very_old (高龄) needs an age of {VERY_OLD_AGE} or more; the person is {age}."
        )


def flags_on(elder: Elder, today: date) -> list[str]:
    """The person's flags as of ``today``: 高龄 (very_old) is added from the birth date."""
    flags = elder.flags
    if age_on(date.fromisoformat(elder.birth_date), today) >= VERY_OLD_AGE and "very_old" not in flags:
        flags = sorted({*flags, "very_old"}, key=FLAGS.index)
    return flags


def present(elder: Elder, today: date, table: TierTable) -> Elder:
    """A record as shown: age, the 80+ flag and the suggested tier as of ``today``."""
    age = age_on(date.fromisoformat(elder.birth_date), today)
    flags = flags_on(elder, today)
    return dataclasses.replace(elder, age=age, flags=flags, suggested_tier=table.suggest(flags, elder.township))


# ---------------------------------------------------------------- building a new record


async def _station_of(ctx: Context, township: str) -> str | None:
    return (await StationsRepository(ctx.db).codes([township])).get(township)


def _check_area(principal: Principal, station_id: str, township: str) -> None:
    if not can_see(principal, station_id=station_id, township=township):
        raise PermissionDeniedError(
            "outside_your_area", "You may register people only for your own station or division."
        )


def _new_doc(
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


def _validate_new(data: dict[str, Any], now: datetime) -> tuple[dict[str, Any], str | None, dict[str, list[str]]]:
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
        _check_age_flags(fields, born, today, errors)
    return fields, number, errors


async def create_elder(*, ctx: Context, principal: Principal, data: dict[str, Any]) -> Elder:
    """Put a person on the register of the station of their township, and schedule their first visit."""
    _require_staff(principal)
    now = ctx.now()
    today = local_date(now)
    fields, number, errors = _validate_new(data, now)
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
    doc = _new_doc(ctx, principal, fields, number, station_id, now)
    elder = await EldersRepository(ctx.db).insert(doc)
    await schedule_elders(ctx=ctx, elders=[{**doc, "_id": elder.id}], at=now)
    return present(elder, today, tier_table(ctx.settings))


# ---------------------------------------------------------------- reading


async def _audit(ctx: Context, principal: Principal, action: str, elder_ids: list[str]) -> None:
    await ElderAuditRepository(ctx.db).record(
        actor={"subject": principal.subject, "role": principal.role},
        action=action,
        elder_ids=elder_ids,
        at=ctx.now(),
        fields=list(READ_FIELDS),
    )


async def load_visible(*, ctx: Context, principal: Principal, elder_id: str) -> Elder:
    """A person's record if ``principal`` may see it, else 404 (so other stations' people stay unknown)."""
    _require_staff(principal)
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
    """People on the register the caller may see, filtered, one page; the read is audit-logged."""
    query = scope_query(principal)
    if station:
        query = {"$and": [query, {"station_id": station}]} if query else {"station_id": station}
    if tier:
        query["tier"] = tier
    if flag:
        query["flags"] = flag
    if active is not None:
        query["active"] = active
    page = await EldersRepository(ctx.db).list_page(query, limit=limit, cursor=cursor)
    await _audit(ctx, principal, "elder.list", [e.id for e in page.items])
    today = local_date(ctx.now())
    table = tier_table(ctx.settings)
    return Page(items=[present(e, today, table) for e in page.items], next_cursor=page.next_cursor)


# ---------------------------------------------------------------- changes


async def update_elder(*, ctx: Context, principal: Principal, elder_id: str, changes: dict[str, Any]) -> Elder:
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
    if "id_card" in changes:
        raise ValidationFailedError(
            "invalid_elder",
            "The ID number cannot be changed; end this record and register the person anew.",
            {"id_card": ["Read-only."]},
        )
    pin = changes.pop("tier_pinned", None)
    fields, errors = check_elder_fields(changes, partial=True, now=now)
    if "birth_date" in fields and fields["birth_date"] != elder.birth_date:
        errors.setdefault("birth_date", []).append("Does not agree with the birth date in the ID number.")
    if "flags" in fields:
        _check_age_flags(fields, elder.birth_date, today, errors)
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


def tier_rules(*, ctx: Context, principal: Principal) -> TierTable:
    """The per-province table of default tiers in force (read-only)."""
    _require_staff(principal)
    return tier_table(ctx.settings)


@dataclasses.dataclass(frozen=True, slots=True)
class TierMove:
    elder_id: str
    name_masked: str
    station_id: str
    township: str
    from_tier: str
    to_tier: str
    effective_from: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class TierRulesReport:
    dry_run: bool
    source: str
    checked: int
    pinned: int
    moving: int
    written: int
    moves: tuple[TierMove, ...]
    moves_truncated: bool


async def apply_tier_rules(
    *, ctx: Context, principal: Principal, dry_run: bool, list_limit: int = 1000
) -> TierRulesReport:
    """Move every active person whose tier is not pinned to the tier the rules suggest (from the next week).

    A dry run only lists who would move. Flags are taken as of today (高龄 from the birth date).
    """
    if principal.role != "admin":
        raise PermissionDeniedError("admin_only", "Only administrators apply the tier rules to the register.")
    now = ctx.now()
    today = local_date(now)
    table = tier_table(ctx.settings)
    repo = EldersRepository(ctx.db)
    checked = pinned = written = 0
    moves: list[TierMove] = []
    moving = 0
    async for batch in repo.active_records(500):
        for elder in batch:
            checked += 1
            suggested = table.suggest(flags_on(elder, today), elder.township)
            if elder.tier_pinned:
                pinned += 1
            if elder.tier_pinned or suggested == elder.tier:
                if not dry_run and suggested != elder.suggested_tier:
                    await repo.set_suggested(elder.id, suggested)
                continue
            moving += 1
            change = tier_change(elder, suggested, now)
            if len(moves) < list_limit:
                moves.append(
                    TierMove(
                        elder_id=elder.id,
                        name_masked=mask_name(elder.name),
                        station_id=elder.station_id,
                        township=elder.township,
                        from_tier=elder.tier,
                        to_tier=suggested,
                        effective_from=change["tier_from"] or now,
                    )
                )
            if not dry_run:
                try:
                    await repo.update(
                        elder.id, elder.version, {**change, "suggested_tier": suggested, "updated_at": now}
                    )
                    written += 1
                except ConflictError:
                    log.warning("tier rules: %s changed meanwhile; left for the next run", elder.id)
    return TierRulesReport(
        dry_run=dry_run,
        source=table.source,
        checked=checked,
        pinned=pinned,
        moving=moving,
        written=written,
        moves=tuple(moves),
        moves_truncated=moving > len(moves),
    )


# ---------------------------------------------------------------- bulk import


@dataclasses.dataclass(frozen=True, slots=True)
class ElderImportReport:
    dry_run: bool
    total: int
    to_create: int
    written: bool
    encoding: str = "utf-8"
    errors: tuple[RowError, ...] = ()


def _csv_data(row: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        k: row[k]
        for k in ("name", "id_card", "township", "birth_date", "phone", "address", "flags", "tier", "visitor_id")
        if k in row
    }
    if "lon" in row or "lat" in row:
        data["location"] = {"lon": row.get("lon"), "lat": row.get("lat"), "coord_system": row.get("coord_system")}
    if "emergency_contact_name" in row or "emergency_contact_phone" in row:
        data["emergency_contacts"] = [
            {
                "name": row.get("emergency_contact_name"),
                "relation": row.get("emergency_contact_relation") or "家属",
                "phone": row.get("emergency_contact_phone"),
            }
        ]
    if "consent_given" in row:
        given = str(row["consent_given"]).lower() in ("1", "true", "yes", "y", "是")
        data["consent"] = {"given": given, "method": row.get("consent_method") or "written"}
    return data


def import_doc(*, ctx: Context, principal: Principal, row: dict[str, Any], station_id: str) -> dict[str, Any]:
    """The register document the CSV import writes for one row (checked the same way); for bulk loaders."""
    fields, number, errors = _validate_new(_csv_data(row), ctx.now())
    if errors or number is None:
        raise ValidationFailedError("invalid_elder", "The row is not valid; see errors.", errors)
    return _new_doc(ctx, principal, fields, number, station_id, ctx.now())


async def import_elders(
    *,
    ctx: Context,
    principal: Principal,
    body: bytes,
    content_type: str,
    dry_run: bool,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ElderImportReport:
    """Check every row of a register CSV; unless a dry run, register all of them or none."""
    _require_staff(principal)
    if content_type != "text/csv":
        raise UnsupportedMediaTypeError("unsupported_media_type", "Send the register as text/csv.")
    text, encoding = decode_text(body)
    rows = csv_rows(text, required=CSV_REQUIRED, optional=CSV_OPTIONAL, what="elders")
    now = ctx.now()
    errors: list[RowError] = []
    checked: list[tuple[int, dict[str, Any], str]] = []
    for line, row in rows:
        if "__error__" in row:
            errors.append(RowError(line, "_row", row["__error__"]))
            continue
        fields, number, problems = _validate_new(_csv_data(row), now)
        for name, msgs in problems.items():
            errors += [RowError(line, name, m) for m in msgs]
        if not problems and number:
            checked.append((line, fields, number))
    stations = await StationsRepository(ctx.db).codes({f["township"] for _, f, _ in checked})
    key = ctx.settings.data_key_bytes
    hashes = {n: pii.lookup_hash(key, n) for _, _, n in checked}
    taken = await EldersRepository(ctx.db).active_hashes(list(hashes.values())) if hashes else set()
    seen: dict[str, int] = {}
    docs = []
    for line, fields, number in checked:
        station_id = stations.get(fields["township"])
        if station_id is None:
            errors.append(RowError(line, "township", f"No station serves township {fields['township']}."))
            continue
        if not can_see(principal, station_id=station_id, township=fields["township"]):
            errors.append(RowError(line, "township", "Outside your station or division."))
            continue
        h = hashes[number]
        if h in taken:
            errors.append(RowError(line, "id_card", "Already on an active visit register."))
            continue
        if h in seen:
            errors.append(RowError(line, "id_card", f"The same ID number is on line {seen[h]}."))
            continue
        seen[h] = line
        docs.append(_new_doc(ctx, principal, fields, number, station_id, now))
    errors.sort(key=lambda e: e.row)
    report = ElderImportReport(
        dry_run=dry_run,
        total=len(rows),
        to_create=len(docs),
        written=False,
        encoding=encoding,
        errors=tuple(errors),
    )
    if dry_run:
        return report
    refuse_if_errors(errors)
    if not docs:
        return report
    if on_total:
        on_total(len(docs))
    ids = await EldersRepository(ctx.db).insert_all(docs, progress)
    await schedule_elders(ctx=ctx, elders=[{**d, "_id": i} for d, i in zip(docs, ids, strict=True)], at=now)
    return dataclasses.replace(report, written=True)
