"""Webhook subscriptions and deliveries as the domain sees them."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Literal

DeliveryStatus = Literal["pending", "delivered", "dead"]
DELIVERY_STATUSES: tuple[str, ...] = ("pending", "delivered", "dead")
PING_EVENT_TYPE = "webhook.ping"


@dataclasses.dataclass(frozen=True, slots=True)
class Subscription:
    """A client's request to receive some event types at one URL."""

    id: str
    client_id: str
    url: str
    event_types: tuple[str, ...]
    description: str
    active: bool
    secret_enc: str  # AES-GCM ciphertext of the signing secret (see service.webhooks.signing)
    scopes: frozenset[str]  # the client's scopes when the subscription was last changed
    created_at: datetime
    updated_at: datetime
    paused_at: datetime | None = None  # when it was last made inactive
    pauses: tuple[tuple[datetime, datetime], ...] = ()  # recent inactive spells, [from, to)

    def wants(self, event_type: str) -> bool:
        """True when this subscription asked for events of this type."""
        return "*" in self.event_types or event_type in self.event_types

    def was_active_at(self, moment: datetime) -> bool:
        """True when the subscription existed and was active at ``moment``: only then is an event owed."""
        if moment < self.created_at:
            return False
        if not self.active and self.paused_at is not None and moment >= self.paused_at:
            return False
        return not any(start <= moment < end for start, end in self.pauses)


@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP attempt of a delivery."""

    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    worker_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """One event owed to one subscription, and what happened to it."""

    id: str
    subscription_id: str
    client_id: str
    event_id: str
    event_type: str
    case_id: str | None
    seq: int
    event_created_at: datetime
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    lease_until: datetime
    lease_owner: str | None
    lease_token: str | None
    last_status_code: int | None
    last_latency_ms: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime
    window_start: datetime  # the retry window runs from here (reset by a redelivery)
    attempt_log: tuple[Attempt, ...] = ()
    ping: dict[str, Any] | None = None  # the payload of a ping (pings have no event document)


@dataclasses.dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one HTTP attempt returned."""

    delivered: bool
    status_code: int | None
    latency_ms: int
    error: str | None
