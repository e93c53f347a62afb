"""Pure decisions of the volunteer service: no I/O, testable on their own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime, timedelta

from service.common.errors import ValidationFailedError
from service.volunteers.models import CheckinCode

CODE_PURPOSES = ("in", "out")
# Hours are kept to a tenth of an hour (6 minutes), as the national system records them.
# Crockford-like alphabet without 0/O, 1/I/L: codes are read aloud and typed from paper.
VERIFY_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
VERIFY_LENGTH = 12


class CodeProblem(Exception):
    """A check-in code that does not verify; ``code`` is the problem code to answer."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """True when two half-open intervals [start, end) share any moment."""
    return a_start < b_end and b_start < a_end


def round_hours(hours: float) -> float:
    """Hours to the tenth, never negative."""
    return max(0.0, round(hours * 10) / 10)


def attended_hours(check_in: datetime, check_out: datetime, start: datetime, end: datetime) -> float:
    """Hours of attendance inside the activity's window (time before start or after end does not count)."""
    begin, finish = max(check_in, start), min(check_out, end)
    if finish <= begin:
        return 0.0
    return round_hours((finish - begin).total_seconds() / 3600)


def check_hours(hours: float, *, start: datetime, end: datetime, field: str = "hours") -> float:
    """The hours rounded, or ``hours_exceed_activity`` / ``invalid_hours`` when they cannot be true."""
    length = (end - start).total_seconds() / 3600
    if hours <= 0:
        raise ValidationFailedError(
            "invalid_hours", "Hours must be more than zero.", errors={field: ["Must be more than zero."]}
        )
    if hours > length + 1e-9:
        raise ValidationFailedError(
            "hours_exceed_activity",
            f"{hours} hours is more than the activity lasted ({round(length, 2)} hours).",
            errors={field: [f"At most {round(length, 2)} hours (the activity's length)."]},
            activity_hours=round(length, 2),
        )
    return round_hours(hours)


def check_attendance_window(
    check_in: datetime, check_out: datetime | None, *, start: datetime, end: datetime, grace: timedelta
) -> None:
    """Refuse attendance times that cannot belong to the activity (``invalid_attendance_time``)."""
    errors: dict[str, list[str]] = {}
    if check_in < start - grace or check_in > end:
        errors["check_in_at"] = ["Must fall within the activity (check-in opens 1 hour before the start)."]
    if check_out is not None:
        if check_out <= check_in:
            errors["check_out_at"] = ["Must be after the check-in."]
        elif check_out > end + grace:
            errors["check_out_at"] = ["Must be at most 1 hour after the activity's end."]
    if errors:
        raise ValidationFailedError(
            "invalid_attendance_time", "The attendance times do not fit the activity.", errors=errors
        )


def signup_status(*, confirmed: int, slots: int, auto_confirm: bool) -> str:
    """Where a new sign-up lands: waiting list when every slot is taken, else pending (or confirmed)."""
    if confirmed >= slots:
        return "waitlisted"
    return "confirmed" if auto_confirm else "pending"


# ---------------------------------------------------------------- check-in codes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def code_key(data_key: bytes) -> bytes:
    """The signing key of check-in codes, separate from every other use of the data key."""
    return hmac.new(data_key, b"huimin/volunteer-checkin-code/v1", hashlib.sha256).digest()


def make_checkin_code(*, activity_id: str, purpose: str, now: datetime, ttl_seconds: int) -> CheckinCode:
    """A fresh code for the organiser's screen: activity, purpose, random nonce, expiry."""
    if purpose not in CODE_PURPOSES:
        raise ValueError(f"purpose must be one of {CODE_PURPOSES}")
    expires = (now + timedelta(seconds=ttl_seconds)).replace(microsecond=0)
    return CheckinCode(activity_id=activity_id, purpose=purpose, nonce=secrets.token_hex(8), expires_at=expires)


def sign_checkin_code(key: bytes, code: CheckinCode) -> str:
    """The text of a code: ``v1.<payload>.<HMAC-SHA256>`` (what the QR code on the screen holds)."""
    payload = json.dumps(
        {"a": code.activity_id, "p": code.purpose, "n": code.nonce, "e": int(code.expires_at.timestamp())},
        separators=(",", ":"),
    ).encode()
    body = _b64(payload)
    mac = hmac.new(key, f"v1.{body}".encode(), hashlib.sha256).digest()[:16]
    return f"v1.{body}.{_b64(mac)}"


