"""Schemas of the staff-account administration API."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_load, validate

from schemas.common import StrictBoolean
from service.common.inputs import from_given
from service.common.models import STAFF_ROLES
from service.common.pii import mask_phone
from service.identity.inputs import StaffChanges

_ROLE = validate.OneOf(STAFF_ROLES)
_PREFIX = validate.Regexp(r"^\d{2,12}$", error="A division-code prefix of 2-12 digits, e.g. 3410.")
_PASSWORD = validate.Length(min=10, max=256)
_PHONE = validate.Regexp(r"^(\+?86)?1[3-9]\d{9}$", error="An 11-digit mainland mobile number, e.g. 13912345678.")
_PHONE_DOC = "Mobile number for SMS notices the person switches on in their preferences (answers show it masked)"


class StaffCreateSchema(Schema):
    username = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{2,31}$"),
        metadata={"description": "3-32 letters, digits, '_', '.', '-'; stored lower-case"},
    )
    password = fields.String(required=True, load_only=True, validate=_PASSWORD, metadata={"description": "10+ chars"})
    role = fields.String(required=True, validate=_ROLE, metadata={"description": " | ".join(STAFF_ROLES)})
    name = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "Display name, e.g. 张敏"})
    station_id = fields.String(
        allow_none=True, validate=validate.Length(min=1, max=64), metadata={"description": "Workers and heads"}
    )
    division_prefix = fields.String(
        allow_none=True, validate=_PREFIX, metadata={"description": "Supervisors: division-code prefix"}
    )
    phone = fields.String(allow_none=True, validate=_PHONE, metadata={"description": _PHONE_DOC})


class StaffUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=64))
    role = fields.String(validate=_ROLE)
    station_id = fields.String(allow_none=True, validate=validate.Length(min=1, max=64))
    division_prefix = fields.String(allow_none=True, validate=_PREFIX)
    active = StrictBoolean(metadata={"description": "false disables the account and ends its sessions"})
    phone = fields.String(allow_none=True, validate=_PHONE, metadata={"description": _PHONE_DOC + "; null removes it"})
    password = fields.String(load_only=True, validate=_PASSWORD, metadata={"description": "Reset the password"})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> StaffChanges:
        return from_given(StaffChanges, data)


class StaffQuerySchema(Schema):
    role = fields.String(validate=_ROLE)
    station_id = fields.String(validate=validate.Length(min=1, max=64))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    cursor = fields.String(validate=validate.Length(max=64))


class StaffSchema(Schema):
    id = fields.String(required=True)
    username = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    station_id = fields.String(allow_none=True)
    division_prefix = fields.String(allow_none=True)
    phone = fields.Function(
        lambda m: mask_phone(m.phone) if m.phone else None,
        allow_none=True,
        metadata={"description": "Masked mobile number, e.g. 139****5678", "type": "string"},
    )
    active = fields.Boolean(required=True)
    locked_until = fields.AwareDateTime(allow_none=True, metadata={"description": "Set while locked after failures"})
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)


class StaffPageSchema(Schema):
    items = fields.List(fields.Nested(StaffSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
