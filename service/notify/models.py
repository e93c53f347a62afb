"""Dataclasses of the notification area: outbox events as read here, notifications, grants, preferences."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from service.common.timestamps import rfc3339

CHANNEL_INBOX = "inbox"
CHANNEL_WECHAT = "wechat"
CHANNEL_SMS = "sms"
CHANNEL_STREAM = "stream"

# Delivery states of one (event, recipient, channel) record.
PENDING = "pending"  # waiting to be sent (possibly until not_before: quiet hours, backoff)
SENDING = "sending"  # handed to the third party; never sent again, whatever happens
SENT = "sent"
DELIVERED = "delivered"  # inbox entries: stored is delivered
SKIPPED = "skipped"  # nothing sent on purpose (no grant, banned, no address)
FAILED = "failed"  # gave up; ``reason`` says why


@dataclasses.dataclass(frozen=True, slots=True)
class ParkedClaim:
    """The claim of a parked event: how often its handling failed, and why."""

    event_id: str
    attempts: int
    last_error: str
    parked_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ParkedEvent:
    """An event whose notifications could not be made after every attempt (a dead letter)."""

    event: OutboxEvent
    attempts: int
    last_error: str
    parked_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One committed case or visit change, as the notification area reads it from ``events``."""

    id: str
    seq: int
    type: str
    case_id: str | None
    case_number: str | None
    station_id: str | None
    division: str
    scenario: str | None
    actor_subject: str | None
    actor_role: str | None
    from_state: str | None
    to_state: str | None
    time: datetime
    data: dict[str, Any]

    def public_view(self) -> dict[str, Any]:
        """What a staff live-feed message carries (no actor identity beyond the role)."""
        return {
            "id": str(self.seq),
            "event_id": self.id,
            "type": self.type,
            "case_id": self.case_id,
            "case_number": self.case_number,
            "station_id": self.station_id,
            "division": self.division,
            "scenario": self.scenario,
            "actor_role": self.actor_role,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "time": rfc3339(self.time),
            "data": _jsonable(self.data),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return rfc3339(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


@dataclasses.dataclass(frozen=True, slots=True)
class Notification:
    """One message to one person on one channel, caused by one event."""

    id: str
    event_id: str
    event_type: str
    recipient: str  # "resident:<id>" or "staff:<id>"
    channel: str
    status: str
    title_zh: str
    title_en: str
    body_zh: str
    body_en: str
    case_id: str | None
    case_number: str | None
    created_at: datetime
    template: str | None = None
    reason: str | None = None
    attempts: int = 0
    not_before: datetime | None = None
    sent_at: datetime | None = None
    read_at: datetime | None = None
    urgent: bool = False
    grant_spent: bool = False
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Subscription:
    """A resident's one-time grants for one WeChat template."""

    resident_id: str
    template_key: str
    template_id: str
    grants: int
    banned: bool
    last_result: str | None
    results: dict[str, int]
    updated_at: datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class Preferences:
    """Which event types reach a person on which channel, and their SMS quiet hours."""

    recipient: str
    events: dict[str, dict[str, bool]]
    quiet_hours: str | None  # "21:00-08:00" in Asia/Shanghai, "" for none, None for the default
    updated_at: datetime | None = None
