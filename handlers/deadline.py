"""A deadline per request, so that a store that hangs without closing its connections is answered 503.

pymongo is opened without a per-operation socket timeout (on Python 3.11 it costs a task per
operation, see service/storage/connections.py; Redis keeps its own, so that its callers can fall
back). Instead each request runs under one ``asyncio.timeout``: a timer, no task. When it fires,
the store operation under way is cancelled (pymongo and redis-py close a connection whose
operation was cancelled, so none is reused half-read) and the request is answered 503
``store_unavailable``.

What the deadline does not count: time spent waiting for a slow client's body (it has its
own limit, ``HUIMIN_BODY_READ_TIMEOUT_SECONDS``: the readers pause the deadline meanwhile),
and anything after a streamed answer has started (the live feed, downloads): once the
status line is sent, a 503 can no longer be given, and a slow reader must not be cut.
Bulk imports and exports (``Endpoint.long_running``) get the long deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from config import Settings
from handlers.endpoint import endpoint_of
from handlers.keys import DEADLINE
from service.common.errors import UnavailableError

log = logging.getLogger("huimin.http")


def deadline_middleware(settings: Settings) -> Middleware:
    """The middleware that runs each request under its deadline and answers 503 when it passes."""
    usual, long = settings.request_deadline, settings.long_request_deadline_seconds

    @web.middleware
    async def request_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
        meta = endpoint_of(request.match_info.handler)
        seconds = long if meta is not None and meta.long_running else usual
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                request[DEADLINE] = deadline
                try:
                    return await handler(request)
                finally:
                    request[DEADLINE] = None
        except TimeoutError:
            if not deadline.expired():
                raise
        log.warning(
            "request cut at its deadline",
            extra={"method": request.method, "path": request.path, "deadline_seconds": seconds},
        )
        raise UnavailableError(
            "store_unavailable",
            f"A backing store did not answer within {seconds:g} seconds; please retry shortly.",
        )

    return request_deadline


@contextmanager
def deadline_paused(request: web.Request) -> Iterator[None]:
    """Stop the request's deadline while waiting for the client (a body being sent); resume it after."""
    deadline = request.get(DEADLINE)
    when = deadline.when() if deadline is not None else None
    if deadline is None or when is None or deadline.expired():
        yield
        return
    loop = asyncio.get_running_loop()
    remaining = when - loop.time()
    deadline.reschedule(None)
    try:
        yield
    finally:
        if request.get(DEADLINE) is deadline and not deadline.expired():
            deadline.reschedule(loop.time() + remaining)


async def lift_deadline(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: an answer that starts streaming inside its handler is no longer cut."""
    deadline = request.get(DEADLINE)
    if deadline is not None and not deadline.expired():
        deadline.reschedule(None)
