"""Codecs every volunteer collection shares: times read back in UTC, and the actor of a change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.volunteers.models import (
    Actor,
)


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def actor_from(doc: dict[str, Any] | None) -> Actor:
    doc = doc or {}
    return Actor(subject=str(doc.get("subject", "")), role=str(doc.get("role", "")))


def actor_doc(actor: Actor) -> dict[str, str]:
    return {"subject": actor.subject, "role": actor.role}
