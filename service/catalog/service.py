"""The service catalogue: seven scenarios, versioned service types, and answer validation.

A service type never changes in place: an update stores version N+1 and marks it current,
so a case filed under version N keeps the form and limits it was filed with.
"""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import date, datetime
from typing import Any

from service.catalog.models import (
    CHOICE_TYPES,
    FIELD_TYPES,
    PERSONAL_KINDS,
    SCENARIO_CODES,
    SCENARIOS,
    SHANGHAI,
    STRING_MAX,
    Choice,
    FormField,
    Scenario,
    ServiceType,
)
from service.common.context import Context
from service.common.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    ValidationFailedError,
)
from service.common.models import Principal, require_role
from service.common.pii import id_card_check_char, id_card_problem
from service.common.timestamps import rfc3339
from service.common.worktime import CLOCKS

ADMIN_ONLY = "Only an administrator may change the catalogue."

_CODE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")

# ---------------------------------------------------------------- documents <-> dataclasses


def _field_from(doc: dict[str, Any]) -> FormField:
    choices = tuple(Choice(**c) for c in doc.get("choices") or ())
    return FormField(**{**doc, "choices": choices})


def service_from_doc(doc: dict[str, Any]) -> ServiceType:
    """A ServiceType from a stored document (unknown keys ignored)."""
    names = {f.name for f in dataclasses.fields(ServiceType)}
    values = {k: v for k, v in doc.items() if k in names}
    values["fields"] = tuple(_field_from(f) for f in doc.get("fields") or ())
    for key in ("materials_zh", "materials_en"):
        values[key] = tuple(doc.get(key) or ())
    return ServiceType(**values)


def service_to_doc(service: ServiceType) -> dict[str, Any]:
    """The document stored for one version."""
    return dataclasses.asdict(service)


# ---------------------------------------------------------------- definition checks


def check_definition(service: ServiceType) -> None:
    """Refuse an inconsistent service type (bad codes, scenario, fields, limits)."""
    errors: dict[str, list[str]] = {}
    if not _CODE.match(service.code):
        errors["code"] = ["Lower-case letters, digits and underscores, starting with a letter (2-64)."]
    if service.scenario not in SCENARIO_CODES:
        errors["scenario"] = [f"Must be one of {', '.join(SCENARIO_CODES)}."]
    if not _CODE.match(service.capability):
        errors["capability"] = ["Lower-case letters, digits and underscores."]
    if not service.name_zh.strip() or not service.name_en.strip():
        errors["name"] = ["Both name_zh and name_en are required."]
    if service.clock not in CLOCKS:
        errors["clock"] = [f"Must be one of {', '.join(CLOCKS)}."]
    if not 1 <= service.sign_within_hours <= 720:
        errors["sign_within_hours"] = ["Must be between 1 and 720 working hours."]
    if not 1 <= service.resolve_within_days <= 365:
        errors["resolve_within_days"] = ["Must be between 1 and 365 working days."]
    seen: set[str] = set()
    for i, f in enumerate(service.fields):
        where = f"fields[{i}]"
        if not _CODE.match(f.code):
            errors.setdefault(where, []).append("The field code must be snake_case.")
        if f.code in seen:
            errors.setdefault(where, []).append(f"Duplicate field code {f.code!r}.")
        seen.add(f.code)
        if f.type not in FIELD_TYPES:
            errors.setdefault(where, []).append(f"Unknown type {f.type!r}.")
        if f.type in CHOICE_TYPES:
            codes = [c.code for c in f.choices]
            if not codes:
                errors.setdefault(where, []).append("A choice field needs choices.")
            if len(set(codes)) != len(codes):
                errors.setdefault(where, []).append("Choice codes must be unique.")
        elif f.choices:
            errors.setdefault(where, []).append("Only choice fields have choices.")
        if f.personal is not None and f.personal not in PERSONAL_KINDS:
            errors.setdefault(where, []).append(f"personal must be one of {', '.join(PERSONAL_KINDS)}.")
        elif f.type in ("phone", "id_card") and f.personal != f.type:
            errors.setdefault(where, []).append(f"A {f.type} field holds personal data of kind {f.type}.")
        if f.min is not None and f.max is not None and f.min > f.max:
            errors.setdefault(where, []).append("min must not exceed max.")
    if errors:
        raise ValidationFailedError("invalid_service", "The service definition is not valid.", errors)


