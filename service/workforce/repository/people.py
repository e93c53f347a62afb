"""The stored shape of a register entry and of one change to it (``workforce_people``, ``workforce_history``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.common.errors import ConflictError
from service.workforce.models import (
    Employer,
    Person,
    Qualification,
)

# ---------------------------------------------------------------- documents <-> records


def person_document(
    *,
    fields: dict[str, Any],
    id_card_enc: str,
    id_card_hash: str,
    id_card_masked: str,
    birth_date: str,
    gender: str,
    employer_name: str,
    station_id: str | None,
    actor: dict[str, str],
    now: datetime,
) -> dict[str, Any]:
    """The stored shape of a new register entry (``fields`` as :func:`checks.check_person_fields` returns them)."""
    division = fields["division"]
    return {
        "name": fields["name"],
        "id_card_masked": id_card_masked,
        "id_card_enc": id_card_enc,
        "id_card_hash": id_card_hash,
        "birth_date": birth_date,
        "gender": gender,
        "phone": fields.get("phone"),
        "occupation": fields.get("occupation") or "social_work",
        "qualification": {
            "level": fields.get("qualification_level") or "none",
            "certificate_no": fields.get("certificate_no"),
            "year": fields.get("certificate_year"),
        },
        "employer": {"kind": fields["employer_kind"], "name": employer_name, "station_id": station_id},
        "division": division,
        "county_code": division[:6],
        "city_code": division[:4] + "00",
        "province_code": division[:2] + "0000",
        "post": fields.get("post"),
        "role": fields["role"],
        "status": fields.get("status") or "active",
        "start_date": fields["start_date"],
        "end_date": fields.get("end_date"),
        "staff_id": fields.get("staff_id"),
        "version": 1,
        "created_by": actor,
        "created_at": now,
        "updated_at": now,
    }


def person_changes(flat: dict[str, Any]) -> dict[str, Any]:
    """The stored ``$set`` of changed flat register fields (nested and division fields placed)."""
    out: dict[str, Any] = {}
    nested = {
        "qualification_level": "qualification.level",
        "certificate_no": "qualification.certificate_no",
        "certificate_year": "qualification.year",
        "employer_kind": "employer.kind",
        "employer_name": "employer.name",
        "station_id": "employer.station_id",
    }
    for key, value in flat.items():
        out[nested.get(key, key)] = value
        if key == "division":
            out.update(county_code=value[:6], city_code=value[:4] + "00", province_code=value[:2] + "0000")
    return out


def flat_of(person: Person) -> dict[str, Any]:
    """A register entry as the flat fields a body or CSV row gives (for comparisons and history)."""
    return {
        "name": person.name,
        "phone": person.phone,
        "occupation": person.occupation,
        "qualification_level": person.qualification.level,
        "certificate_no": person.qualification.certificate_no,
        "certificate_year": person.qualification.year,
        "employer_kind": person.employer.kind,
        "employer_name": person.employer.name,
        "station_id": person.employer.station_id,
        "division": person.division,
        "post": person.post,
        "role": person.role,
        "status": person.status,
        "start_date": person.start_date,
        "end_date": person.end_date,
        "staff_id": person.staff_id,
    }


def person_from_doc(doc: dict[str, Any]) -> Person:
    q, e = doc.get("qualification") or {}, doc.get("employer") or {}
    return Person(
        id=str(doc["_id"]),
        name=doc["name"],
        id_card_masked=doc["id_card_masked"],
        gender=doc.get("gender") or "",
        birth_date=doc.get("birth_date") or "",
        phone=doc.get("phone"),
        occupation=doc.get("occupation") or "social_work",
        qualification=Qualification(
            level=q.get("level") or "none", certificate_no=q.get("certificate_no"), year=q.get("year")
        ),
        employer=Employer(kind=e.get("kind") or "", name=e.get("name") or "", station_id=e.get("station_id")),
        division=doc["division"],
        county_code=doc["county_code"],
        city_code=doc["city_code"],
        post=doc.get("post"),
        role=doc["role"],
        status=doc["status"],
        start_date=doc["start_date"],
        end_date=doc.get("end_date"),
        staff_id=doc.get("staff_id"),
        version=int(doc.get("version") or 1),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


def history_document(
    person_id: str | tuple[str, int], *, action: str, actor: dict[str, str], changes: dict[str, Any], at: datetime
) -> dict[str, Any]:
    """The stored shape of one change of a register entry."""
    return {"person_id": person_id, "at": at, "actor": actor, "action": action, "changes": changes}


def person_taken(exc: BaseException) -> ConflictError:
    text = str(exc)
    if "staff_id" in text:
        return ConflictError("staff_account_linked", "That staff account is linked to another person on the register.")
    return ConflictError("person_already_registered", "A person with this ID number is already on the register.")
