"""Volunteer registration, reading volunteers (masked for whoever may not see the rest) and record entries."""

from __future__ import annotations

import dataclasses
from datetime import date

from service.cases.models import Subject
from service.common import pii
from service.common.context import Context
from service.common.errors import (
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from service.common.ids import new_id
from service.common.models import STATION_STAFF_ROLES, Page, Principal, require_role
from service.common.paging import decode_newest_cursor, encode_newest_cursor, paged
from service.volunteers.access import (
    EVENT_REGISTERED,
    LOCAL,
    TOWNSHIP,
    actor_of,
    append_event,
    can_see_station,
    my_volunteer,
    station_of_township,
)
from service.volunteers.inputs import VolunteerRegistration
from service.volunteers.models import (
    RECORD_KINDS,
    SKILLS,
    RecordEntry,
    Volunteer,
    VolunteerScope,
)
from service.volunteers.repository.activities import ActivitiesRepository, SignupsRepository
from service.volunteers.repository.attendance import AttendanceRepository
from service.volunteers.repository.codecs import actor_doc
from service.volunteers.repository.people import VolunteersRepository

# ---------------------------------------------------------------- volunteers


async def register_volunteer(*, ctx: Context, principal: Principal, data: VolunteerRegistration) -> Volunteer:
    """A resident registers themself, or station staff register a person on their behalf."""
    require_role(
        principal,
        ("resident", *STATION_STAFF_ROLES, "admin"),
        code="not_allowed",
        detail="Residents and station staff register volunteers.",
    )
    township = data.township
    if not TOWNSHIP.match(township):
        raise ValidationFailedError(
            "invalid_volunteer",
            "Must be a 9-digit township code.",
            errors={"township": ["Must be a 9-digit township code."]},
        )
    id_card = pii.validate_id_card(data.id_card)
    phone = pii.normalize_phone(data.phone)
    skills = list(dict.fromkeys(data.skills))
    bad = [s for s in skills if s not in SKILLS]
    if bad:
        raise ValidationFailedError(
            "invalid_volunteer",
            f"Unknown skill {bad[0]!r}; use {', '.join(SKILLS)}.",
            errors={"skills": [f"Unknown skill {bad[0]!r}; use {', '.join(SKILLS)}."]},
        )
    station = await station_of_township(ctx, township)
    if principal.role in STATION_STAFF_ROLES and (station is None or station.id != principal.station_id):
        raise PermissionDeniedError(
            "other_station", "Station staff register volunteers who live in their own station's township."
        )
    key = ctx.settings.data_key_bytes
    now = ctx.now()
    doc = {
        "_id": new_id(now),
        "name": data.name.strip(),
        "id_card_enc": pii.encrypt(key, id_card, aad="volunteers.id_card"),
        "id_card_hash": pii.lookup_hash(key, id_card),
        "id_card_masked": pii.mask_id_card(id_card),
        "phone": phone,
        "skills": skills,
        "availability": data.availability,
        "township": township,
        "station_id": station.id if station else None,
        "resident_id": principal.subject if principal.role == "resident" else None,
        "registered_by": actor_doc(actor_of(principal)),
        "records": [],
        "created_at": now,
        "updated_at": now,
    }
    volunteer = await VolunteersRepository(ctx.db).insert(doc)
    await append_event(
        ctx,
        type=EVENT_REGISTERED,
        subject=Subject("volunteer", volunteer.id),
        seq=1,
        principal=principal,
        station=volunteer.station_id,
        division=township,
        data={"volunteer_id": volunteer.id, "name_masked": volunteer.name_masked, "township": township},
    )
    return volunteer


async def get_my_volunteer(*, ctx: Context, principal: Principal) -> Volunteer:
    """The caller's own volunteer registration."""
    return await my_volunteer(ctx, principal)


async def visible_volunteer(ctx: Context, principal: Principal, volunteer_id: str) -> Volunteer:
    volunteer = await VolunteersRepository(ctx.db).get(volunteer_id)
    if principal.role == "resident":
        if volunteer.resident_id != principal.subject:
            raise NotFoundError("volunteer_not_found", f"There is no volunteer {volunteer_id!r}.")
        return volunteer
    if principal.role in STATION_STAFF_ROLES:
        # A station sees its residents and everyone who served at its activities.
        if volunteer.station_id == principal.station_id:
            return volunteer
        served = await AttendanceRepository(ctx.db).for_volunteer(volunteer_id, station_id=principal.station_id)
        signed = [
            s
            for s in await SignupsRepository(ctx.db).for_volunteer(volunteer_id)
            if (await ActivitiesRepository(ctx.db).get(s.activity_id)).station_id == principal.station_id
        ]
        if served or signed:
            return volunteer
        raise NotFoundError("volunteer_not_found", f"There is no volunteer {volunteer_id!r}.")
    if can_see_station(principal, volunteer.station_id, volunteer.township):
        return volunteer
    raise NotFoundError("volunteer_not_found", f"There is no volunteer {volunteer_id!r}.")


def shown_to(principal: Principal, volunteer: Volunteer) -> Volunteer:
    """The volunteer as this caller sees them: the phone in full only to the volunteer and station staff."""
    if principal.role in ("resident", *STATION_STAFF_ROLES):
        return volunteer
    return dataclasses.replace(volunteer, phone=pii.mask_phone(volunteer.phone))


async def get_volunteer(*, ctx: Context, principal: Principal, volunteer_id: str) -> Volunteer:
    """One volunteer, if the caller may see them."""
    return shown_to(principal, await visible_volunteer(ctx, principal, volunteer_id))


async def list_volunteers(
    *, ctx: Context, principal: Principal, limit: int = 20, cursor: str | None = None, skill: str | None = None
) -> Page[Volunteer]:
    """Volunteers of the caller's station (staff), division (supervisor) or all (admin), newest registered first."""
    if principal.role in STATION_STAFF_ROLES:
        scope = VolunteerScope(station_id=principal.station_id or "")
    elif principal.role == "supervisor":
        scope = VolunteerScope(township_prefix=principal.division_prefix or "-")
    elif principal.role == "admin":
        scope = VolunteerScope()
    else:
        raise PermissionDeniedError("staff_only", "Only staff list volunteers.")
    items, next_cursor = paged(
        await VolunteersRepository(ctx.db).find_page(
            scope, skill=skill, before=decode_newest_cursor(cursor), limit=limit + 1, now=ctx.now()
        ),
        limit,
        lambda v: encode_newest_cursor(v.id),
    )
    return Page(items=[shown_to(principal, v) for v in items], next_cursor=next_cursor)


async def add_record_entry(
    *, ctx: Context, principal: Principal, volunteer_id: str, kind: str, text: str, on: date
) -> Volunteer:
    """Station staff enter a training, award or evaluation on a volunteer's record."""
    require_role(
        principal,
        (*STATION_STAFF_ROLES, "admin"),
        code="not_recording_organisation",
        detail="Only station staff write volunteers' records.",
    )
    if kind not in RECORD_KINDS:
        raise ValidationFailedError(
            "invalid_record",
            f"Must be one of {', '.join(RECORD_KINDS)}.",
            errors={"kind": [f"Must be one of {', '.join(RECORD_KINDS)}."]},
        )
    volunteer = await visible_volunteer(ctx, principal, volunteer_id)
    if on > ctx.now().astimezone(LOCAL).date():
        raise ValidationFailedError(
            "invalid_record", "Must not be in the future.", errors={"on": ["Must not be in the future."]}
        )
    entry = RecordEntry(
        kind=kind,
        text=text.strip(),
        on=on.isoformat(),
        station_id=principal.station_id or volunteer.station_id or "",
        by=actor_of(principal),
        at=ctx.now(),
    )
    return await VolunteersRepository(ctx.db).add_record(volunteer.id, entry, ctx.now())
