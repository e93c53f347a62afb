"""Checks of the visit register's fields (pure): names, phones, ID cards, places, contacts, flags and tiers."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from service.common.errors import (
    ValidationFailedError,
)
from service.common.geo import COORD_SYSTEMS, to_wgs84
from service.visits.models import CONSENT_METHODS, FLAGS, VERY_OLD_AGE, Elder
from service.visits.periods import TIERS, age_on
from service.visits.tiers import TierTable

MAX_CONTACTS = 5


# Times a record may carry (consent, visits): nothing before the programme's records began,
# nothing in the future beyond clock skew.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


CLOCK_SKEW = timedelta(minutes=5)


_PHONE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")


_TOWNSHIP = re.compile(r"^[1-9]\d{8}$")


def has_control_chars(text: str) -> bool:
    """True if ``text`` holds a control or format character (a tab, line break, NUL, bidi override ...)."""
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def sane_time(value: Any, now: datetime, *, earliest: datetime = EARLIEST) -> str | None:
    """Why ``value`` is not a time a record may carry (before ``earliest`` or in the future), or None."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        return "Must be a date-time with a UTC offset."
    # Compare the year first: converting year 1 or 9999 with an offset to UTC overflows.
    if not earliest.year - 1 <= value.year <= now.year + 1 or value < earliest:
        return f"Must be between {earliest.date().isoformat()} and now."
    if value > now + CLOCK_SKEW:
        return "Must not be in the future."
    return None


def _text(limit: int) -> Callable[[Any], str]:
    def fn(v: Any) -> str:
        if not isinstance(v, str) or not v.strip():
            raise ValueError("Must be non-empty text.")
        if has_control_chars(v.strip()):
            raise ValueError("Must not contain control characters (tabs, line breaks and the like).")
        if len(v.strip()) > limit:
            raise ValueError(f"At most {limit} characters.")
        return v.strip()

    return fn


def _phone(v: Any) -> str:
    number = re.sub(r"[\s()]", "", str(v or ""))
    number = re.sub(r"^(\+86|0086)-?", "", number)
    if not _PHONE.match(number):
        raise ValueError("Must be a mainland mobile (11 digits) or landline (0551-12345678) number.")
    return number


def _flags(v: Any) -> list[str]:
    if isinstance(v, str):
        v = [p for p in re.split(r"[;|,\s]+", v) if p]
    if not isinstance(v, list) or not all(isinstance(f, str) for f in v):
        raise ValueError("Must be a list of situation flags.")
    bad = [f for f in v if f not in FLAGS]
    if bad:
        raise ValueError(f"Unknown flag {bad[0]!r}; use {', '.join(FLAGS)}.")
    return sorted(set(v), key=FLAGS.index)


def _tier(v: Any) -> str:
    if v not in TIERS:
        raise ValueError(f"Must be one of {', '.join(TIERS)}.")
    return str(v)


def _location(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict) or "lon" not in v or "lat" not in v:
        raise ValueError("Give {lon, lat, coord_system}.")
    system = v.get("coord_system") or "wgs84"
    if system not in COORD_SYSTEMS:
        raise ValueError(f"coord_system must be one of {', '.join(COORD_SYSTEMS)}.")
    try:
        point = to_wgs84(v["lon"], v["lat"], system)
    except ValidationFailedError as exc:
        raise ValueError("; ".join(m for ms in exc.errors.values() for m in ms)) from None
    return {"type": "Point", "coordinates": [round(point.lon, 7), round(point.lat, 7)]}


def _contacts(v: Any) -> list[dict[str, str]]:
    if not isinstance(v, list) or len(v) > MAX_CONTACTS:
        raise ValueError(f"Must be a list of at most {MAX_CONTACTS} contacts.")
    out = []
    for i, c in enumerate(v):
        if not isinstance(c, dict):
            raise ValueError(f"Contact {i + 1}: must be {{name, relation, phone}}.")
        try:
            out.append(
                {
                    "name": _text(50)(c.get("name")),
                    "relation": _text(20)(c.get("relation")),
                    "phone": _phone(c.get("phone")),
                }
            )
        except ValueError as exc:
            raise ValueError(f"Contact {i + 1}: {exc}") from None
    return out


