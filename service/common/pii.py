"""Personal data (PIPL): ID card numbers and phones validated, encrypted, hashed and masked.

* ``validate_id_card``: resident identity card numbers (居民身份证号码, GB 11643-1999):
  6-digit region code, 8-digit birth date, 3-digit sequence, and a check character
  computed by ISO 7064:1983 MOD 11-2 (weights 2^(17-i) mod 11, value -> "10X98765432").
* ``encrypt`` / ``decrypt``: AES-256-GCM with a fresh 96-bit random nonce per value; the
  token is ``v1.`` + base64url(nonce || ciphertext || tag), so the scheme can change
  later without guessing. The AES key is derived from ``settings.data_key_bytes`` with
  HKDF-SHA256, as is the separate key of ``lookup_hash``, so the two never coincide.
* ``lookup_hash``: HMAC-SHA256 of the normalised value, for equality search on an encrypted
  field (find a person by ID number) without storing the number in clear.
* ``mask_*``: what staff and third parties see.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from datetime import date
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.common.errors import ValidationFailedError

ID_CARD_WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CARD_CHECK_CHARS = "10X98765432"
# First two digits: the province-level region (GB/T 2260), 11 北京 ... 82 澳门.
PROVINCE_CODES = frozenset(
    {
        "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
        "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
        "65", "71", "81", "82",
    }
)  # fmt: skip
_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
TOKEN_VERSION = "v1"
_NONCE_BYTES = 12


class DecryptionError(ValueError):
    """A stored token cannot be decrypted: wrong key, unknown version or tampered data."""


# ------------------------------------------------------------------ ID card numbers


def id_card_check_char(first17: str) -> str:
    """The GB 11643 / ISO 7064 MOD 11-2 check character for 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    total = sum(int(d) * w for d, w in zip(first17, ID_CARD_WEIGHTS, strict=True))
    return ID_CARD_CHECK_CHARS[total % 11]


def id_card_problem(value: str, today: date | None = None) -> str | None:
    """Why ``value`` is not a valid 18-character ID number (already normalised), or None."""
    if not _ID_SHAPE.match(value):
        return "Must be 18 characters: 17 digits and a digit or X."
    if value[:2] not in PROVINCE_CODES:
        return "The region code is not a Chinese province."
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "The birth date in the number is not a real date."
    if born.year < 1900 or born > (today or date.today()):
        return "The birth date in the number is out of range."
    if id_card_check_char(value[:17]) != value[17]:
        return "The check digit does not match; please check the number."
    return None


def validate_id_card(value: str, *, field: str = "id_card", today: date | None = None) -> str:
    """The normalised (trimmed, upper-case X) ID card number, or ValidationFailedError ``invalid_id_card``."""
    normalised = (value or "").strip().upper()
    problem = id_card_problem(normalised, today)
    if problem:
        raise ValidationFailedError(
            "invalid_id_card", f"The ID card number is not valid: {problem}", errors={field: [problem]}
        )
    return normalised


def is_valid_id_card(value: str) -> bool:
    """True when ``value`` is a valid 18-character ID card number."""
    return id_card_problem((value or "").strip().upper(), None) is None


# ------------------------------------------------------------------ phones


def mobile_or_none(value: str | None) -> str | None:
    """An 11-digit mainland mobile number (+86 and separators removed), or None."""
    digits = re.sub(r"[\s\-()]", "", value or "")
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
            break
    else:
        if len(digits) == 13 and digits.startswith("86"):
            digits = digits[2:]
    return digits if _MOBILE.match(digits) else None


def normalize_phone(value: str, *, field: str = "phone") -> str:
    """An 11-digit mainland mobile number (+86 and separators removed), or ValidationFailedError."""
    digits = mobile_or_none(value)
    if digits is None:
        raise ValidationFailedError(
            "invalid_phone",
            "The phone number is not a mainland China mobile number.",
            errors={field: ["Must be an 11-digit mobile number starting with 13-19."]},
        )
    return digits


# ------------------------------------------------------------------ masking


def mask_id_card(value: str) -> str:
    """3401**********1234: region prefix and last four only."""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_phone(value: str) -> str:
    """138****5678."""
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_name(value: str) -> str:
    """张** : the family name's first character only."""
    value = value.strip()
    if len(value) <= 1:
        return "*" * len(value)
    return value[0] + "*" * (len(value) - 1)


# ------------------------------------------------------------------ encryption and lookup


@lru_cache(maxsize=16)
def _derive(key: bytes, purpose: bytes) -> bytes:
    if len(key) != 32:
        raise ValueError("the data key must be 32 bytes")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"huimin-pii", info=purpose).derive(key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encrypt(key: bytes, text: str, *, aad: str = "") -> str:
    """Encrypt ``text`` with AES-256-GCM; ``aad`` (e.g. the field name) must match on decrypt."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(_derive(key, b"aes-256-gcm/v1")).encrypt(nonce, text.encode("utf-8"), aad.encode("utf-8"))
    return f"{TOKEN_VERSION}.{_b64(nonce + sealed)}"


def decrypt(key: bytes, token: str, *, aad: str = "") -> str:
    """The clear text of a token made by :func:`encrypt`; DecryptionError if it was tampered with."""
    version, _, payload = token.partition(".")
    if version != TOKEN_VERSION or not payload:
        raise DecryptionError(f"unknown token format {version!r}")
    try:
        raw = _unb64(payload)
        clear = AESGCM(_derive(key, b"aes-256-gcm/v1")).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad.encode("utf-8")
        )
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError("the token does not decrypt with this key") from exc
    return clear.decode("utf-8")


def lookup_hash(key: bytes, value: str) -> str:
    """Keyed hash (HMAC-SHA256, hex) of a normalised value, for equality lookup on encrypted fields."""
    return hmac.new(_derive(key, b"lookup-hmac/v1"), value.strip().upper().encode("utf-8"), hashlib.sha256).hexdigest()
