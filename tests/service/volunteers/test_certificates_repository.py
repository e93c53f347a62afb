"""Service certificates: unique numbers and verification codes (concurrent issuing still numbers each
once), found by id and by code, newest first per volunteer, revoked once.

Certificates are issued by the recording station through the volunteers service, from hours its
organiser recorded and confirmed; the repository is then read and driven directly.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

import pytest

from service.common.context import Context
from service.common.errors import NotFoundError
from service.common.ids import is_id, new_id
from service.common.models import utcnow
from service.identity.accounts import StaffMember
from service.volunteers import attendance, certificates, hours
from service.volunteers.inputs import AttendanceInput
from service.volunteers.models import Actor, Certificate, Volunteer, VolunteerScope
from service.volunteers.records import local_date
from service.volunteers.repository.certificates import CertificatesRepository
from tests.factories import make_activity, make_confirmed_volunteer, make_staff, principal_of

HOUR = timedelta(hours=1)


async def served(ctx: Context) -> tuple[StaffMember, Volunteer, date]:
    """A station worker and a volunteer whose two hours of service that worker recorded and confirmed
    (the clock held at a whole second); also the day the service ended on."""
    now = utcnow().replace(microsecond=0)
    ctx.clock = lambda: now
    worker = await make_staff(ctx)
    activity = await make_activity(ctx, worker, start_at=now - 2 * HOUR, end_at=now + HOUR)
    _, volunteer = await make_confirmed_volunteer(ctx, activity, worker)
    made = await attendance.record_attendance(
        ctx=ctx,
        principal=principal_of(worker),
        activity_id=activity.id,
        data=AttendanceInput(volunteer_id=volunteer.id, check_in_at=now - 2 * HOUR, check_out_at=now),
    )
    await hours.confirm_hours(ctx=ctx, principal=principal_of(worker), attendance_id=made.id)
    return worker, volunteer, local_date(now)


async def issue(ctx: Context, worker: StaffMember, volunteer: Volunteer, today: date) -> Certificate:
    """The worker's station certifies the volunteer's service of the last two days."""
    return await certificates.issue_certificate(
        ctx=ctx,
        principal=principal_of(worker),
        volunteer_id=volunteer.id,
        period_from=today - timedelta(days=1),
        period_to=today,
    )


def prefix_of(certificate: Certificate) -> str:
    """The numbering series of a certificate: ZYZM-<township>-<year>-."""
    return certificate.number.rsplit("-", 1)[0] + "-"


async def test_a_certificate_reads_back_by_id_and_by_verification_code(ctx: Context) -> None:
    worker, volunteer, today = await served(ctx)
    made = await issue(ctx, worker, volunteer, today)
    repo = CertificatesRepository(ctx.db)
    got = await repo.get(made.id)
    assert got == made and is_id(got.id)
    assert (got.status, got.total_hours, got.volunteer_id, got.station_id) == (
        "valid",
        2.0,
        volunteer.id,
        worker.station_id,
    )
    [line] = got.services
    assert line.hours == 2.0 and isinstance(line.start_at, datetime) and line.start_at.utcoffset() == timedelta(0)
    assert got.issued_by == Actor(subject=worker.id, role=worker.role)
    assert await repo.by_code(made.verification_code) == made
    assert await repo.by_code(made.number) is None
    for missing in (volunteer.id, "not-an-id"):
        with pytest.raises(NotFoundError) as exc:
            await repo.get(missing)
        assert exc.value.code == "certificate_not_found"


async def test_a_taken_number_or_verification_code_is_not_stored_again(ctx: Context) -> None:
    worker, volunteer, today = await served(ctx)
    made = await issue(ctx, worker, volunteer, today)
    other = await issue(ctx, worker, volunteer, today)
    repo = CertificatesRepository(ctx.db)
    stored = await repo.col.find_one({"_id": other.id})
    assert stored is not None
    await repo.col.delete_one({"_id": other.id})
    assert await repo.insert({**stored, "_id": new_id(), "number": made.number}) is None
    assert await repo.insert({**stored, "_id": new_id(), "verification_code": made.verification_code}) is None
    assert await repo.count(VolunteerScope()) == 1
    again = await repo.insert({**stored, "_id": new_id()})  # the same certificate under a new id is fine
    assert again is not None and again.number == other.number and await repo.count(VolunteerScope()) == 2


async def test_certificates_issued_at_the_same_moment_get_distinct_numbers(ctx: Context) -> None:
    worker, volunteer, today = await served(ctx)
    made = await asyncio.gather(*(issue(ctx, worker, volunteer, today) for _ in range(4)))
    assert len({c.number for c in made}) == 4 and len({c.verification_code for c in made}) == 4
    assert len({prefix_of(c) for c in made}) == 1
    repo = CertificatesRepository(ctx.db)
    assert await repo.last_serial(prefix_of(made[0])) == 4  # serials 1 to 4, none skipped
    assert await repo.last_serial(prefix_of(made[0]).replace("ZYZM-", "ZYZM-9")) == 0
    assert {c.id for c in await repo.for_volunteer(volunteer.id)} == {c.id for c in made}


async def test_a_certificate_is_revoked_once_and_a_volunteers_list_is_newest_first(ctx: Context) -> None:
    worker, volunteer, today = await served(ctx)
    first = await issue(ctx, worker, volunteer, today)
    second = await issue(ctx, worker, volunteer, today)
    repo = CertificatesRepository(ctx.db)
    assert [c.id for c in await repo.for_volunteer(volunteer.id)] == [second.id, first.id]
    assert await repo.for_volunteer(worker.id) == []
    by = Actor(subject=worker.id, role=worker.role)
    results = await asyncio.gather(*(repo.revoke(first.id, reason=f"有误 {n}", by=by, now=ctx.now()) for n in range(3)))
    assert sorted(results) == [False, False, True]
    revoked = await repo.get(first.id)
    assert (revoked.status, revoked.revoked_at) == ("revoked", ctx.now())
    assert revoked.revoked_reason in {f"有误 {n}" for n in range(3)}
    assert not await repo.revoke(first.id, reason="again", by=by, now=ctx.now() + HOUR)
    assert (await repo.get(first.id)).revoked_at == ctx.now()  # the first revocation stands
    assert not await repo.revoke(volunteer.id, reason="x", by=by, now=ctx.now())  # no such certificate
    assert await repo.get(second.id) == second
    assert (
        await repo.count(VolunteerScope(), status="valid"),
        await repo.count(VolunteerScope(), status="revoked"),
    ) == (1, 1)
