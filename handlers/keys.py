"""Typed keys for objects kept on the app and on each request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from service.common.context import Context
from service.common.errors import DomainError
from service.common.models import Principal

CTX = web.AppKey("CTX", Context)
# Turns a storage driver exception into a domain error (set by the composition root,
# so that this layer never imports a driver).
ERROR_TRANSLATOR = web.AppKey("ERROR_TRANSLATOR", Callable[[BaseException], DomainError | None])
METRICS = web.AppKey("METRICS", Any)

PRINCIPAL = web.RequestKey("PRINCIPAL", Principal)
REQUEST_ID = web.RequestKey("REQUEST_ID", str)
# The revocation check of the caller's token, under way (routes with ``overlaps_revocation``).
REVOCATION_CHECK = web.RequestKey("REVOCATION_CHECK", Awaitable[None])
# The JSON body as sent (parsed, before any schema fills in defaults): what an Idempotency-Key's
# fingerprint is taken of, so a release that changes a default does not change it.
SENT_JSON = web.RequestKey("SENT_JSON", object)
# The request's deadline while its handler runs (handlers/deadline.py); None once it has returned.
DEADLINE = web.RequestKey("DEADLINE", asyncio.Timeout | None)
