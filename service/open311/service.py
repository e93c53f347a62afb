"""The Open311 GeoReport v2 facade: the catalogue as services, cases as service requests.

Requests filed here are ordinary cases (``case_submit.submit_case`` with the client as principal),
so routing, deadlines, events and webhooks treat them like any other. Decisions:

- ``api_key`` is ``<client_id>:<client_secret>`` of an API client holding the ``open311``
  scope (HTTP Basic with the same pair is accepted too). Rotating or disabling the client
  ends the key at once; no second secret to manage.
- ``service_request_id`` is the case number (``HM…``), what residents and hotlines quote.
  Requests are created synchronously, so no token is needed; ``tokens/{token}`` maps a
  case id to its number for clients that keep the token workflow.
- Reading requests needs the api_key as well, and returns only the client's own requests:
  they carry residents' locations and descriptions (PIPL), so they are not public.
- ``jurisdiction_id`` is optional; when given it must be the province code ``340000``.
"""

from __future__ import annotations

import hmac
import math
import re
from datetime import datetime, timedelta
from typing import Any

from service.cases import submit as case_submit
from service.cases.inputs import CaseSubmission
from service.catalog import service as catalog
from service.catalog.models import SCENARIOS, SHANGHAI, ServiceType
from service.common.context import Context
from service.common.errors import BadRequestError, NotFoundError, PermissionDeniedError, ValidationFailedError
from service.common.models import Principal
from service.identity import directory, rate_limits
from service.identity.clients import hash_client_secret

JURISDICTION_ID = "340000"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-28T00:00:00Z"
FORMATS = ("application/json", "text/xml")
MAX_ROWS = 1000
MAX_IDS = 200  # service_request_id values per GET requests; documented in docs/integrators.md
DEFAULT_SPAN = timedelta(days=90)
MAX_TEXT = 2000
BOOKING_WINDOW = timedelta(hours=2)

DATATYPES = {
    "string": "string",
    "text": "text",
    "number": "number",
    "date": "datetime",
    "datetime": "datetime",
    "single_choice": "singlevaluelist",
    "multi_choice": "multivaluelist",
    "phone": "string",
    "id_card": "string",
}
DATATYPE_DESCRIPTIONS = {
    "date": "日期 date, YYYY-MM-DD",
    "datetime": "日期时间 date and time, ISO 8601 with offset",
    "phone": "手机或座机号码 mainland mobile (11 digits) or landline (0551-12345678)",
    "id_card": "居民身份证号 Chinese resident ID number (18 characters)",
    "number": "数字 a number",
}
_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]+)\](\[\])?$")
_DIVISION = re.compile(r"^\d{9}(\d{3})?$")
_PHONE = re.compile(r"^(\+?86)?1[3-9]\d{9}$")
_CJK = re.compile(r"[\u3400-\u9fff]")

Params = dict[str, list[str]]


# ---------------------------------------------------------------- input helpers


def one(params: Params, name: str) -> str | None:
    values = [v for v in params.get(name, []) if v != ""]
    if len(set(values)) > 1:
        raise BadRequestError("duplicate_parameter", f"{name} was given more than once with different values.")
    return values[0].strip() if values else None


def check_jurisdiction(params: Params) -> None:
    """A given jurisdiction_id must be ours (Anhui, 340000); others are not found."""
    given = one(params, "jurisdiction_id")
    if given is not None and given != JURISDICTION_ID:
        raise NotFoundError(
            "jurisdiction_not_found", f"jurisdiction_id {given!r} is not served here; use {JURISDICTION_ID}."
        )


def _invalid_key() -> PermissionDeniedError:
    return PermissionDeniedError("invalid_api_key", "Invalid api_key received; request not processed.")


async def authenticate(*, ctx: Context, params: Params, basic: tuple[str, str] | None) -> Principal:
    """The client behind ``api_key`` (``client_id:client_secret``) or HTTP Basic credentials.

    PermissionDeniedError("invalid_api_key") unless the client exists, is active, the secret
    matches and it holds the ``open311`` scope; counts the request against its rate limit.
    """
    key = one(params, "api_key")
    if key is not None:
        client_id, sep, secret = key.partition(":")
        if not sep:
            raise _invalid_key()
    elif basic is not None:
        client_id, secret = basic
    else:
        raise PermissionDeniedError("api_key_required", "This method needs an api_key.")
    found = await directory.client_secret_hash(ctx=ctx, client_id=client_id) if client_id and secret else None
    if found is None or not hmac.compare_digest(found[1], hash_client_secret(secret)):
        raise _invalid_key()
    client = found[0]
    if not client.active or "open311" not in client.scopes:
        raise _invalid_key()
    await rate_limits.enforce_client_rate_limit(ctx=ctx, client_id=client.client_id)
    return Principal(subject=client.client_id, role="client", scopes=frozenset(client.scopes))


# ---------------------------------------------------------------- discovery and services


