"""Schemas of the visit register (探访关爱对象)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_load, validate

from schemas.common import StrictBoolean
from service.common.geo import COORD_SYSTEMS
from service.common.inputs import from_given
from service.visits.inputs import ElderChanges, ElderRegistration
from service.visits.models import CONSENT_METHODS, END_REASONS, FLAGS
from service.visits.periods import TIERS

FLAG_HELP = (
    "alone 独居, empty_nest 空巢, left_behind 留守, very_old 高龄 (80+), "
    "disabled 失能, dementia 失智, extreme_poverty 特困"
)
TIER_HELP = "high 高风险 (weekly), key 重点 (monthly), general 一般 (quarterly)"


PHONE_PATTERN = r"^(\+?86-?)?(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$"
# Text that is not only blanks (the register keeps it trimmed).
NON_BLANK = validate.Regexp(r"^\s*\S", error="Must be non-empty text.")


class LocationInSchema(Schema):
    lon = fields.Float(required=True, allow_nan=False, validate=validate.Range(-180, 180))
    lat = fields.Float(required=True, allow_nan=False, validate=validate.Range(-90, 90))
    coord_system = fields.String(validate=validate.OneOf(COORD_SYSTEMS), load_default="wgs84")


class ContactSchema(Schema):
    name = fields.String(required=True, validate=[validate.Length(1, 50), NON_BLANK])
    relation = fields.String(required=True, validate=[validate.Length(1, 20), NON_BLANK], metadata={"example": "女儿"})
    phone = fields.String(
        required=True,
        validate=validate.Regexp(PHONE_PATTERN),
        metadata={"description": "Mobile (13800000001) or landline (0551-12345678)"},
    )


class ConsentInSchema(Schema):
    given = StrictBoolean(required=True, metadata={"description": "Whether the person agreed to be visited"})
    method = fields.String(required=True, validate=validate.OneOf(CONSENT_METHODS))
    at = fields.AwareDateTime(metadata={"description": "Default: now"})
    recorded_by = fields.String(metadata={"description": "Default: the caller"})


class ConsentSchema(Schema):
    given = fields.Boolean()
    method = fields.String()
    at = fields.AwareDateTime()
    recorded_by = fields.String()


def _fields(required: bool) -> dict[str, fields.Field]:
    req = {"required": True} if required else {}
    out: dict[str, fields.Field] = {
        "name": fields.String(validate=[validate.Length(1, 50), NON_BLANK], metadata={"example": "王秀英"}, **req),
        "phone": fields.String(
            allow_none=True, validate=validate.Regexp(PHONE_PATTERN), metadata={"description": "Mobile or landline"}
        ),
        "address": fields.String(allow_none=True, validate=[validate.Length(1, 200), NON_BLANK]),
        "location": fields.Nested(LocationInSchema, allow_none=True, metadata={"description": "Stored as WGS-84"}),
        "township": fields.String(
            validate=validate.Regexp(r"^[1-9]\d{8}$"),
            metadata={"description": "9-digit township code; its station becomes responsible"},
            **req,
        ),
        "flags": fields.List(fields.String(validate=validate.OneOf(FLAGS)), metadata={"description": FLAG_HELP}),
        "tier": fields.String(
            validate=validate.OneOf(TIERS),
            metadata={"description": TIER_HELP + "; default: the suggested tier. A tier given here is pinned."},
        ),
        "visitor_id": fields.String(
            allow_none=True,
            validate=[validate.Length(1, 64), NON_BLANK],
            metadata={"description": "Staff id of the assigned visitor"},
        ),
        "emergency_contacts": fields.List(fields.Nested(ContactSchema), validate=validate.Length(max=5)),
        "consent": fields.Nested(ConsentInSchema, allow_none=True),
    }
    for field in out.values():  # a fault here is the one the service reports for these fields
        field.metadata = {**field.metadata, "problem_code": "invalid_elder"}
    return out


class ElderCreateSchema(Schema.from_dict(_fields(True))):  # type: ignore[misc]
    id_card = fields.String(
        required=True,
        validate=validate.Regexp(r"^\d{17}[\dXx]$"),
        metadata={
            "description": "18-character ID number (GB 11643; the last character is a check digit)",
            "problem_code": "invalid_id_card",
        },
    )
    birth_date = fields.Date(metadata={"description": "Must agree with the ID number; default: from it"})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> ElderRegistration:
        return from_given(ElderRegistration, data)


class ElderUpdateSchema(Schema.from_dict(_fields(False))):  # type: ignore[misc]
    tier_pinned = fields.Boolean(
        metadata={"description": "false: the tier follows the tier rules again; true (with tier): pin it"}
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> ElderChanges:
        return from_given(ElderChanges, data)


class EndedSchema(Schema):
    reason = fields.String()
    note = fields.String(allow_none=True)
    at = fields.AwareDateTime()
    by = fields.String()


class ElderSchema(Schema):
    id = fields.String()
    name = fields.String()
    id_card_masked = fields.String(metadata={"description": "ID number, masked; the full number is never returned"})
    birth_date = fields.String()
    age = fields.Integer()
    gender = fields.String()
    phone = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    location = fields.Dict(allow_none=True, metadata={"description": "GeoJSON Point, WGS-84 [lon, lat]"})
    township = fields.String()
    station_id = fields.String()
    county_code = fields.String()
    city_code = fields.String()
    flags = fields.List(fields.String())
    suggested_tier = fields.String(metadata={"description": "The tier the flags suggest"})
    tier = fields.String(metadata={"description": TIER_HELP})
    tier_pinned = fields.Boolean(metadata={"description": "Set by staff; the tier rules and new flags leave it"})
    previous_tier = fields.String(allow_none=True, metadata={"description": "Still in force until tier_from"})
    tier_from = fields.AwareDateTime(
        allow_none=True, metadata={"description": "When the new tier takes effect: the start of the next ISO week"}
    )
    visitor_id = fields.String(allow_none=True)
    emergency_contacts = fields.List(fields.Nested(ContactSchema))
    consent = fields.Nested(ConsentSchema, allow_none=True)
    active = fields.Boolean()
    ended = fields.Nested(EndedSchema, allow_none=True)
    last_visited_at = fields.AwareDateTime(allow_none=True)
    version = fields.Integer()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class ElderPageSchema(Schema):
    items = fields.List(fields.Nested(ElderSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class ElderQuerySchema(Schema):
    station = fields.String(metadata={"description": "Station id"})
    tier = fields.String(validate=validate.OneOf(TIERS))
    flag = fields.String(validate=validate.OneOf(FLAGS))
    active = fields.Boolean(load_default=True, allow_none=True)
    limit = fields.Integer(validate=validate.Range(1, 100), load_default=20)
    cursor = fields.String()


class ElderEndSchema(Schema):
    reason = fields.String(
        required=True,
        validate=validate.OneOf(END_REASONS),
        metadata={"description": "moved 迁出, deceased 去世, in_care 入住养老机构, other 其他"},
    )
    note = fields.String(allow_none=True, validate=validate.Length(max=500))


class ElderImportQuerySchema(Schema):
    dry_run = fields.Boolean(load_default=True, metadata={"description": "Only check; false writes all or nothing"})


class RowErrorSchema(Schema):
    row = fields.Integer(metadata={"description": "CSV line number (header = 1)"})
    field = fields.String()
    message = fields.String()


class ElderImportReportSchema(Schema):
    dry_run = fields.Boolean()
    total = fields.Integer()
    to_create = fields.Integer()
    written = fields.Boolean()
    encoding = fields.String(metadata={"description": "As detected: utf-8, utf-8-sig (with BOM) or gb18030 (GBK)"})
    errors = fields.List(fields.Nested(RowErrorSchema))


class TierRuleSchema(Schema):
    tier = fields.String(metadata={"description": TIER_HELP})
    any_of = fields.List(fields.String(), metadata={"description": "Matches with at least one of these flags"})
    all_of = fields.List(fields.String(), metadata={"description": "Matches only with all of these flags"})
    note = fields.String(allow_none=True)


class ProvinceTiersSchema(Schema):
    province = fields.String(metadata={"description": "Two-digit province code, or default"})
    name = fields.String()
    basis = fields.String(allow_none=True)
    default = fields.String(metadata={"description": "The tier when no rule matches"})
    rules = fields.List(
        fields.Nested(TierRuleSchema), metadata={"description": "Tried in order; the first match decides"}
    )


class TierTableSchema(Schema):
    source = fields.String(metadata={"description": "The configuration file the table was read from"})
    provinces = fields.List(
        fields.Nested(ProvinceTiersSchema),
        attribute="province_list",
        metadata={"description": "Per province; 'default' applies to provinces without their own table"},
    )


class TierRulesApplyQuerySchema(Schema):
    dry_run = fields.Boolean(load_default=True, metadata={"description": "Only list who moves; false applies"})


class TierMoveSchema(Schema):
    elder_id = fields.String()
    name_masked = fields.String()
    station_id = fields.String()
    township = fields.String()
    from_tier = fields.String()
    to_tier = fields.String()
    effective_from = fields.AwareDateTime(metadata={"description": "Start of the next ISO week"})


class TierRulesReportSchema(Schema):
    dry_run = fields.Boolean()
    source = fields.String()
    checked = fields.Integer(metadata={"description": "Active people read"})
    pinned = fields.Integer(metadata={"description": "People with a pinned tier, left alone"})
    moving = fields.Integer(metadata={"description": "People whose tier moves (or would, in a dry run)"})
    written = fields.Integer()
    moves = fields.List(fields.Nested(TierMoveSchema), metadata={"description": "Up to 1,000 of them"})
    moves_truncated = fields.Boolean()
