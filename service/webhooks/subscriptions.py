"""Managing webhook subscriptions: who may, which URLs, and the signing secret."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from service.common.context import Context
from service.common.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationFailedError
from service.common.models import Page, Principal
from service.webhooks import signing
from service.webhooks.models import Subscription
from service.webhooks.repository import WebhookDeliveriesRepository, WebhookSubscriptionsRepository

MAX_URL_LENGTH = 2048
MAX_SUBSCRIPTIONS_PER_CLIENT = 20
MANAGE_SCOPE = "webhooks:manage"
READ_SCOPE = "cases:read"
# Event families of other areas than cases, and the scope a client needs to receive them.
VOLUNTEERS_SCOPE = "volunteers:read"
AREA_EVENT_SCOPES = {"volunteer": VOLUNTEERS_SCOPE, "activity": VOLUNTEERS_SCOPE, "certificate": VOLUNTEERS_SCOPE}
# The visit programme's events (visit.missed) belong to no case: clients granted this scope receive them.
VISITS_SCOPE = "visits:read"
VISIT_EVENT_TYPES = ("visit.missed",)
# Events about people (a missed visit, a volunteer's hours or certificate) go only to clients
# whose territory (division_prefix) holds the event's township; a client without one gets none.
TERRITORY_SCOPES = frozenset({VISITS_SCOPE, VOLUNTEERS_SCOPE})


def scope_for_area_event(event_type: str) -> str | None:
    """The read scope that receives an event of an area other than cases, or None for case events."""
    if event_type in VISIT_EVENT_TYPES:
        return VISITS_SCOPE
    return AREA_EVENT_SCOPES.get(event_type.split(".", 1)[0])


ALERTS_SCOPE = "alerts:write"  # alert events reach the vendor client that reported the alert
EVENT_TYPE_PATTERN = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*$")
KNOWN_EVENT_TYPES = (
    "case.created",
    "case.dispatched",
    "case.accepted",
    "case.assigned",
    "case.started",
    "case.scheduled",
    "case.noted",
    "case.returned",
    "case.extended",
    "case.resolved",
    "case.reopened",
    "case.rated",
    "case.closed",
    "case.cancelled",
    "case.rejected",
    "case.urged",
    "case.overdue",
    "visit.missed",
    "volunteer.registered",
    "activity.published",
    "activity.cancelled",
    "volunteer.hours_confirmed",
    "volunteer.hours_corrected",
    "volunteer.correction_requested",
    "volunteer.record_requested",
    "volunteer.record_request_recorded",
    "volunteer.record_request_declined",
    "certificate.issued",
    "certificate.revoked",
    "alert.received",
    "alert.escalated",
)


@dataclasses.dataclass(frozen=True, slots=True)
class SubscriptionData:
    """Fields a client sends to create or change a subscription (None: leave as is)."""

    url: str | None = None
    event_types: list[str] | None = None
    description: str | None = None
    active: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SubscriptionWithSecret:
    """A subscription together with its signing secret, returned once on create and rotate."""

    subscription: Subscription
    secret: str


def allowed_host_patterns(setting: str) -> list[str]:
    """The configured host patterns (lower case); empty means any host."""
    return [p.strip().lower() for p in setting.split(",") if p.strip()]


def host_allowed(host: str, patterns: list[str]) -> bool:
    """True when no allow-list is set or the host matches one pattern (``*.example.cn``)."""
    if not patterns:
        return True
    host = host.lower().rstrip(".")
    return any(fnmatch.fnmatchcase(host, p) for p in patterns)


def url_problems(url: str, *, allowed_hosts: str) -> list[str]:
    """Why a receiver URL is not acceptable (empty when it is)."""
    if len(url) > MAX_URL_LENGTH:
        return [f"The URL is longer than {MAX_URL_LENGTH} characters."]
    if any(c.isspace() or ord(c) < 32 for c in url):
        return ["The URL may not contain spaces or control characters."]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ["The URL cannot be parsed."]
    problems: list[str] = []
    if parts.scheme.lower() not in ("http", "https"):
        problems.append("Only http and https URLs are accepted.")
    if not parts.hostname:
        problems.append("The URL needs a host.")
    if parts.username is not None or parts.password is not None:
        problems.append("Credentials may not be part of the URL; verify requests by their signature instead.")
    if parts.fragment:
        problems.append("The URL may not have a fragment (#...).")
    if port == 0:
        problems.append("The port is not valid.")
    if parts.hostname and not problems and not host_allowed(parts.hostname, allowed_host_patterns(allowed_hosts)):
        problems.append("This host is not on the deployment's webhook allow-list.")
    return problems


def _validate_url(ctx: Context, url: str) -> str:
    problems = url_problems(url, allowed_hosts=ctx.settings.webhook_allowed_hosts)
    if problems:
        code = "webhook_host_not_allowed" if "allow-list" in problems[0] else "invalid_webhook_url"
        raise ValidationFailedError(code, problems[0], errors={"url": problems})
    return url


def _validate_event_types(types: list[str]) -> tuple[str, ...]:
    cleaned = list(dict.fromkeys(t.strip() for t in types))
    bad = [t for t in cleaned if t != "*" and not EVENT_TYPE_PATTERN.match(t)]
    if not cleaned or bad:
        raise ValidationFailedError(
            "invalid_event_types",
            'event_types must list event names such as case.created, or ["*"] for all.',
            errors={"event_types": [f"Not an event type: {t!r}" for t in bad] or ["At least one event type."]},
        )
    return ("*",) if "*" in cleaned else tuple(cleaned)


def _require_client(principal: Principal) -> None:
    if not principal.is_client or not principal.has_scope(MANAGE_SCOPE):
        raise PermissionDeniedError(
            "webhooks_client_only", "Only API clients holding the webhooks:manage scope manage webhook subscriptions."
        )


async def visible_subscription(
    ctx: Context, principal: Principal, subscription_id: str, *, write: bool
) -> Subscription:
    """The subscription if this caller may see (or, with write, change) it; else NotFoundError."""
    sub = await WebhookSubscriptionsRepository(ctx.db).get(subscription_id)
    if principal.role == "admin" and not write:
        return sub
    if principal.is_client and principal.has_scope(MANAGE_SCOPE) and sub.client_id == principal.subject:
        return sub
    # Another client's subscription is reported as missing, so ids cannot be probed.
    raise NotFoundError("webhook_not_found", "No such webhook subscription.")


async def create_subscription(*, ctx: Context, principal: Principal, data: SubscriptionData) -> SubscriptionWithSecret:
    """Subscribe a client's URL to event types; the secret is returned only here."""
    _require_client(principal)
    url = _validate_url(ctx, data.url or "")
    event_types = _validate_event_types(data.event_types or [])
    repo = WebhookSubscriptionsRepository(ctx.db)
    if await repo.count_for_client(principal.subject) >= MAX_SUBSCRIPTIONS_PER_CLIENT:
        raise ConflictError(
            "too_many_webhooks", f"A client may hold at most {MAX_SUBSCRIPTIONS_PER_CLIENT} webhook subscriptions."
        )
    sub_id = "whk_" + uuid.uuid4().hex
    secret = signing.new_secret()
    now = ctx.now()
    sub = await repo.insert(
        {
            "_id": sub_id,
            "client_id": principal.subject,
            "url": url,
            "event_types": list(event_types),
            "description": data.description or "",
            "active": True if data.active is None else data.active,
            "secret_enc": signing.encrypt_secret(secret, key=ctx.settings.data_key_bytes, subscription_id=sub_id),
            "scopes": sorted(principal.scopes),
            "created_at": now,
            "updated_at": now,
            "paused_at": None if data.active is not False else now,
        }
    )
    return SubscriptionWithSecret(sub, secret)


