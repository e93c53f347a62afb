"""Fan-out: a delivery record for every new case event and each subscription that wants it.

Events are read through the cases area's read port in creation order from a shared
checkpoint, re-reading a short overlap; the unique (subscription, event) index makes the
re-scan harmless, so every committed event gets its deliveries at least once.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from service.cases import reads as case_reads
from service.cases.models import Actor, CaseEvent
from service.common.context import Context
from service.identity import directory
from service.webhooks.models import Subscription
from service.webhooks.payloads import written_at
from service.webhooks.repository import (
    EPOCH,
    WebhookDeliveriesRepository,
    WebhookStateRepository,
    WebhookSubscriptionsRepository,
)
from service.webhooks.subscriptions import ALERTS_SCOPE, READ_SCOPE, TERRITORY_SCOPES, scope_for_area_event

FANOUT_BATCH = 500
FANOUT_MAX_EVENTS_PER_PASS = 5000


async def _client_scopes(
    ctx: Context, sub: Subscription, cache: dict[str, frozenset[str] | None]
) -> frozenset[str] | None:
    """The client's scopes now (None: disabled), so a disabled client or a lost scope stops deliveries."""
    if sub.client_id not in cache:
        if ctx.client_scopes is not None:
            cache[sub.client_id] = await ctx.client_scopes.scopes_of(ctx, sub.client_id)
        else:
            client = await directory.client_or_none(ctx=ctx, client_id=sub.client_id)
            # Without a client record, trust the scopes its token had when it last changed the subscription.
            if client is None:
                cache[sub.client_id] = sub.scopes
            else:
                cache[sub.client_id] = frozenset(client.scopes) if client.active else None
    return cache[sub.client_id]


async def _client_division(ctx: Context, client_id: str, cache: dict[str, str | None]) -> str | None:
    """The division-code prefix of the territory a client receives visit and volunteer events of (None: none)."""
    if client_id not in cache:
        client = await directory.client_or_none(ctx=ctx, client_id=client_id)
        cache[client_id] = client.division_prefix if client is not None else None
    return cache[client_id]


def _in_territory(event: CaseEvent, prefix: str | None) -> bool:
    # An event about a person (a missed visit, a volunteer's hours) is for the clients whose
    # territory holds the township it happened in.
    return prefix is not None and bool(event.division) and str(event.division).startswith(prefix)


async def fan_out_events(*, ctx: Context) -> int:
    """Create a delivery for every new event and matching subscription; returns how many."""
    subs = await WebhookSubscriptionsRepository(ctx.db).list_active()
    if not subs:
        return 0
    by_client: dict[str, list[Subscription]] = {}
    for sub in subs:
        by_client.setdefault(sub.client_id, []).append(sub)
    state = WebhookStateRepository(ctx.db)
    deliveries = WebhookDeliveriesRepository(ctx.db)
    checkpoint = await state.checkpoint()
    earliest = min(s.created_at for s in subs)
    overlap = timedelta(seconds=ctx.settings.webhook_fanout_overlap_seconds)
    # Re-reading a short overlap catches events whose transaction committed after a later
    # event was already seen; the unique index makes the re-scan harmless.
    since = earliest if checkpoint is None else max(checkpoint - overlap, earliest)
    scopes_cache: dict[str, frozenset[str] | None] = {}
    division_cache: dict[str, str | None] = {}
    created = 0
    seen = 0
    after: tuple[datetime, str] | None = None
    while seen < FANOUT_MAX_EVENTS_PER_PASS:
        events = await case_reads.events_created_since(ctx=ctx, since=since, after=after, limit=FANOUT_BATCH)
        if not events:
            break
        creators = await case_reads.case_creators(ctx=ctx, case_ids=(e.case_id for e in events if e.case_id))
        pairs: list[tuple[Subscription, CaseEvent]] = []
        for event in events:
            area_scope = scope_for_area_event(event.type)
            if area_scope is not None:
                # Events of an area other than cases (visits, volunteer service) belong to no
                # case: every subscription that asks for the type, from a client holding the
                # area's read scope and whose territory holds the event's township.
                candidates, needed = subs, area_scope
            else:
                owner = creators.get(event.case_id) if event.case_id else None
                is_alert = event.type.startswith("alert.")
                if owner is None and is_alert:
                    # An alert belongs to the vendor client that reported it.
                    owner = Actor(event.actor_subject, event.actor_role)
                if owner is None or owner.role != "client":
                    continue
                needed = ALERTS_SCOPE if is_alert else READ_SCOPE
                candidates = by_client.get(str(owner.subject), [])
            for sub in candidates:
                if not sub.wants(event.type) or not sub.was_active_at(written_at(event)):
                    continue
                scopes = await _client_scopes(ctx, sub, scopes_cache)
                if scopes is None or needed not in scopes:
                    continue
                if needed in TERRITORY_SCOPES and not _in_territory(
                    event, await _client_division(ctx, sub.client_id, division_cache)
                ):
                    continue
                pairs.append((sub, event))
        existing = await deliveries.existing_pairs(e.id for e in events)
        now = ctx.now()
        docs: list[dict[str, Any]] = [
            {
                "_id": "dlv_" + uuid.uuid4().hex,
                "subscription_id": sub.id,
                "client_id": sub.client_id,
                "event_id": event.id,
                "event_type": event.type,
                "case_id": event.key,
                "seq": event.seq,
                "event_created_at": written_at(event),
                "status": "pending",
                "attempts": 0,
                "attempt_log": [],
                "next_attempt_at": now,
                "lease_until": EPOCH,
                "lease_owner": None,
                "lease_token": None,
                "window_start": now,
                "created_at": now,
                "updated_at": now,
            }
            for sub, event in pairs
            if (sub.id, event.id) not in existing
        ]
        created += await deliveries.insert_many_new(docs)
        seen += len(events)
        after = (written_at(events[-1]), events[-1].id)
        if len(events) < FANOUT_BATCH:
            break
    if after is not None:
        await state.advance(after[0])
    return created