def discovery(*, base_url: str) -> dict[str, Any]:
    """The service discovery document for this endpoint."""
    return {
        "changeset": CHANGESET,
        "contact": "安徽省民政厅 Anhui Provincial Department of Civil Affairs (惠民 Huimin)",
        "key_service": "API keys are issued by the Huimin administrators as API clients with the open311 scope.",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": base_url,
                "changeset": CHANGESET,
                "type": "production",
                "formats": list(FORMATS),
            }
        ],
    }


def _service_name(service: ServiceType) -> str:
    return f"{service.name_zh} {service.name_en}"


def _scenario_names() -> dict[str, str]:
    return {s.code: f"{s.name_zh} {s.name_en}" for s in SCENARIOS}


def service_entry(service: ServiceType) -> dict[str, Any]:
    """Pure: one service as GET services lists it."""
    return {
        "service_code": service.code,
        "service_name": _service_name(service),
        "description": f"{service.description_zh} {service.description_en}".strip(),
        "metadata": bool(service.fields),
        "type": "realtime",
        "keywords": ", ".join([service.scenario, service.capability] + (["booking"] if service.booking else [])),
        "group": _scenario_names().get(service.scenario, service.scenario),
    }


def service_definition(service: ServiceType) -> dict[str, Any]:
    """Pure: the service definition (our form fields as attributes)."""
    attributes = []
    for order, f in enumerate(service.fields, start=1):
        described = [DATATYPE_DESCRIPTIONS.get(f.type, "")]
        if f.min is not None or f.max is not None:
            described.append(f"range {f.min if f.min is not None else ''}..{f.max if f.max is not None else ''}")
        attributes.append(
            {
                "variable": True,
                "code": f.code,
                "datatype": DATATYPES.get(f.type, "string"),
                "required": f.required,
                "datatype_description": "; ".join(d for d in described if d) or None,
                "order": order,
                "description": " ".join(p for p in (f.label_zh, f.label_en, f.help_zh, f.help_en) if p),
                "values": [{"key": c.code, "name": f"{c.label_zh} {c.label_en}"} for c in f.choices],
            }
        )
    return {"service_code": service.code, "attributes": attributes}


async def list_services(*, ctx: Context, params: Params) -> list[dict[str, Any]]:
    """GET services: every current service type."""
    check_jurisdiction(params)
    return [service_entry(s) for s in await catalog.list_services(ctx=ctx)]


async def get_service_definition(*, ctx: Context, service_code: str, params: Params) -> dict[str, Any]:
    """GET services/{service_code}: the attributes of one current service type."""
    check_jurisdiction(params)
    service = await _current_service(ctx, service_code)
    return service_definition(service)


async def _current_service(ctx: Context, code: str) -> ServiceType:
    try:
        service = await catalog.get_service(ctx=ctx, code=code)
    except NotFoundError:
        service = None
    if service is None or service.retired:
        raise NotFoundError("service_not_found", f"No service with service_code {code!r}.")
    return service


# ---------------------------------------------------------------- POST requests


def attribute_values(params: Params) -> dict[str, list[str]]:
    """Pure: ``attribute[code]`` and ``attribute[code][]`` parameters, by code."""
    out: dict[str, list[str]] = {}
    for name, values in params.items():
        m = _ATTRIBUTE.match(name)
        if m:
            out.setdefault(m.group(1), []).extend(values)
    return out


def answers_from_attributes(service: ServiceType, raw: dict[str, list[str]]) -> dict[str, Any]:
    """Pure: form-encoded attribute strings turned into typed answers (validated later by the catalogue)."""
    fields = {f.code: f for f in service.fields}
    answers: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for code, values in raw.items():
        f = fields.get(code)
        values = [v for v in values if v != ""]
        if f is None:
            errors[f"attribute[{code}]"] = ["This service has no such attribute."]
            continue
        if f.type == "multi_choice":
            answers[code] = values
        elif len(set(values)) > 1:
            errors[f"attribute[{code}]"] = ["Give one value."]
        elif not values:
            continue
        elif f.type == "number":
            try:
                number = float(values[0])
            except ValueError:
                errors[f"attribute[{code}]"] = ["Must be a number."]
                continue
            if not math.isfinite(number):
                errors[f"attribute[{code}]"] = ["Must be a number."]
                continue
            answers[code] = int(number) if number.is_integer() else number
        else:
            answers[code] = values[0]
    if errors:
        raise ValidationFailedError("invalid_attribute", "Some attributes are not valid for this service.", errors)
    return answers


def booking_window(service: ServiceType, answers: dict[str, Any]) -> dict[str, datetime] | None:
    """Pure: a booking's preferred window, from its first date-time attribute (two hours from then).

    Open311 has no booking fields; the catalogue's booking services ask for the preferred
    time as a datetime attribute, which the native API sends separately as preferred_window.
    """
    if not service.booking:
        return None
    for f in service.fields:
        if f.type == "datetime" and isinstance(answers.get(f.code), str):
            try:
                start = datetime.fromisoformat(answers[f.code])
            except ValueError:
                return None  # the attribute's own validation reports it
            if start.tzinfo is None:
                start = start.replace(tzinfo=SHANGHAI)
            return {"start": start, "end": start + BOOKING_WINDOW}
    return None


