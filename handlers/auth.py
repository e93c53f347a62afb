"""Logging in (WeChat, SMS code, staff password, OAuth2 client credentials), refresh, logout, /me."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qs, unquote_plus

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.io import json_response, read_body, read_json
from handlers.keys import CTX
from handlers.middlewares import principal_of
from schemas.auth import (
    ClientTokenSchema,
    MeSchema,
    OAuthTokenRequestSchema,
    OtpRequestSchema,
    OtpSentSchema,
    OtpVerifySchema,
    RefreshSchema,
    StaffLoginSchema,
    TokenPairSchema,
    WechatLoginSchema,
)
from service.common.errors import BadRequestError, PayloadTooLargeError
from service.identity import auth, clients

routes = web.RouteTableDef()
TAGS = ("auth",)
MAX_FORM_BYTES = 8192
FORM_TYPE = "application/x-www-form-urlencoded"


def _invalid_request(description: str) -> BadRequestError:
    return BadRequestError("invalid_request", description, error="invalid_request", error_description=description)


async def read_oauth_form(request: web.Request) -> dict[str, list[str]]:
    """The urlencoded body of a token request, size-limited, with RFC 6749 errors."""
    if request.content_type != FORM_TYPE:
        raise _invalid_request(f"Send the token request as {FORM_TYPE}.")
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        raise PayloadTooLargeError(
            "payload_too_large", f"The form is larger than {MAX_FORM_BYTES} bytes.", limit=MAX_FORM_BYTES
        )
    raw = await read_body(request, limit=MAX_FORM_BYTES, what="form")
    try:
        return parse_qs(raw.decode("utf-8"), keep_blank_values=False, strict_parsing=False, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise _invalid_request("The form body could not be parsed.") from None


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """HTTP Basic client credentials (each part form-urlencoded, RFC 6749 section 2.3.1)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid_request("The Basic credentials are not valid base64.") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise _invalid_request("The Basic credentials must be client_id:client_secret.")
    return unquote_plus(client_id), unquote_plus(secret)


@routes.post("/api/v1/auth/wechat")
@endpoint(
    "Resident login with a WeChat mini-program code",
    tags=TAGS,
    public=True,
    body=WechatLoginSchema(),
    response=TokenPairSchema(),
    problems=(401, 403, 422, 429, 502, 503),
)
async def login_wechat(request: web.Request) -> web.Response:
    data = await read_json(request, WechatLoginSchema())
    pair = await auth.login_with_wechat(ctx=request.app[CTX], code=data["code"])
    return json_response(TokenPairSchema(), pair)


@routes.post("/api/v1/auth/otp")
@endpoint(
    "Text a 6-digit login code to a resident's phone",
    tags=TAGS,
    public=True,
    body=OtpRequestSchema(),
    response=OtpSentSchema(),
    status=202,
    problems=(422, 429, 502, 503),
)
async def request_otp(request: web.Request) -> web.Response:
    data = await read_json(request, OtpRequestSchema())
    ttl = await auth.request_login_code(ctx=request.app[CTX], phone=data["phone"])
    return json_response(OtpSentSchema(), {"expires_in": ttl}, status=202)


@routes.post("/api/v1/auth/otp/verify")
@endpoint(
    "Resident login with a texted code",
    tags=TAGS,
    public=True,
    body=OtpVerifySchema(),
    response=TokenPairSchema(),
    problems=(401, 422, 429, 503),
)
async def verify_otp(request: web.Request) -> web.Response:
    data = await read_json(request, OtpVerifySchema())
    pair = await auth.login_with_phone(ctx=request.app[CTX], phone=data["phone"], code=data["code"])
    return json_response(TokenPairSchema(), pair)


@routes.post("/api/v1/auth/login")
@endpoint(
    "Staff login with username and password",
    tags=TAGS,
    public=True,
    body=StaffLoginSchema(),
    response=TokenPairSchema(),
    problems=(401, 422, 429),
)
async def login_staff(request: web.Request) -> web.Response:
    data = await read_json(request, StaffLoginSchema())
    pair = await auth.login_staff(ctx=request.app[CTX], username=data["username"], password=data["password"])
    return json_response(TokenPairSchema(), pair)


@routes.post("/api/v1/auth/refresh")
@endpoint(
    "Exchange a refresh token for a new token pair (single use)",
    tags=TAGS,
    public=True,
    body=RefreshSchema(),
    response=TokenPairSchema(),
    problems=(401, 422),
)
async def refresh(request: web.Request) -> web.Response:
    data = await read_json(request, RefreshSchema())
    pair = await auth.refresh_session(ctx=request.app[CTX], refresh_token=data["refresh_token"])
    return json_response(TokenPairSchema(), pair)


@routes.post("/api/v1/auth/logout")
@endpoint("End this session: revoke the access token and its refresh tokens", tags=TAGS, status=204)
async def logout(request: web.Request) -> web.Response:
    await auth.logout(ctx=request.app[CTX], principal=principal_of(request))
    return web.Response(status=204)


@routes.get("/api/v1/me")
@endpoint("Who the caller is", tags=TAGS, response=MeSchema())
async def me(request: web.Request) -> web.Response:
    who = await auth.describe_me(ctx=request.app[CTX], principal=principal_of(request))
    return json_response(MeSchema(), who)


@routes.post("/api/v1/me/phone")
@endpoint(
    "Residents: add a verified phone number to the account (code from POST /api/v1/auth/otp)",
    tags=TAGS,
    roles=("resident",),
    body=OtpVerifySchema(),
    response=MeSchema(),
    problems=(401, 403, 409, 422, 429, 503),
)
async def add_phone(request: web.Request) -> web.Response:
    data = await read_json(request, OtpVerifySchema())
    who = await auth.add_phone(
        ctx=request.app[CTX], principal=principal_of(request), phone=data["phone"], code=data["code"]
    )
    return json_response(MeSchema(), who)


@routes.post("/oauth/token")
@endpoint(
    "OAuth2 token endpoint: client credentials grant (RFC 6749 section 4.4)",
    tags=("oauth",),
    public=True,
    body=OAuthTokenRequestSchema(),
    body_kind="form",
    response=ClientTokenSchema(),
    problems=(400, 401, 413),
)
async def oauth_token(request: web.Request) -> web.Response:
    form = await read_oauth_form(request)
    pair = await clients.issue_client_token(ctx=request.app[CTX], form=form, basic=basic_credentials(request))
    return json_response(ClientTokenSchema(), pair, headers={"Pragma": "no-cache"})
