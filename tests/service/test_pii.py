"""ID card and phone validation, field encryption, lookup hashes and masking."""

from __future__ import annotations

import base64
from datetime import date

import pytest

from service.common import pii
from service.common.errors import ValidationFailedError

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def iso7064_mod11_2(digits: str) -> str:
    """Check character by the ISO 7064 MOD 11-2 recurrence (independent of the weight table)."""
    p = 0
    for ch in digits:
        p = ((p + int(ch)) * 2) % 11
    value = (12 - p) % 11
    return "X" if value == 10 else str(value)


def make_id(first17: str) -> str:
    return first17 + iso7064_mod11_2(first17)


HEFEI_1990 = make_id("34010219900101123")
# Find a real number whose check character is X, to test the X branch honestly.
WITH_X = next(
    make_id(f"34102119850615{n:03d}") for n in range(1000) if iso7064_mod11_2(f"34102119850615{n:03d}") == "X"
)


def test_valid_numbers_are_accepted_and_normalised() -> None:
    assert pii.validate_id_card(HEFEI_1990) == HEFEI_1990
    assert pii.validate_id_card(" " + WITH_X.lower() + " ") == WITH_X
    assert WITH_X.endswith("X")


def test_check_character_table_agrees_with_iso_7064() -> None:
    for n in range(200):
        first17 = f"340102{1950 + n % 70}0{1 + n % 9}1{n % 10}{n:03d}"[:17]
        assert pii.id_card_check_char(first17) == iso7064_mod11_2(first17)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "34010219900101123",  # 17 chars
        "3401021990010112345",  # 19 chars
        "34010219900101123A",
        "99010219900101" + "1230",  # no such province
        make_id("34010219900230123"),  # Feb 30
        make_id("34010218890101123"),  # before 1900
        make_id("34010221000101123"),  # in the future
    ],
)
def test_invalid_numbers_are_refused(value: str) -> None:
    with pytest.raises(ValidationFailedError) as exc:
        pii.validate_id_card(value)
    assert exc.value.code == "invalid_id_card"
    assert "id_card" in exc.value.errors


def test_wrong_check_digit_is_refused() -> None:
    wrong = HEFEI_1990[:17] + ("0" if HEFEI_1990[17] != "0" else "1")
    with pytest.raises(ValidationFailedError) as exc:
        pii.validate_id_card(wrong, field="person.id_card")
    assert "check digit" in exc.value.errors["person.id_card"][0]
    assert not pii.is_valid_id_card(wrong)
    assert pii.is_valid_id_card(HEFEI_1990)


def test_birth_date_is_checked_against_today() -> None:
    born_2026 = make_id("34010220261201123")
    with pytest.raises(ValidationFailedError):
        pii.validate_id_card(born_2026, today=date(2026, 11, 28))
    assert pii.validate_id_card(born_2026, today=date(2026, 12, 2)) == born_2026


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13812345678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("008619912345678", "19912345678"),
        ("8613812345678", "13812345678"),
    ],
)
def test_mobile_numbers_are_normalised(raw: str, expected: str) -> None:
    assert pii.normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["", "12812345678", "1381234567", "055165123456", "abc", "138123456789"])
def test_non_mobile_numbers_are_refused(raw: str) -> None:
    with pytest.raises(ValidationFailedError) as exc:
        pii.normalize_phone(raw)
    assert exc.value.code == "invalid_phone"


def test_masking() -> None:
    assert pii.mask_id_card("340102199001011234") == "3401**********1234"
    assert pii.mask_phone("13812345678") == "138****5678"
    assert pii.mask_name("张三丰") == "张**"
    assert pii.mask_name("李四") == "李*"
    assert pii.mask_name("王") == "*"


def test_encryption_roundtrip_uses_a_fresh_nonce() -> None:
    a = pii.encrypt(KEY, HEFEI_1990)
    b = pii.encrypt(KEY, HEFEI_1990)
    assert a != b
    assert a.startswith("v1.")
    assert HEFEI_1990 not in a
    assert pii.decrypt(KEY, a) == pii.decrypt(KEY, b) == HEFEI_1990
    assert pii.decrypt(KEY, pii.encrypt(KEY, "张三丰")) == "张三丰"


def test_decryption_fails_with_another_key_tampering_or_other_field() -> None:
    token = pii.encrypt(KEY, HEFEI_1990, aad="id_card")
    with pytest.raises(pii.DecryptionError):
        pii.decrypt(OTHER_KEY, token, aad="id_card")
    with pytest.raises(pii.DecryptionError):
        pii.decrypt(KEY, token, aad="phone")
    raw = bytearray(base64.urlsafe_b64decode(token[3:] + "=" * (-len(token[3:]) % 4)))
    raw[-1] ^= 1
    tampered = "v1." + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(pii.DecryptionError):
        pii.decrypt(KEY, tampered, aad="id_card")
    with pytest.raises(pii.DecryptionError):
        pii.decrypt(KEY, "v9." + token[3:], aad="id_card")


def test_lookup_hash_is_stable_keyed_and_not_the_encryption_key() -> None:
    h = pii.lookup_hash(KEY, HEFEI_1990)
    assert h == pii.lookup_hash(KEY, HEFEI_1990.lower())
    assert h != pii.lookup_hash(OTHER_KEY, HEFEI_1990)
    assert h != pii.lookup_hash(KEY, WITH_X)
    assert len(h) == 64
    assert pii._derive(KEY, b"lookup-hmac/v1") != pii._derive(KEY, b"aes-256-gcm/v1")
    assert KEY not in (pii._derive(KEY, b"lookup-hmac/v1"), pii._derive(KEY, b"aes-256-gcm/v1"))
