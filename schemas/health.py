"""Schemas of the operations endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


class ReadinessSchema(Schema):
    status = fields.String(required=True, metadata={"description": "ready or not_ready"})
    checks = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "mongodb and redis: ok or down"}
    )
