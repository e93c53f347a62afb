"""Schemas of township social-work stations."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, pre_dump, validate

from schemas.common import StrictBoolean
from service.common.geo import COORD_SYSTEMS
from service.common.inputs import from_given
from service.stations.inputs import StationChanges, StationRegistration
from service.stations.models import KINDS, PRECISIONS

# The constraints below are the ones service/stations/service.py enforces, stated so they reach the
# OpenAPI document; the service still checks everything (CSV and GeoJSON imports bypass these).
NON_BLANK = validate.Regexp(r"^\s*\S", error="Must be non-empty text.")
PHONE_PATTERN = r"^((\+?86-?)?(1[3-9]\d{9}|0\d{2,3}-?\d{7,8}))?$"


class PointSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(("Point",)))
    coordinates = fields.Tuple(
        (
            fields.Float(allow_nan=False, validate=validate.Range(-180, 180)),
            fields.Float(allow_nan=False, validate=validate.Range(-90, 90)),
        ),
        required=True,
        metadata={"description": "[lon, lat] in degrees"},
    )


def _station_fields(required: bool) -> dict[str, fields.Field]:
    def req(**kw: Any) -> dict[str, Any]:
        return {"required": True, **kw} if required else kw

    out: dict[str, fields.Field] = {
        "code": fields.String(
            validate=validate.Regexp(r"^[1-9]\d{8}(000)?$"),
            metadata={"description": "Township division code, 9 digits (12 accepted with trailing 000)"},
            **req(),
        ),
        "name": fields.String(
            validate=[validate.Length(1, 100), NON_BLANK], metadata={"example": "富堨镇社工站"}, **req()
        ),
        "kind": fields.String(
            validate=validate.OneOf(KINDS), metadata={"description": "street 街道, town 镇, township 乡, other"}
        ),
        "county_code": fields.String(
            validate=validate.Regexp(r"^\d{6}$"),
            metadata={"description": "6 digits, the first 6 of the code; default: the code's first 6"},
        ),
        "county_name": fields.String(validate=[validate.Length(1, 50), NON_BLANK]),
        "city_code": fields.String(
            validate=validate.Regexp(r"^\d{6}$"), metadata={"description": "6 digits; default: the code's first 4 + 00"}
        ),
        "city_name": fields.String(validate=[validate.Length(1, 50), NON_BLANK]),
        "location": fields.Nested(
            PointSchema,
            metadata={"description": "GeoJSON Point [lon, lat]: WGS-84, or on reads the coord_system asked for"},
            **req(),
        ),
        "precision": fields.String(
            validate=validate.OneOf(PRECISIONS),
            metadata={
                "description": "exact (geocoded, surveyed) or approx (a stand-in such as the county seat): "
                "routing picks a township by distance only when its county's candidates are all exact; "
                "otherwise a location-only request goes to the county's dispatch queue (needs_township)"
            },
        ),
        "jurisdiction": fields.Dict(
            allow_none=True, metadata={"description": "GeoJSON Polygon or MultiPolygon the station serves"}
        ),
        "capabilities": fields.List(
            fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$")),
            metadata={"description": "What it handles, e.g. elderly_care"},
        ),
        "capacity": fields.Integer(
            allow_none=True,
            strict=True,
            validate=validate.Range(0, 1_000_000),
            metadata={"description": "Open cases it can hold; null: no limit"},
        ),
        "opening_hours": fields.Raw(
            allow_none=True, metadata={"description": "Text, or {mon..sun, holidays: 'HH:MM-HH:MM' or 'closed'}"}
        ),
        "contact_phone": fields.String(
            allow_none=True,
            validate=validate.Regexp(PHONE_PATTERN),
            metadata={"description": "Mobile or landline; empty for none"},
        ),
        "active": StrictBoolean(),
    }
    for field in out.values():  # a fault here is the one the service reports for these fields
        field.metadata = {**field.metadata, "problem_code": "invalid_station"}
    return out


class StationCreateSchema(Schema.from_dict(_station_fields(True))):  # type: ignore[misc]
    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> StationRegistration:
        return from_given(StationRegistration, data)


class StationUpdateSchema(Schema.from_dict(_station_fields(False))):  # type: ignore[misc]
    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> StationChanges:
        return from_given(StationChanges, data)


class StationSchema(Schema.from_dict(_station_fields(False))):  # type: ignore[misc]
    id = fields.String(required=True)
    open_cases = fields.Integer(metadata={"description": "Open cases counted against the capacity"})
    created_at = fields.AwareDateTime(allow_none=True)
    updated_at = fields.AwareDateTime(allow_none=True)
    distance_km = fields.Float(allow_none=True, metadata={"description": "From the point searched near"})

    @pre_dump
    def flatten(self, obj: Any, **_: Any) -> Any:
        if hasattr(obj, "station"):  # a search hit: station plus distance
            return {**dataclasses.asdict(obj.station), "distance_km": obj.distance_km}
        return obj


class StationPageSchema(Schema):
    items = fields.List(fields.Nested(StationSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class StationQuerySchema(Schema):
    near = fields.String(
        metadata={"description": "LON,LAT: nearest first, with distance_km", "example": "117.2272,31.8206"}
    )
    coord_system = fields.String(
        validate=validate.OneOf(COORD_SYSTEMS),
        load_default="wgs84",
        metadata={"description": "System of near= and of the locations returned: wgs84, gcj02 (WeChat/Tencent), bd09"},
    )
    service = fields.String(
        validate=validate.Length(max=64), metadata={"description": "Only stations offering this service code"}
    )
    county = fields.String(validate=validate.Regexp(r"^\d{6}$"), metadata={"description": "County code"})
    city = fields.String(validate=validate.Regexp(r"^\d{6}$"), metadata={"description": "City code, e.g. 340100"})
    include_inactive = fields.Boolean(load_default=False)
    limit = fields.Integer(validate=validate.Range(1, 100), load_default=20)
    cursor = fields.String()

    @post_load
    def split_near(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if "near" in data:
            parts = data["near"].split(",")
            try:
                lon, lat = (float(p) for p in parts)
            except ValueError:
                raise ValidationError("Use LON,LAT in decimal degrees.", "near") from None
            if not all(math.isfinite(v) for v in (lon, lat)):
                raise ValidationError("Use finite numbers.", "near")
            data["near"] = (lon, lat)
        return data


class CoordSystemQuerySchema(Schema):
    coord_system = fields.String(
        validate=validate.OneOf(COORD_SYSTEMS),
        load_default="wgs84",
        metadata={"description": "System of the locations returned: wgs84 (stored), gcj02 (WeChat/Tencent), bd09"},
    )


class ImportQuerySchema(Schema):
    dry_run = fields.Boolean(load_default=True, metadata={"description": "Only check; false writes all or nothing"})


class RowErrorSchema(Schema):
    row = fields.Integer(metadata={"description": "CSV line number (header = 1) or GeoJSON feature number from 1"})
    field = fields.String()
    message = fields.String()


class ImportReportSchema(Schema):
    dry_run = fields.Boolean()
    total = fields.Integer(metadata={"description": "Rows or features read"})
    to_create = fields.Integer()
    to_update = fields.Integer()
    written = fields.Boolean()
    errors = fields.List(fields.Nested(RowErrorSchema))
