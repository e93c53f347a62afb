"""Service certificates: issuing (by the station that recorded the service), the PDF, revoking, public verification."""

from __future__ import annotations

import asyncio
import re
from datetime import date
from typing import Any

from service.cases.models import Subject
from service.common.context import Context
from service.common.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from service.common.ids import new_id
from service.common.models import STATION_STAFF_ROLES, Principal, require_role
from service.volunteers import rules
from service.volunteers.access import EVENT_CERT_ISSUED, EVENT_CERT_REVOKED, actor_of, append_event, known_station
from service.volunteers.models import (
    Certificate,
)
from service.volunteers.records import local_date, service_lines
from service.volunteers.repository.attendance import line_doc
from service.volunteers.repository.certificates import CertificateCountersRepository, CertificatesRepository
from service.volunteers.repository.codecs import actor_doc
from service.volunteers.repository.people import VolunteersRepository, record_doc

# ---------------------------------------------------------------- certificates


def base_url(ctx: Context) -> str:
    """Where public links (the verify page) point."""
    return ctx.settings.public_base_url or f"http://{ctx.settings.host}:{ctx.settings.port}"


async def issue_certificate(
    *,
    ctx: Context,
    principal: Principal,
    volunteer_id: str,
    period_from: date,
    period_to: date,
    station_id: str | None = None,
) -> Certificate:
    """The recording station issues a certificate (志愿服务记录证明) of the hours it recorded in a period."""
    require_role(
        principal,
        (*STATION_STAFF_ROLES, "admin"),
        code="not_recording_organisation",
        detail="Only the station that recorded the service issues its certificate.",
    )
    if principal.role in STATION_STAFF_ROLES:
        if station_id and station_id != principal.station_id:
            raise PermissionDeniedError(
                "not_recording_organisation",
                "A station certifies only what it recorded (谁记录谁证明); this is another station.",
            )
        station_id = principal.station_id
    if not station_id:
        raise ValidationFailedError(
            "unknown_station", "Name the recording station.", errors={"station_id": ["Name the recording station."]}
        )
    if period_to < period_from:
        raise ValidationFailedError(
            "invalid_period",
            "Must not be before period_from.",
            errors={"period_to": ["Must not be before period_from."]},
        )
    if period_to > local_date(ctx.now()):
        raise ValidationFailedError(
            "invalid_period", "Must not be in the future.", errors={"period_to": ["Must not be in the future."]}
        )
    station = await known_station(ctx, station_id)
    volunteers = VolunteersRepository(ctx.db)
    volunteer = await volunteers.get(volunteer_id)
    lines = await service_lines(ctx, volunteer.id, station_id=station.id, start=period_from, end=period_to)
    if not lines:
        raise ValidationFailedError(
            "no_records_in_period",
            "This station has no confirmed service of this volunteer in the period; nothing to certify.",
            errors={"period_from": ["No confirmed service recorded by this station in the period."]},
        )
    total = round(sum(line.hours for _, line in lines), 1)
    records = [
        r
        for r in volunteer.records
        if r.station_id == station.id and period_from.isoformat() <= r.on <= period_to.isoformat()
    ]
    repo = CertificatesRepository(ctx.db)
    counters = CertificateCountersRepository(ctx.db)
    now = ctx.now()
    # Serials run 1, 2, 3 ... per issuing station and year, from a counter, so concurrent
    # issues never skip a number; the prefix is the number's own (rules.certificate_number).
    prefix = f"ZYZM-{station.code}-{now.year}-"
    for _attempt in range(20):
        serial = await counters.next(prefix, start_after=lambda: repo.last_serial(prefix))
        doc = {
            "_id": new_id(),
            "number": rules.certificate_number(township=station.code, issued_at=now, serial=serial),
            "verification_code": rules.new_verification_code(),
            "volunteer_id": volunteer.id,
            "volunteer_name": volunteer.name,
            "id_card_masked": volunteer.id_card_masked,
            "station_id": station.id,
            "township": station.code,
            "organisation": station.name,
            "period_from": period_from.isoformat(),
            "period_to": period_to.isoformat(),
            "total_hours": total,
            "services": [line_doc(line) for _, line in lines],
            "records": [record_doc(r) for r in records],
            "issued_by": actor_doc(actor_of(principal)),
            "issued_at": now,
            "status": "valid",
        }
        certificate = await repo.insert(doc)
        if certificate is not None:
            break
    else:  # pragma: no cover - twenty numbers taken by an older release in a row
        raise ConflictError("certificate_number_busy", "Certificates are being numbered at this moment; try again.")
    await append_event(
        ctx,
        type=EVENT_CERT_ISSUED,
        subject=Subject("certificate", certificate.id),
        seq=1,
        principal=principal,
        station=station.id,
        division=station.code,
        data={
            "certificate_id": certificate.id,
            "number": certificate.number,
            "volunteer_id": volunteer.id,
            "total_hours": total,
            "period_from": certificate.period_from,
            "period_to": certificate.period_to,
        },
    )
    return certificate


