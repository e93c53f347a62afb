"""What a valid service type is (``check_definition``)."""

from __future__ import annotations

import re

from service.catalog.models import (
    CHOICE_TYPES,
    FIELD_TYPES,
    PERSONAL_KINDS,
    SCENARIO_CODES,
    ServiceType,
)
from service.common.errors import ValidationFailedError
from service.common.worktime import CLOCKS

_CODE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


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
