"""Schemas of routing previews and decisions."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from service.common.geo import COORD_SYSTEMS
from service.stations.routing import METHODS


class LocationSchema(Schema):
    lon = fields.Float(
        required=True, allow_nan=False, validate=validate.Range(-180, 180), metadata={"description": "Longitude"}
    )
    lat = fields.Float(
        required=True, allow_nan=False, validate=validate.Range(-90, 90), metadata={"description": "Latitude"}
    )
    coord_system = fields.String(
        validate=validate.OneOf(COORD_SYSTEMS), load_default="wgs84", metadata={"description": "wgs84, gcj02 or bd09"}
    )


class RoutingPreviewSchema(Schema):
    service_code = fields.String(
        required=True, validate=validate.Length(1, 64), metadata={"example": "elderly_home_visit"}
    )
    location = fields.Nested(LocationSchema, metadata={"problem_code": "invalid_coordinates"})
    division_code = fields.String(
        validate=validate.Regexp(r"^\d{9}(\d{3})?$"),
        metadata={"description": "Township code, 9 or 12 digits", "problem_code": "invalid_division_code"},
    )
    exclude = fields.List(fields.String(), load_default=list, metadata={"description": "Station ids to pass over"})


class CandidateSchema(Schema):
    station_id = fields.String()
    station_code = fields.String()
    station_name = fields.String()
    distance_km = fields.Float(allow_none=True)


class TownshipSchema(Schema):
    code = fields.String(metadata={"description": "Township division code (9 digits)", "example": "341021103"})
    name = fields.String(metadata={"description": "Township name (乡镇/街道)", "example": "徽城镇"})
    station_id = fields.String(metadata={"description": "The township's station"})
    station_name = fields.String(metadata={"example": "徽城镇社工站"})


class RoutingDecisionSchema(Schema):
    method = fields.String(metadata={"description": " | ".join(METHODS)})
    station_id = fields.String(allow_none=True)
    station_code = fields.String(allow_none=True)
    station_name = fields.String(allow_none=True)
    county_code = fields.String(
        allow_none=True, metadata={"description": "The station's county, or for unrouted the county queue"}
    )
    distance_km = fields.Float(allow_none=True)
    candidates = fields.List(fields.Nested(CandidateSchema))
    reason = fields.String(metadata={"description": "One line a worker can read, Chinese first"})
    excluded = fields.List(fields.String())
    in_service_area = fields.Boolean(
        metadata={
            "description": "False when the place is outside the service area (no Anhui county holds it and no "
            "station is within reach): filing a case there answers 422 outside_service_area"
        }
    )
    needs_township = fields.Boolean(
        metadata={
            "description": "True when the location cannot tell the county's townships apart (station points "
            "approximate or coinciding): the request waits in the county's dispatch queue unless it names one "
            "of `townships` by `division_code`"
        }
    )
    townships = fields.List(
        fields.Nested(TownshipSchema),
        metadata={"description": "With needs_township: the county's townships whose station offers the service"},
    )
