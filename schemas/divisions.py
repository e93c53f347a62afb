"""Schemas of the division picker (省 -> 市 -> 县 -> 乡镇)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from service.stations.divisions_data import LEVELS


class DivisionQuerySchema(Schema):
    parent = fields.String(
        validate=validate.Regexp(r"^\d{6}(\d{3})?$"),
        metadata={"description": "List this division's children (the province without it)", "example": "341000"},
    )
    q = fields.String(
        validate=[
            validate.Length(min=1, max=20),
            validate.Regexp(r"^[\w·（）()' -]+$", error="Letters and digits only."),
        ],
        metadata={
            "description": "Search (under parent, if given): part of the Chinese name, or the start of its pinyin "
            "or pinyin initials",
            "example": "hs",
        },
    )
    level = fields.String(validate=validate.OneOf(LEVELS), metadata={"description": " | ".join(LEVELS)})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 100))


class DivisionSchema(Schema):
    code = fields.String(metadata={"description": "NBS code: 6 digits, 9 for a township", "example": "341021100"})
    name = fields.String(metadata={"example": "徽城镇"})
    level = fields.String(metadata={"description": " | ".join(LEVELS)})
    kind = fields.String(
        metadata={
            "description": "street (街道), town (镇), township (乡), development_zone, farm, other; "
            "or province, city, county"
        }
    )
    parent = fields.String(allow_none=True)
    station_id = fields.String(allow_none=True, metadata={"description": "Townships: the active station, if any"})
    has_children = fields.Boolean()


class DivisionListSchema(Schema):
    items = fields.List(fields.Nested(DivisionSchema))
    next_cursor = fields.String(allow_none=True, metadata={"description": "Always null: one answer per level"})
