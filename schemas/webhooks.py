"""Schemas of webhook subscriptions and their delivery log."""

from __future__ import annotations

import dataclasses
from typing import Any

from marshmallow import Schema, fields, post_load, pre_dump, validate

from schemas.common import StrictBoolean
from service.common.timestamps import rfc3339
from service.webhooks.models import DELIVERY_STATUSES
from service.webhooks.subscriptions import MAX_URL_LENGTH, SubscriptionData, SubscriptionWithSecret

# What service/webhooks/subscriptions.url_problems accepts, as a pattern: http(s), a host, an
# optional valid port, no credentials, no fragment, no spaces or control characters.
_PORT = r"(:([1-9]\d{0,3}|[1-5]\d{4}|6[0-4]\d{3}|65[0-4]\d{2}|655[0-2]\d|6553[0-5]))?"
URL_RULES = [
    validate.Length(1, MAX_URL_LENGTH),
    validate.Regexp(rf"^[Hh][Tt][Tt][Pp][Ss]?://[^\s\x00-\x1f/?#@:\[\]]+{_PORT}([/?][^\s\x00-\x1f#]*)?$"),
]
_EVENT_TYPES = fields.List(
    fields.String(validate=validate.Regexp(r"^(\*|[a-z][a-z_]*\.[a-z][a-z_]*)$")),
    validate=validate.Length(min=1, max=50),
    metadata={
        "description": 'Event types to receive, e.g. ["case.created", "case.resolved"], or ["*"] for all.',
        "problem_code": "invalid_event_types",
    },
)


class WebhookCreateSchema(Schema):
    url = fields.String(
        required=True,
        validate=URL_RULES,
        metadata={
            "problem_code": "invalid_webhook_url",
            "description": "Receiver URL (http or https, no credentials).",
            "example": "https://hooks.example.gov.cn/huimin",
        },
    )
    event_types = fields.List(
        fields.String(validate=validate.Regexp(r"^(\*|[a-z][a-z_]*\.[a-z][a-z_]*)$")),
        required=True,
        validate=validate.Length(min=1, max=50),
        metadata={
            "problem_code": "invalid_event_types",
            "description": 'Event types to receive, or ["*"] for all.',
            "example": ["case.created", "case.resolved"],
        },
    )
    description = fields.String(
        load_default="", validate=validate.Length(max=500), metadata={"description": "A note for people (说明)."}
    )
    active = StrictBoolean(load_default=True, metadata={"description": "Inactive subscriptions receive nothing."})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> SubscriptionData:
        return SubscriptionData(**data)


class WebhookUpdateSchema(Schema):
    url = fields.String(
        validate=URL_RULES, metadata={"description": "New receiver URL.", "problem_code": "invalid_webhook_url"}
    )
    event_types = _EVENT_TYPES
    description = fields.String(validate=validate.Length(max=500), metadata={"description": "A note for people."})
    active = StrictBoolean(metadata={"description": "Pause (false) or resume (true) deliveries."})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> SubscriptionData:
        return SubscriptionData(**data)


class WebhookQuerySchema(Schema):
    cursor = fields.String(load_default=None, metadata={"description": "Opaque cursor from the previous page."})
    limit = fields.Integer(
        load_default=20, validate=validate.Range(min=1, max=100), metadata={"description": "Page size."}
    )
    client_id = fields.String(load_default=None, metadata={"description": "Admins: only this client's subscriptions."})


class WebhookSchema(Schema):
    id = fields.String(metadata={"description": "Subscription id."})
    client_id = fields.String(metadata={"description": "The API client that owns it."})
    url = fields.String()
    event_types = fields.List(fields.String())
    description = fields.String()
    active = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class WebhookWithSecretSchema(WebhookSchema):
    secret = fields.String(
        metadata={"description": "Signing secret for Huimin-Signature. Shown only now: store it safely."}
    )

    @pre_dump
    def flatten(self, obj: Any, **_: Any) -> Any:
        if isinstance(obj, SubscriptionWithSecret):
            return {**dataclasses.asdict(obj.subscription), "secret": obj.secret}
        return obj


class WebhookPageSchema(Schema):
    items = fields.List(fields.Nested(WebhookSchema))
    next_cursor = fields.String(allow_none=True, metadata={"description": "Cursor of the next page, null at the end."})


class DeliveryQuerySchema(Schema):
    status = fields.String(
        load_default=None,
        validate=validate.OneOf(DELIVERY_STATUSES),
        metadata={"description": "pending, delivered or dead."},
    )
    cursor = fields.String(load_default=None, metadata={"description": "Opaque cursor from the previous page."})
    limit = fields.Integer(
        load_default=20, validate=validate.Range(min=1, max=100), metadata={"description": "Page size."}
    )


class AttemptSchema(Schema):
    at = fields.DateTime()
    status_code = fields.Integer(
        allow_none=True, metadata={"description": "Receiver's HTTP status; null if none came."}
    )
    latency_ms = fields.Integer()
    error = fields.String(allow_none=True, metadata={"description": "Why the attempt failed (truncated)."})


class DeliverySchema(Schema):
    id = fields.String(metadata={"description": "Delivery id (Huimin-Delivery-Id)."})
    subscription_id = fields.String()
    event_id = fields.String(metadata={"description": "Event id (Huimin-Event-Id): de-duplicate on this."})
    event_type = fields.String()
    case_id = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "pending, delivered or dead."})
    attempts = fields.Integer()
    last_status_code = fields.Integer(allow_none=True)
    last_latency_ms = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    next_attempt_at = fields.Method("_next_attempt", metadata={"description": "When it is tried next (pending only)."})
    delivered_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    attempt_log = fields.List(fields.Nested(AttemptSchema), metadata={"description": "The most recent attempts."})

    def _next_attempt(self, obj: Any) -> str | None:
        return rfc3339(obj.next_attempt_at) if obj.status == "pending" else None


class DeliveryPageSchema(Schema):
    items = fields.List(fields.Nested(DeliverySchema))
    next_cursor = fields.String(allow_none=True)
