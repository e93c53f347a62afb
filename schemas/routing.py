"""Schemas of routing previews and decisions."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from service.geo import COORD_SYSTEMS
from service.routing import METHODS


class LocationSchema(Schema):
    lon = fields.Float(required=True, metadata={"description": "Longitude"})
    lat = fields.Float(required=True, metadata={"description": "Latitude"})
    coord_system = fields.String(
        validate=validate.OneOf(COORD_SYSTEMS), load_default="wgs84", metadata={"description": "wgs84, gcj02 or bd09"}
    )


class RoutingPreviewSchema(Schema):
    service_code = fields.String(required=True, metadata={"example": "elderly_home_visit"})
    location = fields.Nested(LocationSchema)
    division_code = fields.String(metadata={"description": "Township code, 9 or 12 digits"})
    exclude = fields.List(fields.String(), load_default=list, metadata={"description": "Station ids to pass over"})


class CandidateSchema(Schema):
    station_id = fields.String()
    station_code = fields.String()
    station_name = fields.String()
    distance_km = fields.Float(allow_none=True)


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
