"""Schemas of login, token and /me operations."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from service.common.pii import mobile_or_none

MOBILE_ERROR = "Not a mainland China mobile number (11 digits starting 13-19, optional +86)."
# What service.common.pii.mobile_or_none accepts, separators ([\s\-()]) allowed anywhere: the digits
# of an optional +86, 0086 or 86, then 1, 3-9 and nine more.
_S = r"[\s\-()]*"
MOBILE_PATTERN = rf"^{_S}(?:\+{_S}8{_S}6{_S}|0{_S}0{_S}8{_S}6{_S}|8{_S}6{_S})?1{_S}[3-9](?:{_S}\d){{9}}{_S}$"


class PhoneField(fields.String):
    """A mainland mobile number; +86 and separators are accepted and dropped (the pattern says so)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Regexp(MOBILE_PATTERN, error=MOBILE_ERROR), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        phone = mobile_or_none(text) if re.fullmatch(MOBILE_PATTERN, text) else None
        if phone is None:
            raise ValidationError(MOBILE_ERROR)
        return phone


class WechatLoginSchema(Schema):
    code = fields.String(
        required=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "The code from wx.login() in the mini program (valid 5 minutes, single use)"},
    )


class OtpRequestSchema(Schema):
    phone = PhoneField(required=True, metadata={"description": "Mainland mobile number", "example": "13800138000"})


class OtpSentSchema(Schema):
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds the texted code stays valid"})


class OtpVerifySchema(Schema):
    phone = PhoneField(required=True, metadata={"description": "The number the code was sent to"})
    code = fields.String(
        required=True,
        validate=validate.Regexp(r"^\d{6}$", error="The code has 6 digits."),
        metadata={"description": "The 6-digit code from the text message"},
    )


class StaffLoginSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256), load_only=True)


class RefreshSchema(Schema):
    refresh_token = fields.String(
        required=True, validate=validate.Length(min=1, max=256), metadata={"description": "The latest refresh token"}
    )


class TokenPairSchema(Schema):
    access_token = fields.String(required=True, metadata={"description": "JWT bearer token"})
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds the access token is valid"})
    refresh_token = fields.String(
        required=True, metadata={"description": "Single-use; exchange at /api/v1/auth/refresh for a new pair"}
    )
    refresh_expires_in = fields.Integer(required=True, metadata={"description": "Seconds the refresh token is valid"})
    role = fields.String(required=True, metadata={"description": "resident, worker, station_head, supervisor, admin"})


class MeSchema(Schema):
    role = fields.String(required=True)
    id = fields.String(required=True, metadata={"description": "Resident id, staff id or client id"})
    phone_masked = fields.String(allow_none=True, metadata={"description": "Residents: e.g. 138****8000"})
    has_wechat = fields.Boolean(allow_none=True, metadata={"description": "Residents: logged in with WeChat before"})
    has_phone = fields.Boolean(allow_none=True, metadata={"description": "Residents: a verified phone number"})
    username = fields.String(allow_none=True, metadata={"description": "Staff"})
    name = fields.String(allow_none=True, metadata={"description": "Staff and clients"})
    station_id = fields.String(allow_none=True, metadata={"description": "Workers and station heads"})
    division_prefix = fields.String(allow_none=True, metadata={"description": "Supervisors"})
    client_id = fields.String(allow_none=True, metadata={"description": "Clients"})
    scopes = fields.List(fields.String(), allow_none=True, metadata={"description": "Clients: scopes of this token"})


class OAuthTokenRequestSchema(Schema):
    """Documentation of the form body of POST /oauth/token (RFC 6749 section 4.4.2)."""

    grant_type = fields.String(required=True, metadata={"description": "client_credentials"})
    scope = fields.String(metadata={"description": "Space-separated subset of the client's scopes"})
    client_id = fields.String(metadata={"description": "When not using HTTP Basic"})
    client_secret = fields.String(load_only=True, metadata={"description": "When not using HTTP Basic"})


class ClientTokenSchema(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True)
    scope = fields.String(required=True, metadata={"description": "Space-separated scopes granted"})
