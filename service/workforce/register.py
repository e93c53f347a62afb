"""The social-worker register (社会工作人才库): who, what qualification, where they work, in what role.

Administrators manage every entry, supervisors those working in their division; station
staff read their own station's people. The ID number is validated (GB 11643), stored
encrypted with a keyed hash for lookup, and only ever shown masked; the phone is shown in
full only to the person themselves. Every change is kept in the entry's history.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from service.common import pii
from service.common.context import Context
from service.common.errors import (
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from service.common.inputs import given
from service.common.models import Page, Principal
from service.identity import directory
from service.stations import service as stations
from service.stations.models import Station
from service.visits.periods import local_date
from service.workforce import checks, rules
from service.workforce.inputs import PersonChanges, PersonRegistration
from service.workforce.models import HistoryEntry, PeopleFilter, Person, ReadScope
from service.workforce.repository.people import flat_of, history_document, person_changes, person_document
from service.workforce.repository.store import WorkforceRepository

STATION_PAGE = 100


# ---------------------------------------------------------------- who may do what


MANAGERS_ONLY = "Only administrators and supervisors change the register."
STAFF_ONLY = "The register is for staff."


def actor_of(principal: Principal) -> dict[str, str]:
    return {"subject": principal.subject, "role": principal.role}


def visible(principal: Principal, person: Person) -> bool:
    """True if ``principal`` may read this entry."""
    return rules.may_see_person(
        principal, division=person.division, station_id=person.employer.station_id, staff_id=person.staff_id
    )


def present(principal: Principal, person: Person) -> Person:
    """An entry as ``principal`` sees it (phone masked except to the person themselves)."""
    return dataclasses.replace(person, phone=rules.show_phone(principal, person.phone, person.staff_id))


def read_scope(principal: Principal) -> ReadScope:
    """The part of the register ``principal`` may read."""
    rules.require_staff(principal, detail=STAFF_ONLY)
    if principal.role == "admin":
        return ReadScope()
    if principal.role == "supervisor":
        if not principal.division_prefix:
            raise PermissionDeniedError("no_division", rules.NO_DIVISION)
        return ReadScope(prefix=principal.division_prefix)
    if not principal.station_id:
        raise PermissionDeniedError("no_station", "Your account has no station assigned.")
    return ReadScope(station_id=principal.station_id)


# ---------------------------------------------------------------- reading other areas


async def stations_by_code(ctx: Context, codes: set[str]) -> dict[str, Station]:
    """Active stations by township code, read through the stations service (one county at a time)."""
    found: dict[str, Station] = {}
    for county in sorted({c[:6] for c in codes}):
        cursor = None
        while True:
            page = await stations.list_stations(ctx=ctx, county_code=county, limit=STATION_PAGE, cursor=cursor)
            found.update({s.code: s for s in page.items if s.code in codes})
            cursor = page.next_cursor
            if cursor is None:
                break
    return found


async def _station(ctx: Context, station_id: str) -> Station | None:
    try:
        station = await stations.get_station(ctx=ctx, station_id=station_id)
    except NotFoundError:
        return None
    return station if station.active else None


async def staff_exists(ctx: Context, staff_id: str) -> bool:
    # An existence check of the link only (nothing of the account is shown), through identity's read port.
    try:
        await directory.staff_member(ctx=ctx, staff_id=staff_id)
    except NotFoundError:
        return False
    return True


# ---------------------------------------------------------------- checks


def id_card_facts(number: str) -> tuple[str, str]:
    """Birth date (YYYY-MM-DD) and gender written in an ID number."""
    return f"{number[6:10]}-{number[10:12]}-{number[12:14]}", "male" if int(number[16]) % 2 else "female"


def _check_new(data: dict[str, Any], today: date) -> tuple[dict[str, Any], str | None, dict[str, list[str]]]:
    fields, errors = checks.check_person_fields(data, today=today, partial=False)
    number = None
    if "id_card" not in errors:
        try:
            number = pii.validate_id_card(str(data.get("id_card") or ""), today=today)
        except ValidationFailedError as exc:
            errors.setdefault("id_card", []).extend(m for ms in exc.errors.values() for m in ms)
    if not errors:
        fields.setdefault("occupation", "social_work")
        fields.setdefault("qualification_level", "none")
        fields.setdefault("status", "active")
        for name, msgs in checks.check_person_whole(fields, today).items():
            errors.setdefault(name, []).extend(msgs)
    return fields, number, errors


async def place_person(
    ctx: Context, principal: Principal, fields: dict[str, Any], known: dict[str, Station] | None = None
) -> tuple[str, str | None, dict[str, list[str]]]:
    """(employer name, station id, errors) of a record's workplace; the caller must manage its division."""
    errors: dict[str, list[str]] = {}
    division = fields.get("division") or ""
    station_id = None
    name = fields.get("employer_name") or ""
    if fields.get("employer_kind") == "station":
        station = None
        if fields.get("station_id"):
            station = await _station(ctx, fields["station_id"])
            if station is None:
                errors["station_id"] = ["Not an active station."]
            elif station.code != division:
                errors["division"] = [f"The station is in township {station.code}, not {division}."]
        else:
            station = (
                (known or {}).get(division)
                if known is not None
                else (await stations_by_code(ctx, {division})).get(division)
            )
            if station is None:
                errors["division"] = [f"No active station serves township {division}."]
        if station is not None:
            station_id = station.id
            name = name or station.name
    if division and not rules.may_manage_division(principal, division):
        errors.setdefault("division", []).append("Outside your division.")
    return name, station_id, errors