def verify_checkin_code(key: bytes, text: str, *, now: datetime) -> CheckinCode:
    """The code's content when its signature holds and it has not expired; CodeProblem otherwise."""
    parts = text.strip().split(".") if isinstance(text, str) else []
    if len(parts) != 3 or parts[0] != "v1":
        raise CodeProblem("checkin_code_invalid", "This is not a check-in code of this service.")
    try:
        mac = _unb64(parts[2])
        expected = hmac.new(key, f"v1.{parts[1]}".encode(), hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(mac, expected):
            raise CodeProblem("checkin_code_invalid", "The check-in code's signature does not hold.")
        data = json.loads(_unb64(parts[1]))
        code = CheckinCode(
            activity_id=str(data["a"]),
            purpose=str(data["p"]),
            nonce=str(data["n"]),
            expires_at=datetime.fromtimestamp(int(data["e"]), UTC),
        )
    except CodeProblem:
        raise
    except (ValueError, KeyError, TypeError):
        raise CodeProblem("checkin_code_invalid", "The check-in code cannot be read.") from None
    if now >= code.expires_at:
        raise CodeProblem(
            "checkin_code_expired", "The check-in code has expired; scan the code on the organiser's screen again."
        )
    return code


SHORT_CODE_LENGTH = 6


def code_window(now: datetime, step_seconds: int) -> int:
    """The index of the time window a short code belongs to (windows are ``step_seconds`` long)."""
    return int(now.timestamp()) // max(step_seconds, 1)


def short_checkin_code(key: bytes, *, activity_id: str, purpose: str, window: int) -> str:
    """The typed form of a check-in code: 6 characters for one activity, purpose and time window.

    The long signed code is for the QR code; this one is for typing it from the screen. It is
    derived with the same key, so it needs no storage: anyone who knows the activity and can read
    the screen can type it, and a copy is worthless once its window and the next have passed.
    """
    mac = hmac.new(key, f"short|{activity_id}|{purpose}|{window}".encode(), hashlib.sha256).digest()
    number = int.from_bytes(mac[:8], "big")
    chars = []
    for _ in range(SHORT_CODE_LENGTH):
        number, digit = divmod(number, len(VERIFY_ALPHABET))
        chars.append(VERIFY_ALPHABET[digit])
    return "".join(chars)


def normalise_short_code(text: str) -> str:
    """What a volunteer typed, as a short code: upper case, without spaces or dashes."""
    return "".join(ch for ch in text.upper() if ch not in " -\t")


def verify_short_code(key: bytes, text: str, *, activity_id: str, now: datetime, step_seconds: int) -> tuple[str, int]:
    """(purpose, window) of a typed short code of this activity's current or previous window; CodeProblem otherwise.

    A code shown at any moment of window ``w`` is accepted until window ``w + 1`` ends, so it
    lives at least one full step (the signed code's lifetime) and at most two.
    """
    typed = normalise_short_code(text)
    if len(typed) != SHORT_CODE_LENGTH or any(ch not in VERIFY_ALPHABET for ch in typed):
        raise CodeProblem("checkin_code_invalid", "A typed check-in code has 6 letters and digits.")
    current = code_window(now, step_seconds)
    # The two live windows, then the ten before them (an old code is "expired", not "wrong").
    for window in range(current, current - 12, -1):
        for purpose in CODE_PURPOSES:
            expected = short_checkin_code(key, activity_id=activity_id, purpose=purpose, window=window)
            if not hmac.compare_digest(typed, expected):
                continue
            if window >= current - 1:
                return purpose, window
            raise CodeProblem(
                "checkin_code_expired", "The check-in code has expired; type the code on the organiser's screen again."
            )
    raise CodeProblem("checkin_code_invalid", "This is not the activity's check-in code; check the letters.")


# ---------------------------------------------------------------- certificates


def new_verification_code() -> str:
    """12 characters from a 31-letter alphabet (about 59 bits): not guessable, easy to type."""
    return "".join(secrets.choice(VERIFY_ALPHABET) for _ in range(VERIFY_LENGTH))


def certificate_number(*, township: str, issued_at: datetime, serial: int) -> str:
    """ZYZM-<township>-<year>-<serial>: unique per township and year (志愿服务记录证明 numbering)."""
    return f"ZYZM-{township}-{issued_at.year}-{serial:06d}"


def verify_url(base_url: str, code: str) -> str:
    """Where a certificate's QR code points."""
    return f"{base_url.rstrip('/')}/verify/{code}"


def format_hours(hours: float) -> str:
    """12.5 -> "12.5", 3.0 -> "3"."""
    text = f"{hours:.1f}"
    return text[:-2] if text.endswith(".0") else text