# ---------------------------------------------------------------- answers


def _answer(f: FormField, value: Any) -> tuple[Any, str | None]:
    """The normalised answer for one field, or an error message."""
    t = f.type
    if t in ("string", "text"):
        if not isinstance(value, str):
            return None, "Must be text."
        text = value.strip()
        limit = f.max_length or STRING_MAX[t]
        if len(text) > limit:
            return None, f"At most {limit} characters."
        if f.required and not text:
            return None, "Required."
        return text, None
    if t == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None, "Must be a number."
        if f.min is not None and value < f.min:
            return None, f"Must be at least {f.min:g}."
        if f.max is not None and value > f.max:
            return None, f"Must be at most {f.max:g}."
        return value, None
    if t == "date":
        if not isinstance(value, str):
            return None, "Must be a date (YYYY-MM-DD)."
        try:
            return date.fromisoformat(value).isoformat(), None
        except ValueError:
            return None, "Must be a date (YYYY-MM-DD)."
    if t == "datetime":
        if not isinstance(value, str):
            return None, "Must be an ISO 8601 date and time."
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None, "Must be an ISO 8601 date and time."
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=SHANGHAI)  # local forms give Beijing time
        return rfc3339(moment), None  # kept and shown as every other time in the API
    if t == "single_choice":
        codes = [c.code for c in f.choices]
        if not isinstance(value, str) or value not in codes:
            return None, f"Must be one of {', '.join(codes)}."
        return value, None
    if t == "multi_choice":
        codes = [c.code for c in f.choices]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return None, "Must be a list of choice codes."
        bad = [v for v in value if v not in codes]
        if bad:
            return None, f"Unknown choice {bad[0]!r}; use {', '.join(codes)}."
        if f.required and not value:
            return None, "Choose at least one."
        return sorted(set(value), key=codes.index), None
    if t == "phone":
        if not isinstance(value, str):
            return None, "Must be a phone number."
        number = re.sub(r"[\s()]", "", value)
        number = re.sub(r"^(\+86|0086)-?", "", number)
        if _MOBILE.match(number) or _LANDLINE.match(number):
            return number, None
        return None, "Must be a mainland China mobile (11 digits) or landline (0551-12345678) number."
    if t == "id_card":
        if not isinstance(value, str):
            return None, "Must be an ID card number."
        number = value.strip().replace(" ", "").upper()
        problem = id_card_problem(number)
        return (None, problem) if problem else (number, None)
    return None, f"Unsupported field type {t!r}."


def example_id_card(region: str = "341021", birth: str = "19450101", serial: str = "123") -> str:
    """A valid (check-digit correct) ID number for examples and tests; nobody's real number."""
    first17 = region + birth + serial
    return first17 + id_card_check_char(first17)


def example_answers(service_type: ServiceType) -> dict[str, Any]:
    """Valid answers for every field of a service type (documentation, tests, benchmarks)."""
    samples: dict[str, Any] = {
        "string": "测试 test",
        "text": "测试 test",
        "date": "1945-01-01",
        "datetime": "2026-12-01T10:00:00+08:00",
        "phone": "13800000001",
        "id_card": example_id_card(),
    }
    out: dict[str, Any] = {}
    for f in service_type.fields:
        if f.type == "number":
            out[f.code] = f.min if f.min is not None else 1
        elif f.type == "single_choice":
            out[f.code] = f.choices[0].code
        elif f.type == "multi_choice":
            out[f.code] = [f.choices[0].code]
        else:
            out[f.code] = samples[f.type]
    return out