def _invalid(errors: dict[str, list[str]]) -> ValidationFailedError:
    code = "invalid_id_card" if list(errors) == ["id_card"] else "invalid_person"
    return ValidationFailedError(code, "The register entry is not valid; see errors.", errors)


# ---------------------------------------------------------------- one entry


async def create_person(*, ctx: Context, principal: Principal, data: PersonRegistration) -> Person:
    """Put one person on the register (supervisors: only in their division)."""
    rules.require_manager(principal, detail=MANAGERS_ONLY)
    now = ctx.now()
    today = local_date(now)
    fields, number, errors = _check_new(given(data), today)
    if errors:
        raise _invalid(errors)
    assert number is not None
    name, station_id, problems = await place_person(ctx, principal, fields)
    if fields.get("staff_id") and not await staff_exists(ctx, fields["staff_id"]):
        problems.setdefault("staff_id", []).append("No staff account has this id.")
    if problems:
        if problems.get("division") == ["Outside your division."]:
            raise PermissionDeniedError("outside_your_area", "You may register people only in your own division.")
        raise _invalid(problems)
    doc = new_person_document(ctx, principal, fields, number, name, station_id, now)
    flat = {**fields, "employer_name": name, "station_id": station_id}
    entry = history_document(
        "", action="created", actor=actor_of(principal), changes=checks.diff({}, flat_fields(flat)), at=now
    )
    person = await WorkforceRepository(ctx.db).insert_person(doc, entry)
    return present(principal, person)


def flat_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: fields.get(k) for k in checks.PERSON_FIELDS if k != "id_card"}


def new_person_document(
    ctx: Context,
    principal: Principal,
    fields: dict[str, Any],
    number: str,
    employer_name: str,
    station_id: str | None,
    now: Any,
) -> dict[str, Any]:
    key = ctx.settings.data_key_bytes
    born, gender = id_card_facts(number)
    return person_document(
        fields=fields,
        id_card_enc=pii.encrypt(key, number, aad="workforce.id_card"),
        id_card_hash=pii.lookup_hash(key, number),
        id_card_masked=pii.mask_id_card(number),
        birth_date=born,
        gender=gender,
        employer_name=employer_name,
        station_id=station_id,
        actor=actor_of(principal),
        now=now,
    )