def _coordinate(params: Params, name: str, low: float, high: float) -> float | None:
    raw = one(params, name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        raise ValidationFailedError(
            "invalid_location", f"{name} must be a WGS-84 coordinate.", {name: [f"Between {low:g} and {high:g}."]}
        )
    return value


def _contact(params: Params) -> dict[str, Any] | None:
    first, last = one(params, "first_name"), one(params, "last_name")
    phone, email = one(params, "phone"), one(params, "email")
    parts = [p for p in (last, first) if p]
    joiner = "" if any(_CJK.search(p) for p in parts) else " "
    name = joiner.join(parts if joiner == "" else reversed(parts))
    if phone is not None:
        phone = re.sub(r"[\s\-()]", "", phone)
        if not _PHONE.match(phone):
            raise ValidationFailedError(
                "invalid_phone", "phone must be a mainland China mobile number.", {"phone": ["Not a mobile number."]}
            )
    if email is not None and (len(email) > 254 or not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email)):
        raise ValidationFailedError("invalid_email", "email is not an e-mail address.", {"email": ["Not valid."]})
    if not (name or phone or email):
        return None
    return {"name": name[:50] or None, "phone": phone, "email": email}


def _text(params: Params, name: str, limit: int) -> str | None:
    value = one(params, name)
    if value is not None and len(value) > limit:
        raise ValidationFailedError("too_long", f"{name} is longer than {limit} characters.", {name: ["Too long."]})
    return value


def _media_url(params: Params) -> str | None:
    url = _text(params, "media_url", 1000)
    if url is not None and not re.match(r"^https?://[^\s]+$", url):
        raise ValidationFailedError(
            "invalid_media_url", "media_url must be an http(s) URL.", {"media_url": ["Bad URL."]}
        )
    return url


async def create_request(*, ctx: Context, params: Params, basic: tuple[str, str] | None) -> list[dict[str, Any]]:
    """POST requests: file a case for the api_key's client; returns the spec's one-element list."""
    check_jurisdiction(params)
    principal = await authenticate(ctx=ctx, params=params, basic=basic)
    code = one(params, "service_code")
    if code is None:
        raise ValidationFailedError(
            "service_code_required", "service_code is required.", {"service_code": ["Required."]}
        )
    service = await _current_service(ctx, code)
    answers = answers_from_attributes(service, attribute_values(params))
    lat = _coordinate(params, "lat", -90, 90)
    lon = _coordinate(params, "long", -180, 180)
    if (lat is None) != (lon is None):
        raise ValidationFailedError("invalid_location", "Give lat and long together.", {"lat": ["Give both."]})
    address_id = one(params, "address_id")
    division = address_id if address_id and _DIVISION.match(address_id) else None
    if lat is None and division is None:
        raise ValidationFailedError(
            "location_required",
            "Give lat/long (WGS-84) or a township division code (9 or 12 digits) as address_id; "
            "address_string alone cannot be placed.",
            {"lat": ["Required unless address_id is a township division code."]},
        )
    account_id = _text(params, "account_id", 200)
    source = {
        "channel": "open311",
        "media_url": _media_url(params),
        "device_id": _text(params, "device_id", 200),
        "account_id": account_id,
        "address_id": address_id,
    }
    data: dict[str, Any] = {
        "service_code": service.code,
        "answers": answers,
        "description": _text(params, "description", MAX_TEXT),
        "location": {"lon": lon, "lat": lat, "coord_system": "wgs84"} if lat is not None else None,
        "division_code": division,
        "address": _text(params, "address_string", 200),
        "contact": _contact(params),
        "source": {k: v for k, v in source.items() if v is not None},
    }
    window = booking_window(service, answers)
    if window is not None:
        data["preferred_window"] = window
    try:
        case = await case_submit.submit_case(ctx=ctx, principal=principal, data=CaseSubmission(**data))
    except ValidationFailedError as exc:
        # Name the fields as the caller sent them: answers.<code> is attribute[<code>] here.
        exc.errors = {_attribute_name(k): v for k, v in exc.errors.items()}
        raise
    return [{"service_request_id": case["number"], "service_notice": _notice(case), "account_id": account_id}]


def _attribute_name(field: str) -> str:
    if field == "address":
        return "address_string"
    return f"attribute[{field[len('answers.') :]}]" if field.startswith("answers.") else field


def _notice(case: dict[str, Any]) -> str:
    if case.get("station_name"):
        return f"已受理，由{case['station_name']}办理 Received; handled by {case['station_name']}."
    return "已受理，等待人工派单 Received; awaiting manual dispatch to a station."


# ---------------------------------------------------------------- GET requests
