"""Schemas of the Open311 GeoReport v2 facade (element names as the specification has them).

The input is form-encoded and has open-ended ``attribute[<code>]`` keys, so the service
reads it; the input schemas here describe it in the OpenAPI document.
"""

from __future__ import annotations

from marshmallow import Schema, fields

_JURISDICTION = fields.String(metadata={"description": "Optional; must be 340000 (安徽省 Anhui) when given"})
_API_KEY = fields.String(
    metadata={"description": "client_id:client_secret of an API client with the open311 scope (or HTTP Basic)"}
)


class DiscoveryEndpointSchema(Schema):
    specification = fields.String(required=True)
    url = fields.String(required=True)
    changeset = fields.String(required=True)
    type = fields.String(required=True, metadata={"description": "production"})
    formats = fields.List(fields.String(), required=True)


class DiscoverySchema(Schema):
    changeset = fields.String(required=True)
    contact = fields.String(required=True)
    key_service = fields.String(required=True)
    endpoints = fields.List(fields.Nested(DiscoveryEndpointSchema), required=True)


class Open311ServiceSchema(Schema):
    service_code = fields.String(required=True)
    service_name = fields.String(required=True, metadata={"description": "Chinese name, then English"})
    description = fields.String(allow_none=True)
    metadata = fields.Boolean(required=True, metadata={"description": "true when the service has attributes"})
    type = fields.String(required=True, metadata={"description": "realtime: requests are created at once"})
    keywords = fields.String(allow_none=True)
    group = fields.String(allow_none=True, metadata={"description": "The scenario (互联网+…)"})


class AttributeValueSchema(Schema):
    key = fields.String(required=True)
    name = fields.String(required=True)


class AttributeSchema(Schema):
    variable = fields.Boolean(required=True)
    code = fields.String(required=True)
    datatype = fields.String(
        required=True,
        metadata={"description": "string, number, datetime, text, singlevaluelist or multivaluelist"},
    )
    required = fields.Boolean(required=True)
    datatype_description = fields.String(allow_none=True)
    order = fields.Integer(required=True)
    description = fields.String(required=True)
    values = fields.List(fields.Nested(AttributeValueSchema), required=True)


class ServiceDefinitionSchema(Schema):
    service_code = fields.String(required=True)
    attributes = fields.List(fields.Nested(AttributeSchema), required=True)


class CreatedRequestSchema(Schema):
    service_request_id = fields.String(required=True, metadata={"description": "The case number (HM…)"})
    service_notice = fields.String(allow_none=True)
    account_id = fields.String(allow_none=True)


class ServiceRequestSchema(Schema):
    service_request_id = fields.String(required=True, metadata={"description": "The case number (HM…)"})
    status = fields.String(required=True, metadata={"description": "open or closed"})
    status_notes = fields.String(allow_none=True)
    service_name = fields.String(allow_none=True)
    service_code = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    agency_responsible = fields.String(allow_none=True, metadata={"description": "The station's name"})
    service_notice = fields.String(allow_none=True)
    requested_datetime = fields.String(allow_none=True)
    updated_datetime = fields.String(allow_none=True)
    expected_datetime = fields.String(allow_none=True, metadata={"description": "The resolve due time"})
    address = fields.String(allow_none=True)
    address_id = fields.String(allow_none=True)
    zipcode = fields.String(allow_none=True)
    lat = fields.Float(allow_none=True)
    long = fields.Float(allow_none=True)
    media_url = fields.String(allow_none=True)


class TokenSchema(Schema):
    service_request_id = fields.String(required=True)
    token = fields.String(required=True)


class Open311ErrorSchema(Schema):
    code = fields.Integer(required=True, metadata={"description": "The HTTP status"})
    description = fields.String(required=True)


class Open311QuerySchema(Schema):
    jurisdiction_id = _JURISDICTION


class RequestsQuerySchema(Schema):
    jurisdiction_id = _JURISDICTION
    api_key = _API_KEY
    service_request_id = fields.String(metadata={"description": "Comma-separated; overrides the other filters"})
    service_code = fields.String(metadata={"description": "Comma-separated"})
    start_date = fields.String(metadata={"description": "RFC 3339; default 90 days before end_date or now"})
    end_date = fields.String(metadata={"description": "RFC 3339; the range may span at most 90 days"})
    status = fields.String(metadata={"description": "open, closed, or open,closed"})


class ByKeyQuerySchema(Schema):
    jurisdiction_id = _JURISDICTION
    api_key = _API_KEY


class CreateRequestFormSchema(Schema):
    api_key = _API_KEY
    jurisdiction_id = _JURISDICTION
    service_code = fields.String(required=True)
    lat = fields.Float(metadata={"description": "WGS-84 latitude (with long)"})
    long = fields.Float(metadata={"description": "WGS-84 longitude (with lat)"})
    address_string = fields.String(metadata={"description": "Kept as the address; cannot place a request alone"})
    address_id = fields.String(metadata={"description": "A township division code (9 or 12 digits) places it"})
    description = fields.String()
    media_url = fields.String()
    email = fields.String()
    device_id = fields.String()
    account_id = fields.String()
    first_name = fields.String()
    last_name = fields.String()
    phone = fields.String()
    attribute = fields.Dict(
        metadata={"description": "attribute[<code>]=value; multivaluelist: attribute[<code>][]=a&attribute[<code>][]=b"}
    )
