"""One-time SMS login codes for residents, kept in Redis.

Fail-safe: codes, their attempt counters and the send limits live only in Redis. When Redis
is down no code can be issued or checked, so both ``request_otp`` and ``verify_otp`` answer
503 ``otp_unavailable`` rather than letting anyone in (or sending codes without limits).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from service.common.context import Context
from service.common.errors import AuthenticationError, RateLimitedError, UnavailableError
from service.notify.sms import sms_sender
from service.storage.errors import is_redis_down

CODE_DIGITS = 6
MAX_ATTEMPTS = 5
MIN_INTERVAL_SECONDS = 60
DAILY_LIMIT = 10
SMS_TEMPLATE = "login_code"
CHINA = ZoneInfo("Asia/Shanghai")


def _code_hash(ctx: Context, phone: str, code: str) -> str:
    # Keyed, so a leaked Redis dump cannot be brute-forced over the million possible codes.
    return hmac.new(ctx.settings.data_key_bytes, f"otp:{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def seconds_to_midnight(now: datetime) -> int:
    """Seconds until the next day starts in China (the daily limit's reset)."""
    local = now.astimezone(CHINA)
    tomorrow = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((tomorrow - local).total_seconds()))


def _unavailable() -> UnavailableError:
    return UnavailableError("otp_unavailable", "SMS login is unavailable right now; try WeChat login or retry shortly.")


async def request_otp(*, ctx: Context, phone: str) -> int:
    """Send a fresh 6-digit code to ``phone``; returns its lifetime in seconds.

    At most one request a minute and ten a day per number (429 ``otp_too_frequent`` /
    ``otp_daily_limit``). Only an HMAC of the code is stored. Redis down -> 503.
    """
    try:
        return await _request_otp(ctx, phone)
    except Exception as exc:
        if is_redis_down(exc):
            raise _unavailable() from None
        raise


async def _request_otp(ctx: Context, phone: str) -> int:
    r = ctx.redis
    now = ctx.now()
    day_key = ctx.key("otp", "day", phone, now.astimezone(CHINA).strftime("%Y%m%d"))
    sent_today = int(await r.get(day_key) or 0)
    if sent_today >= DAILY_LIMIT:
        raise RateLimitedError(
            "otp_daily_limit", "Ten codes were sent to this number today; try again tomorrow.", seconds_to_midnight(now)
        )
    minute_key = ctx.key("otp", "minute", phone)
    if not await r.set(minute_key, "1", nx=True, ex=MIN_INTERVAL_SECONDS):
        ttl = await r.ttl(minute_key)
        raise RateLimitedError("otp_too_frequent", "A code was sent less than a minute ago.", ttl if ttl > 0 else 1)
    async with r.pipeline(transaction=True) as pipe:
        pipe.incr(day_key)
        pipe.expire(day_key, 86400 + 3600)
        await pipe.execute()
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    ttl = ctx.settings.otp_ttl_seconds
    code_key = ctx.key("otp", "code", phone)
    async with r.pipeline(transaction=True) as pipe:
        pipe.delete(code_key)
        pipe.hset(code_key, mapping={"hash": _code_hash(ctx, phone, code), "tries": 0})
        pipe.expire(code_key, ttl)
        await pipe.execute()
    try:
        await sms_sender(ctx).send(phone=phone, template=SMS_TEMPLATE, params={"code": code, "minutes": ttl // 60})
    except Exception:
        # Not delivered: let the resident ask again at once instead of waiting a minute.
        await r.delete(code_key, minute_key)
        raise
    return ttl


async def verify_otp(*, ctx: Context, phone: str, code: str) -> None:
    """Check and spend a code: 401 ``otp_invalid``, 429 ``otp_attempts_exceeded`` after 5 tries."""
    try:
        await _verify_otp(ctx, phone, code)
    except Exception as exc:
        if is_redis_down(exc):
            raise _unavailable() from None
        raise


async def _verify_otp(ctx: Context, phone: str, code: str) -> None:
    r = ctx.redis
    code_key = ctx.key("otp", "code", phone)
    # Read and count in one transaction, before comparing, so parallel guesses cannot
    # exceed the limit and a code expiring in between is seen as gone.
    async with r.pipeline(transaction=True) as pipe:
        pipe.hget(code_key, "hash")
        pipe.hincrby(code_key, "tries", 1)
        stored, tries = await pipe.execute()
    if not stored:
        await r.delete(code_key)  # drop the counter the increment may have created
        raise AuthenticationError("otp_invalid", "The code is wrong or has expired; request a new one.")
    if tries > MAX_ATTEMPTS:
        await r.delete(code_key)
        minute_ttl = await r.ttl(ctx.key("otp", "minute", phone))
        raise RateLimitedError(
            "otp_attempts_exceeded", "Too many wrong codes; request a new one.", minute_ttl if minute_ttl > 0 else 1
        )
    if not hmac.compare_digest(stored, _code_hash(ctx, phone, code)):
        raise AuthenticationError(
            "otp_invalid", "The code is wrong or has expired.", attempts_left=MAX_ATTEMPTS - int(tries)
        )
    if not await r.delete(code_key):  # someone spent it a moment ago
        raise AuthenticationError("otp_invalid", "The code is wrong or has expired; request a new one.")