def validate_answers(service_type: ServiceType, answers: Any) -> dict[str, Any]:
    """Check a form's answers against the service's fields; returns them normalised.

    Raises ValidationFailedError("invalid_answers") with errors keyed ``answers.<field>``.
    """
    if not isinstance(answers, dict):
        raise ValidationFailedError(
            "invalid_answers", "The answers must be an object.", {"answers": ["Not an object."]}
        )
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    known = {f.code: f for f in service_type.fields}
    for key in answers:
        if key not in known:
            errors[f"answers.{key}"] = ["This service has no such field."]
    for code, f in known.items():
        value = answers.get(code)
        if value is None or value == "" or value == []:
            if f.required:
                errors[f"answers.{code}"] = ["Required."]
            continue
        normalised, problem = _answer(f, value)
        if problem:
            errors[f"answers.{code}"] = [problem]
        else:
            out[code] = normalised
    if errors:
        raise ValidationFailedError("invalid_answers", "Some answers are missing or invalid; see errors.", errors)
    return out


# ---------------------------------------------------------------- service functions


def list_scenarios() -> list[Scenario]:
    """The seven scenarios, in their fixed order."""
    return list(SCENARIOS)


def _repo(ctx: Context) -> Any:
    from service.catalog.repository import ServiceTypesRepository

    return ServiceTypesRepository(ctx.db)


async def list_services(
    *, ctx: Context, scenario: str | None = None, include_retired: bool = False
) -> list[ServiceType]:
    """Current versions of the catalogue's service types, by code."""
    if scenario is not None and scenario not in SCENARIO_CODES:
        raise ValidationFailedError(
            "unknown_scenario", f"There is no scenario {scenario!r}.", {"scenario": ["Unknown scenario."]}
        )
    services = [service_from_doc(d) for d in await _repo(ctx).list_current(scenario)]
    return [s for s in services if include_retired or not s.retired]


async def get_service(*, ctx: Context, code: str, version: int | None = None) -> ServiceType:
    """One service type: its current version, or the version asked for."""
    return service_from_doc(await _repo(ctx).get(code, version))


