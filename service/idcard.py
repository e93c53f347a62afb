"""Resident identity card numbers (居民身份证号码, GB 11643-1999): format and check digit."""

from __future__ import annotations

import re
from datetime import date

from service.errors import ValidationFailedError

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_FORMAT = re.compile(r"^[1-9]\d{16}[\dX]$")


def check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def id_card_problem(value: str) -> str | None:
    """Why ``value`` is not a valid 18-character ID number, or None when it is."""
    if not _FORMAT.match(value):
        return "Must be 18 characters: 17 digits and a check digit (0-9 or X)."
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "The birth date inside the ID number is not a real date."
    if born.year < 1880 or born > date.today():
        return "The birth date inside the ID number is out of range."
    if check_digit(value[:17]) != value[17]:
        return "The check digit does not match (GB 11643)."
    return None


def validate_id_card(value: str, *, field: str = "id_card") -> str:
    """The normalised ID number (upper-case X, no spaces), or ValidationFailedError."""
    normalised = str(value).strip().replace(" ", "").upper()
    problem = id_card_problem(normalised)
    if problem:
        raise ValidationFailedError("invalid_id_card", "The ID card number is not valid.", {field: [problem]})
    return normalised
