"""Schemas of the integrator-client administration API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from service.common.models import CLIENT_SCOPES

_DIVISION_DOC = (
    "Division-code prefix of the territory whose visit-programme events (visit.missed, with visits:read) "
    "and volunteer-service events (with volunteers:read) this client receives, and whose people a calling platform "
    "(visits:write) may record machine calls to, e.g. 3410 for 黄山市; null: none of them"
)
_PREFIX = validate.Regexp(r"^\d{2,12}$", error="A division-code prefix of 2-12 digits, e.g. 3410.")


class ClientCreateSchema(Schema):
    name = fields.String(
        required=True, validate=validate.Length(min=1, max=100), metadata={"description": "e.g. 皖事通 Wanshitong"}
    )
    scopes = fields.List(
        fields.String(validate=validate.OneOf(CLIENT_SCOPES)),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "Any of: " + ", ".join(CLIENT_SCOPES)},
    )
    rate_limit_per_minute = fields.Integer(load_default=600, validate=validate.Range(min=1, max=100000))
    division_prefix = fields.String(allow_none=True, validate=_PREFIX, metadata={"description": _DIVISION_DOC})


class ClientUpdateSchema(Schema):
    division_prefix = fields.String(
        required=True, allow_none=True, validate=_PREFIX, metadata={"description": _DIVISION_DOC}
    )


class ClientQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    cursor = fields.String(validate=validate.Length(max=200))


class ClientSchema(Schema):
    client_id = fields.String(required=True)
    name = fields.String(required=True)
    scopes = fields.List(fields.String(), required=True)
    rate_limit_per_minute = fields.Integer(required=True)
    active = fields.Boolean(required=True)
    division_prefix = fields.String(allow_none=True, required=True, metadata={"description": _DIVISION_DOC})
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)


class IssuedClientSchema(Schema):
    client = fields.Nested(ClientSchema, required=True)
    client_secret = fields.String(required=True, metadata={"description": "Shown only this once; store it safely"})


class ClientPageSchema(Schema):
    items = fields.List(fields.Nested(ClientSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