async def _visible_certificate(ctx: Context, principal: Principal, certificate_id: str) -> Certificate:
    certificate = await CertificatesRepository(ctx.db).get(certificate_id)
    if principal.role == "resident":
        me = await VolunteersRepository(ctx.db).by_resident(principal.subject)
        if me is not None and me.id == certificate.volunteer_id:
            return certificate
    elif principal.role == "supervisor":
        if certificate.number.split("-")[1].startswith(principal.division_prefix or "-"):
            return certificate
    elif principal.role == "admin" or (
        principal.role in STATION_STAFF_ROLES and principal.station_id == certificate.station_id
    ):
        return certificate
    raise NotFoundError("certificate_not_found", f"There is no certificate {certificate_id!r}.")


async def get_certificate(*, ctx: Context, principal: Principal, certificate_id: str) -> Certificate:
    """One certificate (the volunteer, the issuing station, supervisors)."""
    return await _visible_certificate(ctx, principal, certificate_id)


async def certificate_pdf(*, ctx: Context, principal: Principal, certificate_id: str) -> bytes:
    """The certificate as a PDF (rendered off the event loop: font subsetting takes a moment)."""
    from service.volunteers.certificate_pdf import render_certificate

    certificate = await _visible_certificate(ctx, principal, certificate_id)
    url = rules.verify_url(base_url(ctx), certificate.verification_code)
    return await asyncio.to_thread(render_certificate, certificate, url)


async def revoke_certificate(*, ctx: Context, principal: Principal, certificate_id: str, reason: str) -> Certificate:
    """The issuing station revokes a certificate with a reason; the verify page then says so."""
    certificate = await _visible_certificate(ctx, principal, certificate_id)
    require_role(
        principal,
        (*STATION_STAFF_ROLES, "admin"),
        code="not_recording_organisation",
        detail="Only the issuing station revokes its certificates.",
    )
    repo = CertificatesRepository(ctx.db)
    if not await repo.revoke(certificate.id, reason=reason.strip(), by=actor_of(principal), now=ctx.now()):
        raise InvalidStateError("certificate_revoked", "This certificate is already revoked.")
    await append_event(
        ctx,
        type=EVENT_CERT_REVOKED,
        subject=Subject("certificate", certificate.id),
        seq=2,
        principal=principal,
        station=certificate.station_id,
        division=certificate.number.split("-")[1],
        data={"certificate_id": certificate.id, "number": certificate.number, "reason": reason.strip()},
    )
    return await repo.get(certificate.id)


async def verify_certificate(*, ctx: Context, code: str) -> dict[str, Any]:
    """What the public verify page shows: masked name, organisation, hours, period, valid or revoked."""
    normalised = code.strip().upper()
    found = (
        await CertificatesRepository(ctx.db).by_code(normalised)
        if re.fullmatch(f"[{rules.VERIFY_ALPHABET}]{{{rules.VERIFY_LENGTH}}}", normalised)
        else None
    )
    if found is None:
        raise NotFoundError("certificate_not_found", "No certificate has this verification code.")
    return {
        "number": found.number,
        "status": found.status,
        "valid": found.status == "valid",
        "name_masked": found.name_masked,
        "organisation": found.organisation,
        "total_hours": found.total_hours,
        "period_from": found.period_from,
        "period_to": found.period_to,
        "issued_at": found.issued_at,
        "revoked_at": found.revoked_at,
        "revoked_reason": found.revoked_reason,
    }
