"""The stored shape of a training record (``training_records``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.workforce.models import (
    Session,
    TrainingRecord,
)


def record_document(
    *,
    person: dict[str, Any],
    session: Session,
    programme_name: str,
    fields: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The stored shape of a new training record; ``person`` holds id, name and division."""
    division = person["division"]
    return {
        "person_id": person["id"],
        "person_name": person["name"],
        "session_id": session.id,
        "programme_id": session.programme_id,
        "programme_name": programme_name,
        "category": session.category,
        "tier": session.tier,
        "division": division,
        "county_code": division[:6],
        "city_code": division[:4] + "00",
        "province_code": division[:2] + "0000",
        "status": fields.get("status") or "enrolled",
        "attended_hours": float(fields.get("attended_hours") or 0.0),
        "completed_on": fields.get("completed_on"),
        "certificate_no": fields.get("certificate_no"),
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def record_from(doc: dict[str, Any]) -> TrainingRecord:
    return TrainingRecord(
        id=str(doc["_id"]),
        person_id=doc["person_id"],
        person_name=doc.get("person_name") or "",
        session_id=doc["session_id"],
        programme_id=doc["programme_id"],
        programme_name=doc.get("programme_name") or "",
        category=doc["category"],
        tier=doc["tier"],
        division=doc["division"],
        status=doc["status"],
        attended_hours=float(doc.get("attended_hours") or 0.0),
        completed_on=doc.get("completed_on"),
        certificate_no=doc.get("certificate_no"),
        version=int(doc.get("version") or 1),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )
