"""Schemas of the service catalogue."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from schemas.common import StrictBoolean
from service.catalog.models import (
    CHOICE_TYPES,
    FIELD_TYPES,
    PERSONAL_KINDS,
    SCENARIO_CODES,
    Choice,
    FormField,
    ServiceType,
)
from service.common.worktime import CLOCKS

_CODE = validate.Regexp(r"^[a-z][a-z0-9_]{1,63}$", error="Lower-case letters, digits and underscores.")


class ScenarioSchema(Schema):
    code = fields.String(required=True, metadata={"description": "Stable scenario code", "example": "elderly"})
    name_zh = fields.String(required=True, metadata={"example": "互联网+养老"})
    name_en = fields.String(required=True, metadata={"example": "Elderly care"})


class ScenarioListSchema(Schema):
    items = fields.List(fields.Nested(ScenarioSchema), required=True)
    next_cursor = fields.String(allow_none=True, dump_default=None)


class ChoiceSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(1, 64), metadata={"description": "Stored value"})
    label_zh = fields.String(required=True, validate=validate.Length(1, 100))
    label_en = fields.String(required=True, validate=validate.Length(1, 100))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Choice:
        return Choice(**data)


class FormFieldSchema(Schema):
    code = fields.String(required=True, validate=_CODE, metadata={"description": "Answer key"})
    type = fields.String(required=True, validate=validate.OneOf(FIELD_TYPES), metadata={"description": "Answer type"})
    label_zh = fields.String(required=True, validate=validate.Length(1, 100))
    label_en = fields.String(required=True, validate=validate.Length(1, 100))
    required = StrictBoolean(load_default=False)
    choices = fields.List(fields.Nested(ChoiceSchema), load_default=list, metadata={"description": "For choice types"})
    min = fields.Float(allow_none=True, load_default=None, metadata={"description": "Smallest number allowed"})
    max = fields.Float(allow_none=True, load_default=None, metadata={"description": "Largest number allowed"})
    max_length = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(1, 10000))
    help_zh = fields.String(load_default="", validate=validate.Length(max=500))
    help_en = fields.String(load_default="", validate=validate.Length(max=500))
    personal = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.OneOf(PERSONAL_KINDS),
        metadata={
            "description": "Personal data held by the answer: phone, id_card, name or address (phone and id_card "
            "fields are so by their type); masked and hidden like the case's contact, see docs/cases.md",
            "example": "name",
        },
    )
    reporter = fields.Boolean(
        allow_none=True,
        load_default=None,
        metadata={
            "description": "The answer identifies the person filing: hidden from station staff on confidential "
            "services and not stored on anonymous reports (default: true for phone fields)"
        },
    )

    @validates_schema
    def check_choices(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("type") in CHOICE_TYPES and not data.get("choices"):
            raise ValidationError("A choice field needs choices.", "choices")

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> FormField:
        return FormField(**{**data, "choices": tuple(data.get("choices") or ())})


def _common(required: bool) -> dict[str, fields.Field]:
    def req(**kw: Any) -> dict[str, Any]:
        return {"required": True, **kw} if required else kw

    return {
        "scenario": fields.String(validate=validate.OneOf(SCENARIO_CODES), **req()),
        "name_zh": fields.String(validate=validate.Length(1, 100), **req()),
        "name_en": fields.String(validate=validate.Length(1, 200), **req()),
        "description_zh": fields.String(validate=validate.Length(max=2000), **req()),
        "description_en": fields.String(validate=validate.Length(max=4000), **req()),
        "fields": fields.List(fields.Nested(FormFieldSchema), **req()),
        "capability": fields.String(
            validate=_CODE,
            metadata={"description": "Station capability that handles it", "example": "elderly_care"},
            **req(),
        ),
        "booking": StrictBoolean(metadata={"description": "Needs a time slot"}),
        "address_required": StrictBoolean(
            metadata={"description": "A filing must give the top-level address (where the service is delivered)"}
        ),
        "confidential": StrictBoolean(metadata={"description": "Reporter hidden from station staff"}),
        "allows_anonymous": StrictBoolean(),
        "urgent": StrictBoolean(
            metadata={"description": "Urgent: its notifications are sent at once, SMS quiet hours or not"}
        ),
        "clock": fields.String(
            validate=validate.OneOf(CLOCKS),
            metadata={
                "description": "How its limits count: working (office hours of Chinese working days) or calendar "
                "(around the clock, for emergencies)",
                "example": "working",
            },
        ),
        "sign_within_hours": fields.Integer(
            validate=validate.Range(1, 720), metadata={"description": "Sign-for limit, hours on the service's clock"}
        ),
        "resolve_within_days": fields.Integer(
            validate=validate.Range(1, 365), metadata={"description": "Resolution limit, days on the service's clock"}
        ),
        **_guide_fields(),
    }


def _guide_fields() -> dict[str, fields.Field]:
    """The service-page texts a resident reads before filing (all optional)."""
    material = fields.String(validate=validate.Length(1, 200))
    return {
        "icon": fields.String(
            validate=validate.Regexp(r"^([a-z][a-z0-9-]{0,39})?$"),
            metadata={"description": "Icon key the apps map to a picture", "example": "home-visit"},
        ),
        "conditions_zh": fields.String(validate=validate.Length(max=1000), metadata={"description": "Who may apply"}),
        "conditions_en": fields.String(validate=validate.Length(max=2000)),
        "materials_zh": fields.List(
            material, validate=validate.Length(max=20), metadata={"description": "What to prepare, one item each"}
        ),
        "materials_en": fields.List(material, validate=validate.Length(max=20)),
        "time_limit_zh": fields.String(
            validate=validate.Length(max=200), metadata={"description": "How long handling takes, in plain words"}
        ),
        "time_limit_en": fields.String(validate=validate.Length(max=400)),
    }


def _tuples(data: dict[str, Any]) -> dict[str, Any]:
    for key in ("fields", "materials_zh", "materials_en"):
        if key in data:
            data[key] = tuple(data[key])
    return data


class ServiceCreateSchema(Schema.from_dict(_common(True))):  # type: ignore[misc]
    code = fields.String(required=True, validate=_CODE, metadata={"description": "Stable service code"})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> ServiceType:
        return ServiceType(version=1, **_tuples(data))


class ServiceUpdateSchema(Schema.from_dict(_common(False))):  # type: ignore[misc]
    expected_version = fields.Integer(
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "Refuse the change unless this is the current version"},
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return _tuples(data)


class ServiceSchema(Schema):
    code = fields.String(required=True)
    version = fields.Integer(required=True)
    scenario = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    description_zh = fields.String()
    description_en = fields.String()
    fields_ = fields.List(fields.Nested(FormFieldSchema), data_key="fields", attribute="fields")
    capability = fields.String()
    booking = fields.Boolean()
    address_required = fields.Boolean(
        required=True,
        metadata={
            "description": "A filing must give the top-level `address`; contact and address are never form fields"
        }
    )
    confidential = fields.Boolean()
    allows_anonymous = fields.Boolean()
    urgent = fields.Boolean()
    clock = fields.String(metadata={"description": "working or calendar: how the limits count"})
    sign_within_hours = fields.Integer()
    resolve_within_days = fields.Integer()
    icon = fields.String(required=True, metadata={"description": "Icon key the apps map to a picture"})
    conditions_zh = fields.String(required=True, metadata={"description": "Who may apply (申请条件)"})
    conditions_en = fields.String(required=True)
    materials_zh = fields.List(fields.String(), required=True, metadata={"description": "What to prepare (所需材料)"})
    materials_en = fields.List(fields.String(), required=True)
    time_limit_zh = fields.String(required=True, metadata={"description": "How long handling takes (办理时限)"})
    time_limit_en = fields.String(required=True)
    active = fields.Boolean(metadata={"description": "False once retired"})
    created_at = fields.AwareDateTime(allow_none=True)


class ServiceListSchema(Schema):
    items = fields.List(fields.Nested(ServiceSchema), required=True)
    next_cursor = fields.String(allow_none=True, dump_default=None)


class ServiceQuerySchema(Schema):
    scenario = fields.String(validate=validate.OneOf(SCENARIO_CODES), metadata={"description": "Only this scenario"})


class ServiceVersionQuerySchema(Schema):
    # Bounded: MongoDB cannot compare with integers wider than 64 bits (the driver raises).
    version = fields.Integer(
        validate=validate.Range(min=1, max=2**31 - 1), metadata={"description": "An older version"}
    )
