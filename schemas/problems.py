"""The RFC 9457 problem document every error response carries."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields


class ProblemSchema(Schema):
    class Meta:
        # Some problems carry more members (limit, field, required_scopes): RFC 9457 extensions.
        unknown = INCLUDE

    type = fields.String(
        required=True,
        metadata={
            "description": "A URI reference naming the problem type: /problems/<code>",
            "example": "/problems/not_found",
        },
    )
    title = fields.String(
        required=True, metadata={"description": "A short summary of the problem type", "example": "Not Found"}
    )
    status = fields.Integer(required=True, metadata={"description": "The HTTP status code", "example": 404})
    detail = fields.String(
        required=True,
        metadata={
            "description": "What went wrong with this request, for people",
            "example": "No resource at this address.",
        },
    )
    instance = fields.String(
        metadata={"description": "The path of the request that failed", "example": "/api/v1/cases/unknown"}
    )
    code = fields.String(
        required=True,
        metadata={"description": "A stable snake_case code to branch on (see docs/errors.md)", "example": "not_found"},
    )
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata={
            "description": "Per-field messages (422): field name -> list of messages, nested for nested objects",
            "example": {"phone": ["Not a valid string."]},
        },
    )
    request_id = fields.String(
        metadata={"description": "Present on 500 answers: quote it when reporting the fault", "example": "3f2a…"}
    )