def _date(v: Any) -> str:
    if isinstance(v, datetime):
        v = v.date()
    if isinstance(v, date):
        return v.isoformat()
    try:
        return date.fromisoformat(str(v).strip()).isoformat()
    except ValueError:
        raise ValueError("Must be a date (YYYY-MM-DD).") from None


def check_elder_fields(
    data: dict[str, Any], *, partial: bool, now: datetime
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Validate and normalise register fields (not the ID number); returns (clean fields, errors by field)."""
    out: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}

    def attempt(name: str, fn: Callable[[Any], Any]) -> None:
        if name not in data:
            return
        if data[name] is None and name not in ("name", "township"):
            out[name] = [] if name in ("flags", "emergency_contacts") else None
            return
        try:
            out[name] = fn(data[name])
        except (ValueError, TypeError) as exc:
            errors.setdefault(name, []).append(str(exc) or "Invalid value.")

    if not partial:
        for name in ("name", "township"):
            if data.get(name) in (None, ""):
                errors[name] = ["Required."]
    attempt("name", _text(50))
    attempt("township", lambda v: _township(v))
    attempt("birth_date", _date)
    attempt("phone", _phone)
    attempt("address", _text(200))
    attempt("location", _location)
    attempt("flags", _flags)
    attempt("tier", _tier)
    attempt("visitor_id", _text(64))
    attempt("emergency_contacts", _contacts)
    if "consent" in data and data["consent"] is not None:
        c = data["consent"]
        if not isinstance(c, dict) or not isinstance(c.get("given"), bool):
            errors["consent"] = ["Give {given: true|false, method: written|verbal, at?, recorded_by?}."]
        elif c.get("method") not in CONSENT_METHODS:
            errors["consent"] = [f"method must be one of {', '.join(CONSENT_METHODS)}."]
        elif c.get("at") is not None and (problem := sane_time(c["at"], now)):
            errors["consent.at"] = [problem]
        else:
            out["consent"] = dict(c)
    return out, errors


def _township(v: Any) -> str:
    text = str(v).strip()
    if re.fullmatch(r"\d{12}", text) and text.endswith("000"):
        text = text[:9]
    if not _TOWNSHIP.match(text):
        raise ValueError("Must be a 9-digit township division code.")
    return text


def id_card_facts(number: str) -> tuple[str, str]:
    """Birth date (YYYY-MM-DD) and gender (male, female) written in an ID number."""
    born = f"{number[6:10]}-{number[10:12]}-{number[12:14]}"
    return born, "male" if int(number[16]) % 2 else "female"


def check_age_flags(fields: dict[str, Any], birth: str, today: date, errors: dict[str, list[str]]) -> None:
    age = age_on(date.fromisoformat(birth), today)
    flags = fields.get("flags")
    if flags is None:
        return
    if age >= VERY_OLD_AGE and "very_old" not in flags:
        fields["flags"] = sorted({*flags, "very_old"}, key=FLAGS.index)
    elif age < VERY_OLD_AGE and "very_old" in flags:
        errors.setdefault("flags", []).append(
            f"very_old (高龄) needs an age of {VERY_OLD_AGE} or more; the person is {age}."
        )


def flags_on(elder: Elder, today: date) -> list[str]:
    """The person's flags as of ``today``: 高龄 (very_old) is added from the birth date."""
    flags = elder.flags
    if age_on(date.fromisoformat(elder.birth_date), today) >= VERY_OLD_AGE and "very_old" not in flags:
        flags = sorted({*flags, "very_old"}, key=FLAGS.index)
    return flags


def present(elder: Elder, today: date, table: TierTable) -> Elder:
    """A record as shown: age, the 80+ flag and the suggested tier as of ``today``."""
    age = age_on(date.fromisoformat(elder.birth_date), today)
    flags = flags_on(elder, today)
    return dataclasses.replace(elder, age=age, flags=flags, suggested_tier=table.suggest(flags, elder.township))
