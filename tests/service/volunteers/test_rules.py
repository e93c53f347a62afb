"""The pure rules of the volunteer service: hours, overlaps, check-in codes, certificate numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.common.errors import ValidationFailedError
from service.volunteers import rules

T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
KEY = rules.code_key(b"k" * 32)


def test_hours_count_only_inside_the_activity_window() -> None:
    start, end = T0, T0 + timedelta(hours=3)
    assert rules.attended_hours(T0 - timedelta(hours=1), T0 + timedelta(hours=2), start, end) == 2.0
    assert rules.attended_hours(T0 + timedelta(minutes=30), T0 + timedelta(hours=5), start, end) == 2.5
    assert rules.attended_hours(T0 + timedelta(hours=4), T0 + timedelta(hours=5), start, end) == 0.0
    assert rules.attended_hours(T0, T0 + timedelta(minutes=100), start, end) == 1.7


def test_hours_beyond_the_activity_length_are_refused() -> None:
    start, end = T0, T0 + timedelta(hours=2)
    assert rules.check_hours(2.0, start=start, end=end) == 2.0
    with pytest.raises(ValidationFailedError) as exc:
        rules.check_hours(2.1, start=start, end=end)
    assert exc.value.code == "hours_exceed_activity"
    with pytest.raises(ValidationFailedError) as exc:
        rules.check_hours(0, start=start, end=end)
    assert exc.value.code == "invalid_hours"


def test_overlap_is_half_open() -> None:
    assert rules.overlaps(T0, T0 + timedelta(hours=2), T0 + timedelta(hours=1), T0 + timedelta(hours=3))
    assert not rules.overlaps(T0, T0 + timedelta(hours=2), T0 + timedelta(hours=2), T0 + timedelta(hours=3))


def test_a_signed_code_verifies_until_it_expires() -> None:
    code = rules.make_checkin_code(activity_id="a" * 24, purpose="in", now=T0, ttl_seconds=60)
    text = rules.sign_checkin_code(KEY, code)
    assert rules.verify_checkin_code(KEY, text, now=T0 + timedelta(seconds=59)) == code
    with pytest.raises(rules.CodeProblem) as exc:
        rules.verify_checkin_code(KEY, text, now=T0 + timedelta(seconds=60))
    assert exc.value.code == "checkin_code_expired"


@pytest.mark.parametrize("mangle", ["flip_payload", "other_key", "garbage", "empty"])
def test_a_forged_or_altered_code_is_refused(mangle: str) -> None:
    code = rules.make_checkin_code(activity_id="a" * 24, purpose="in", now=T0, ttl_seconds=60)
    text = rules.sign_checkin_code(KEY, code)
    if mangle == "flip_payload":  # a later expiry or another activity, keeping the old signature
        later = rules.sign_checkin_code(
            KEY, rules.make_checkin_code(activity_id="b" * 24, purpose="in", now=T0, ttl_seconds=600)
        )
        text = ".".join([*later.split(".")[:2], text.split(".")[2]])
    elif mangle == "other_key":
        text = rules.sign_checkin_code(rules.code_key(b"x" * 32), code)
    elif mangle == "garbage":
        text = "v1.!!!.###"
    else:
        text = ""
    with pytest.raises(rules.CodeProblem) as exc:
        rules.verify_checkin_code(KEY, text, now=T0)
    assert exc.value.code == "checkin_code_invalid"


def test_certificate_numbers_and_codes() -> None:
    assert rules.certificate_number(township="341002001", issued_at=T0, serial=7) == "ZYZM-341002001-2026-000007"
    codes = {rules.new_verification_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 12 and set(c) <= set(rules.VERIFY_ALPHABET) for c in codes)
    assert rules.format_hours(3.0) == "3" and rules.format_hours(12.5) == "12.5"


def test_a_typed_short_code_lives_its_window_and_the_next_then_expires() -> None:
    step = 60
    shown_at = T0 + timedelta(seconds=59)  # the last second of a window
    window = rules.code_window(shown_at, step)
    short = rules.short_checkin_code(KEY, activity_id="a1", purpose="in", window=window)
    assert len(short) == rules.SHORT_CODE_LENGTH and set(short) <= set(rules.VERIFY_ALPHABET)
    typed = f"{short[:3].lower()} -{short[3:]}"  # typed loosely: case, spaces and dashes do not matter
    assert rules.verify_short_code(KEY, typed, activity_id="a1", now=shown_at, step_seconds=step) == ("in", window)
    later = shown_at + timedelta(seconds=step)  # a full step later it still works
    assert rules.verify_short_code(KEY, short, activity_id="a1", now=later, step_seconds=step) == ("in", window)
    with pytest.raises(rules.CodeProblem) as expired:
        rules.verify_short_code(KEY, short, activity_id="a1", now=later + timedelta(seconds=1), step_seconds=step)
    assert expired.value.code == "checkin_code_expired"


def test_a_short_code_is_bound_to_its_activity_purpose_and_key() -> None:
    window = rules.code_window(T0, 60)
    short_in = rules.short_checkin_code(KEY, activity_id="a1", purpose="in", window=window)
    short_out = rules.short_checkin_code(KEY, activity_id="a1", purpose="out", window=window)
    assert short_in != short_out
    assert rules.verify_short_code(KEY, short_out, activity_id="a1", now=T0, step_seconds=60)[0] == "out"
    other_key = rules.code_key(b"x" * 32)
    assert short_in != rules.short_checkin_code(other_key, activity_id="a1", purpose="in", window=window)
    for text, activity in ((short_in, "a2"), ("ABC", "a1"), ("IIIIII", "a1")):
        with pytest.raises(rules.CodeProblem) as info:
            rules.verify_short_code(KEY, text, activity_id=activity, now=T0, step_seconds=60)
        assert info.value.code == "checkin_code_invalid"