async def list_subscriptions(
    *, ctx: Context, principal: Principal, cursor: str | None, limit: int, client_id: str | None = None
) -> Page[Subscription]:
    """A client's own subscriptions; an admin sees every client's (optionally one client's)."""
    if principal.role == "admin":
        owner = client_id
    else:
        _require_client(principal)
        owner = principal.subject
    items, next_cursor = await WebhookSubscriptionsRepository(ctx.db).list_page(
        client_id=owner, cursor=cursor, limit=limit, now=ctx.now()
    )
    return Page(items, next_cursor)


async def get_subscription(*, ctx: Context, principal: Principal, subscription_id: str) -> Subscription:
    """One subscription its owner (or an admin) may see."""
    return await visible_subscription(ctx, principal, subscription_id, write=False)


async def update_subscription(
    *, ctx: Context, principal: Principal, subscription_id: str, data: SubscriptionData
) -> Subscription:
    """Change a subscription's URL, event types, description or active flag."""
    current = await visible_subscription(ctx, principal, subscription_id, write=True)
    now = ctx.now()
    changes: dict[str, Any] = {}
    pause: tuple[datetime, datetime] | None = None
    if data.url is not None:
        changes["url"] = _validate_url(ctx, data.url)
    if data.event_types is not None:
        changes["event_types"] = list(_validate_event_types(data.event_types))
    if data.description is not None:
        changes["description"] = data.description
    if data.active is not None:
        changes["active"] = data.active
        # Events committed while inactive are never owed (not queued for a re-activation).
        if current.active and not data.active:
            changes["paused_at"] = now
        elif data.active and not current.active:
            changes["paused_at"] = None
            pause = (current.paused_at or current.updated_at, now)
    changes["scopes"] = sorted(principal.scopes)
    changes["updated_at"] = now
    return await WebhookSubscriptionsRepository(ctx.db).update(subscription_id, changes, pause=pause)


async def delete_subscription(*, ctx: Context, principal: Principal, subscription_id: str) -> None:
    """Remove a subscription and its delivery log; nothing more is sent to it."""
    await visible_subscription(ctx, principal, subscription_id, write=True)
    await WebhookSubscriptionsRepository(ctx.db).delete(subscription_id)
    await WebhookDeliveriesRepository(ctx.db).delete_for_subscription(subscription_id)


async def rotate_secret(*, ctx: Context, principal: Principal, subscription_id: str) -> SubscriptionWithSecret:
    """Replace the signing secret; deliveries from now on are signed with the new one."""
    await visible_subscription(ctx, principal, subscription_id, write=True)
    secret = signing.new_secret()
    blob = signing.encrypt_secret(secret, key=ctx.settings.data_key_bytes, subscription_id=subscription_id)
    sub = await WebhookSubscriptionsRepository(ctx.db).update(
        subscription_id, {"secret_enc": blob, "updated_at": ctx.now()}
    )
    return SubscriptionWithSecret(sub, secret)


def secret_of(ctx: Context, sub: Subscription) -> str:
    """The plain signing secret of a subscription (for signing only)."""
    return signing.decrypt_secret(sub.secret_enc, key=ctx.settings.data_key_bytes, subscription_id=sub.id)