async def load_visible(ctx: Context, principal: Principal, person_id: str) -> Person:
    """An entry if ``principal`` may read it, else 404 (so other divisions' people stay unknown)."""
    rules.require_staff(principal, detail=STAFF_ONLY)
    person = await WorkforceRepository(ctx.db).get_person(person_id)
    if not visible(principal, person):
        raise NotFoundError("person_not_found", f"There is no person {person_id!r} on the register.")
    return person


async def get_person(*, ctx: Context, principal: Principal, person_id: str) -> Person:
    """One register entry the caller may see (ID number masked)."""
    return present(principal, await load_visible(ctx, principal, person_id))


async def list_people(
    *,
    ctx: Context,
    principal: Principal,
    division: str | None = None,
    station: str | None = None,
    status: str | None = None,
    role: str | None = None,
    occupation: str | None = None,
    employer_kind: str | None = None,
    qualification_level: str | None = None,
    in_post_on: date | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> Page[Person]:
    """Register entries the caller may see, filtered, newest registered first; ``in_post_on`` lists those a plan
    figure of that day counts."""
    scope = read_scope(principal)
    prefix: str | None = None
    if division:
        prefix = rules.prefix_of(division)
        if principal.role == "supervisor" and not rules.may_see_division(principal, prefix):
            raise PermissionDeniedError("outside_your_area", "That division is outside yours.")
    wanted = PeopleFilter(
        scope=scope,
        division_prefix=prefix,
        station_id=station,
        status=status,
        role=role,
        occupation=occupation,
        employer_kind=employer_kind,
        qualification_level=qualification_level,
        in_post_on=in_post_on,
    )
    page = await WorkforceRepository(ctx.db).list_people(wanted, limit=limit, cursor=cursor, now=ctx.now())
    return Page(items=[present(principal, p) for p in page.items], next_cursor=page.next_cursor)


async def update_person(*, ctx: Context, principal: Principal, person_id: str, changes: PersonChanges) -> Person:
    """Change an entry (its division stays the caller's); the change is kept in its history."""
    rules.require_manager(principal, detail=MANAGERS_ONLY)
    person = await load_visible(ctx, principal, person_id)
    if not rules.may_manage_division(principal, person.division):
        raise PermissionDeniedError("outside_your_area", "You may change entries only in your own division.")
    now = ctx.now()
    today = local_date(now)
    fields, errors = checks.check_person_fields(given(changes), today=today, partial=True)
    if errors:
        raise _invalid(errors)
    before = flat_of(person)
    after = {**before, **fields}
    if fields.get("employer_kind", before["employer_kind"]) != "station":
        after["station_id"] = None
    elif "division" in fields and "station_id" not in fields:
        after["station_id"] = None  # found again from the new township
        after["employer_name"] = fields.get("employer_name")
    errors = checks.check_person_whole(after, today)
    if errors:
        raise _invalid(errors)
    name, station_id, problems = await place_person(ctx, principal, after)
    if (
        after.get("staff_id")
        and after["staff_id"] != before["staff_id"]
        and not await staff_exists(ctx, after["staff_id"])
    ):
        problems.setdefault("staff_id", []).append("No staff account has this id.")
    if problems:
        if problems.get("division") == ["Outside your division."]:
            raise PermissionDeniedError("outside_your_area", "You may move people only within your own division.")
        raise _invalid(problems)
    after.update(employer_name=name, station_id=station_id)
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    if not changed:
        return present(principal, person)
    entry = history_document(
        person.id, action="updated", actor=actor_of(principal), changes=checks.diff(before, after), at=now
    )
    updated = await WorkforceRepository(ctx.db).update_person(
        person.id, person.version, {**person_changes(changed), "updated_at": now}, entry
    )
    return present(principal, updated)


async def person_history(*, ctx: Context, principal: Principal, person_id: str) -> list[HistoryEntry]:
    """Every change of an entry the caller may see, oldest first."""
    person = await load_visible(ctx, principal, person_id)
    return await WorkforceRepository(ctx.db).person_history(person.id)
