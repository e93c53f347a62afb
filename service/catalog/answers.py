"""A form's answers checked against the service's fields and normalised, and valid example answers."""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any

from service.catalog.models import SHANGHAI, STRING_MAX, FormField, ServiceType
from service.common.errors import ValidationFailedError
from service.common.pii import id_card_check_char, id_card_problem
from service.common.timestamps import rfc3339

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")


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
