"""What a webhook carries (pure): the event payload without staff ids, its encoding, backoff, due deliveries."""

from __future__ import annotations

import json
import random
from datetime import datetime
from typing import Any

from service.cases.models import CaseEvent
from service.common.timestamps import json_default, rfc3339
from service.webhooks.models import Delivery

MAX_ERROR_CHARS = 300


MIN_RETRY_SECONDS = 1.0


def backoff_seconds(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before retry ``attempt`` (1 = after the first failure): full jitter, capped."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    # A floor keeps a near-zero draw from turning into a tight retry loop.
    return max(min(MIN_RETRY_SECONDS, base), (rng or random).uniform(0, ceiling))


def sendable_heads(pending: list[Delivery], now: datetime) -> list[Delivery]:
    """Of pending deliveries in event order, those that may be sent now.

    Only the earliest pending delivery of each case may go (the rest wait behind it), and
    only when it is due and nobody holds its lease.
    """
    heads: dict[str, Delivery] = {}
    for d in sorted(pending, key=lambda d: (d.event_created_at, d.seq, d.event_id)):
        key = d.case_id if d.case_id else f"~{d.id}"
        current = heads.get(key)
        if current is None or d.seq < current.seq:
            heads[key] = d
    ready = [d for d in heads.values() if d.next_attempt_at <= now and d.lease_until <= now]
    return sorted(ready, key=lambda d: (d.event_created_at, d.seq, d.event_id))


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=json_default).encode()


# Keys whose values are staff account ids: never sent to integrators (docs/webhooks.md).
STAFF_ID_KEYS = frozenset({"assignee_id", "requested_by", "decided_by", "notify_staff"})


def without_staff_ids(value: Any) -> Any:
    """A copy of ``value`` with every staff account id removed: ``STAFF_ID_KEYS`` at any depth,
    and every ``actor`` reduced to its role."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in STAFF_ID_KEYS:
                continue
            if key == "actor" and isinstance(item, dict):
                out[key] = {"role": item.get("role")}
            else:
                out[key] = without_staff_ids(item)
        return out
    if isinstance(value, list):
        return [without_staff_ids(v) for v in value]
    return value


def written_at(event: CaseEvent) -> datetime:
    """When an event was written (its ``time`` for one read before it was stored)."""
    return event.created_at or event.time


def event_payload(event: CaseEvent) -> dict[str, Any]:
    """The public part of an event (no actor: staff identities are not shared)."""
    return {
        "id": event.id,
        "type": event.type,
        "time": rfc3339(event.time) if isinstance(event.time, datetime) else event.time,
        "case_id": event.key,  # the case, or the one-string key of the subject (docs/webhooks.md)
        "case_number": event.case_number,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "seq": event.seq,
        "data": without_staff_ids(event.data),
    }


def truncate(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"
