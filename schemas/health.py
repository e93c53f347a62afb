"""Schemas of the operations endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


class ReadinessSchema(Schema):
    status = fields.String(
        required=True,
        metadata={
            "description": "ready; degraded (still 200: requests are served, a background loop keeps failing); "
            "not_ready (503: a store is down)",
            "enum": ["ready", "degraded", "not_ready"],
        },
    )
    checks = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "mongodb and redis: ok or down"}
    )
    loops = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={
            "description": "This process's background loops: ok, or degraded after 3 failed passes in a row "
            "(see huimin_background_loop_failures_total in /metrics)"
        },
    )