async def create_service(*, ctx: Context, principal: Principal, service: ServiceType) -> ServiceType:
    """Add a service type as version 1."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    service = dataclasses.replace(service, version=1, retired=False, created_at=ctx.now())
    check_definition(service)
    try:
        await _repo(ctx).get(service.code)
    except NotFoundError:
        pass
    else:
        raise ConflictError("service_exists", f"A service with code {service.code!r} exists already.")
    try:
        await _repo(ctx).insert_version(service_to_doc(service))
    except ConflictError:
        raise ConflictError("service_exists", f"A service with code {service.code!r} exists already.") from None
    return service


async def update_service(
    *, ctx: Context, principal: Principal, code: str, changes: dict[str, Any], expected_version: int | None = None
) -> ServiceType:
    """Store the changed definition as the next version; older versions stay as they were."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    current = await get_service(ctx=ctx, code=code)
    if current.retired:
        raise InvalidStateError("service_retired", f"Service {code!r} is retired and cannot be changed.")
    if expected_version is not None and expected_version != current.version:
        raise ConflictError(
            "service_version_conflict", f"Service {code!r} is at version {current.version}, not {expected_version}."
        )
    allowed = {f.name for f in dataclasses.fields(ServiceType)} - {"code", "version", "retired", "created_at"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationFailedError(
            "unknown_field", "These fields cannot be changed.", {k: ["Unknown field."] for k in unknown}
        )
    new = dataclasses.replace(current, **changes, version=current.version + 1, created_at=ctx.now())
    check_definition(new)
    await _repo(ctx).insert_version(service_to_doc(new))
    return new


async def retire_service(*, ctx: Context, principal: Principal, code: str) -> ServiceType:
    """Stop offering a service; filed cases keep their version."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    current = await get_service(ctx=ctx, code=code)
    if current.retired:
        return current
    if not await _repo(ctx).set_retired(code, current.version, ctx.now()):
        raise ConflictError("service_version_conflict", f"Service {code!r} changed meanwhile; retry.")
    return dataclasses.replace(current, retired=True)


async def seed_catalog(ctx: Context) -> str:
    """Load the built-in service types that are missing and retire the withdrawn ones (idempotent)."""
    from service.catalog.seed import RETIRED_BUILT_INS, SEED_SERVICES

    now = ctx.now()
    docs = [service_to_doc(dataclasses.replace(s, created_at=now)) for s in SEED_SERVICES]
    for s in SEED_SERVICES:
        check_definition(s)
    added = await _repo(ctx).insert_missing(docs)
    upgraded = await _upgrade_built_ins(ctx, SEED_SERVICES)
    retired = await _retire_withdrawn(ctx, RETIRED_BUILT_INS)
    also = f", {upgraded} upgraded to the current built-in definition" if upgraded else ""
    also += f", {retired} withdrawn built-ins retired" if retired else ""
    return f"{added} service types added{also}, {len(SEED_SERVICES)} in the built-in catalogue"


async def _retire_withdrawn(ctx: Context, codes: tuple[str, ...]) -> int:
    """Retire stored built-ins that the catalogue no longer offers; their versions stay for old cases."""
    retired = 0
    for code in codes:
        try:
            current = await get_service(ctx=ctx, code=code)
        except NotFoundError:
            continue  # never stored here
        if not current.retired and await _repo(ctx).set_retired(code, current.version, ctx.now()):
            retired += 1
    return retired


# Form fields the built-in forms once had and no longer ask: where and whom are asked once,
# as the case's top-level ``address`` and ``contact``.
_ASKED_AT_TOP_LEVEL = ("address", "contact_phone")
GUIDE_KEYS = (
    "icon",
    "conditions_zh",
    "conditions_en",
    "materials_zh",
    "materials_en",
    "time_limit_zh",
    "time_limit_en",
)


async def _upgrade_built_ins(ctx: Context, built_ins: tuple[ServiceType, ...]) -> int:
    """Bring built-in services stored by an older release up to date, as a new version (cases
    keep the version they were filed with): services stored before service types had a ``clock``
    get the built-in clock and personal-field marks; services stored before ``address_required``
    lose the ``address`` and ``contact_phone`` form fields the built-in no longer asks and take
    its ``address_required``; services stored before the service-page texts take the built-in's
    icon, conditions, materials, time-limit texts and field hints."""
    upgraded = 0
    for built_in in built_ins:
        doc = await _repo(ctx).get(built_in.code)
        if doc.get("retired") or ("clock" in doc and "address_required" in doc and "icon" in doc):
            continue
        current = service_from_doc(doc)
        changes: dict[str, Any] = {}
        fields = current.fields
        if "clock" not in doc:
            marks = {f.code: f for f in built_in.fields}
            fields = tuple(
                dataclasses.replace(f, personal=mark.personal, reporter=mark.reporter)
                if (mark := marks.get(f.code)) is not None and mark.type == f.type
                else f
                for f in fields
            )
            changes["clock"] = built_in.clock
        if "address_required" not in doc:
            kept = {f.code for f in built_in.fields}
            fields = tuple(f for f in fields if f.code in kept or f.code not in _ASKED_AT_TOP_LEVEL)
            changes["address_required"] = built_in.address_required
        if "icon" not in doc:
            # Stored before services carried their service-page texts: take the built-in's.
            changes.update({key: getattr(built_in, key) for key in GUIDE_KEYS})
            helps = {f.code: f for f in built_in.fields}
            fields = tuple(
                dataclasses.replace(f, help_zh=mark.help_zh, help_en=mark.help_en)
                if not f.help_zh and (mark := helps.get(f.code)) is not None
                else f
                for f in fields
            )
        new = dataclasses.replace(current, **changes, fields=fields, version=current.version + 1, created_at=ctx.now())
        try:
            await _repo(ctx).insert_version(service_to_doc(new))
        except ConflictError:
            continue  # another process upgraded it (or an admin changed it) meanwhile
        upgraded += 1
    return upgraded
