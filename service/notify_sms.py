"""Sending notification SMS: ``http`` posts to the deployment's SMS gateway, ``console`` logs.

The gateway contract: ``POST {sms_api_base}/send`` with JSON ``{phone, template, params}``;
any 2xx answer means accepted.
"""

from __future__ import annotations

import logging

import httpx

from service.context import Context
from service.errors import UpstreamError

log = logging.getLogger("huimin.sms")


def mask_phone(phone: str) -> str:
    """138****5678."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


async def send_sms(*, ctx: Context, phone: str, template: str, params: dict[str, str]) -> None:
    """Send one templated SMS; UpstreamError when the gateway refuses or cannot be reached."""
    s = ctx.settings
    if s.sms_sender != "http":
        log.info("SMS to %s: %s %s", mask_phone(phone), template, params)
        return
    try:
        resp = await ctx.http.post(
            s.sms_api_base.rstrip("/") + "/send", json={"phone": phone, "template": template, "params": params}
        )
    except httpx.HTTPError as exc:
        raise UpstreamError("sms_unreachable", f"The SMS gateway cannot be reached: {type(exc).__name__}") from None
    if resp.status_code // 100 != 2:
        raise UpstreamError("sms_refused", f"The SMS gateway answered {resp.status_code}.")
