"""marshmallow schemas: what the API reads and writes, and the source of the OpenAPI document."""

from marshmallow import fields

from service.common.timestamps import rfc3339

# Every DateTime field of every schema writes times the one way the API does (reading is
# unchanged: any RFC 3339 / ISO 8601 time with an offset).
fields.DateTime.SERIALIZATION_FUNCS = {**fields.DateTime.SERIALIZATION_FUNCS, "iso": rfc3339, "iso8601": rfc3339}
