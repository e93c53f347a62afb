"""Schemas of notifications: WeChat subscriptions, templates, the inbox, preferences, the live feed."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

SUBSCRIPTION_RESULTS = ("accept", "reject", "ban", "filter")


class SubscriptionCreateSchema(Schema):
    template_id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "WeChat template id the mini program asked consent for"},
    )
    result = fields.String(
        required=True,
        validate=validate.OneOf(SUBSCRIPTION_RESULTS),
        metadata={"description": "The answer wx.requestSubscribeMessage gave: accept, reject, ban or filter"},
    )


class SubscriptionSchema(Schema):
    template_key = fields.String(metadata={"description": "accepted, scheduled, resolved, returned, visit_followup"})
    template_id = fields.String(metadata={"description": "WeChat template id"})
    title_zh = fields.String()
    title_en = fields.String()
    remaining = fields.Integer(metadata={"description": "One-time grants left (each message sent uses one)"})
    banned = fields.Boolean(metadata={"description": "WeChat reported the template banned for this person"})
    last_result = fields.String(allow_none=True)


class SubscriptionListSchema(Schema):
    items = fields.List(fields.Nested(SubscriptionSchema))


class TemplateFieldSchema(Schema):
    key = fields.String(metadata={"description": "WeChat data key, e.g. thing1, character_string2, time3, phrase5"})
    name_zh = fields.String()
    name_en = fields.String()


class TemplateSchema(Schema):
    key = fields.String()
    template_id = fields.String()
    title_zh = fields.String()
    title_en = fields.String()
    event_types = fields.List(fields.String())
    fields_ = fields.List(fields.Nested(TemplateFieldSchema), data_key="fields", attribute="fields")


class TemplateListSchema(Schema):
    items = fields.List(fields.Nested(TemplateSchema))


class InboxQuerySchema(Schema):
    unread = fields.Boolean(load_default=None, metadata={"description": "true: only unread; false: only read"})
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class NotificationSchema(Schema):
    id = fields.String()
    event_type = fields.String()
    title_zh = fields.String()
    title_en = fields.String()
    body_zh = fields.String()
    body_en = fields.String()
    case_id = fields.String(allow_none=True)
    case_number = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    read = fields.Method("_read", metadata={"description": "Whether it was marked read"})
    read_at = fields.AwareDateTime(allow_none=True)

    def _read(self, obj: object) -> bool:
        return getattr(obj, "read_at", None) is not None


class InboxSchema(Schema):
    items = fields.List(fields.Nested(NotificationSchema))
    next_cursor = fields.String(allow_none=True)
    unread_count = fields.Integer()


class ReadAllSchema(Schema):
    marked = fields.Integer(metadata={"description": "How many entries were marked read"})


class ChannelChoiceSchema(Schema):
    inbox = fields.Boolean()
    sms = fields.Boolean()
    stream = fields.Boolean()
    wechat = fields.Boolean()


class PreferencesUpdateSchema(Schema):
    events = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(ChannelChoiceSchema),
        load_default=None,
        metadata={"description": "event type -> {channel: on/off}; staff: inbox, sms, stream; residents: wechat, sms"},
    )
    quiet_hours = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(r"^(([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d)?$"),
        metadata={
            "description": "Non-urgent SMS wait while these hours last, Asia/Shanghai, e.g. 21:00-08:00; '' for none"
        },
    )


class PreferencesSchema(Schema):
    events = fields.Dict(keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.Boolean()))
    channels = fields.List(fields.String())
    quiet_hours = fields.String()
    timezone = fields.String()


class StreamQuerySchema(Schema):
    access_token = fields.String(
        load_default=None,
        metadata={"description": "The access token, for EventSource clients that cannot send Authorization"},
    )
    last_event_id = fields.String(
        load_default=None,
        validate=validate.Length(max=40),
        metadata={"description": "Resume after this message id (same as the Last-Event-ID header)"},
    )


class ParkedEventQuerySchema(Schema):
    cursor = fields.String(
        load_default=None, validate=validate.Length(min=1, max=64), metadata={"description": "next_cursor of a page"}
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class ParkedEventSchema(Schema):
    event_id = fields.String(required=True, attribute="event.id")
    event_type = fields.String(required=True, attribute="event.type", metadata={"example": "case.created"})
    case_id = fields.String(allow_none=True, attribute="event.case_id")
    case_number = fields.String(allow_none=True, attribute="event.case_number")
    attempts = fields.Integer(required=True, metadata={"description": "Tries made before it was parked"})
    last_error = fields.String(required=True, metadata={"description": "The failure of the last try"})
    parked_at = fields.AwareDateTime(required=True)


class ParkedEventPageSchema(Schema):
    items = fields.List(fields.Nested(ParkedEventSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
