"""Uploaded photos."""

from __future__ import annotations

from marshmallow import Schema, fields


class UploadSchema(Schema):
    id = fields.String(required=True, metadata={"description": "Upload id; reference it from a case's photos."})
    content_type = fields.String(
        required=True, metadata={"description": "Image type recognised from the file's bytes, e.g. image/jpeg."}
    )
    size = fields.Integer(required=True, metadata={"description": "Size in bytes."})
    sha256 = fields.String(required=True, metadata={"description": "SHA-256 of the bytes, hex."})
    created_at = fields.DateTime(required=True, metadata={"description": "When it was uploaded (RFC 3339)."})
