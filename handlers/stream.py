"""The staff live feed as Server-Sent Events.

``GET /api/v1/stream`` with ``Authorization: Bearer <token>`` or, because the browser's
EventSource cannot send headers, ``?access_token=<token>`` (accepted on this route only).
Each message is ``id: <feed number>`` + ``data: <event JSON>``; reconnecting with
``Last-Event-ID`` (or ``?last_event_id=``) resumes after it. Idle streams carry ``: ping``
comment lines. App shutdown ends every stream so the server can stop.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.io import read_query
from handlers.keys import CTX
from handlers.middlewares import principal_of
from schemas.notifications import StreamQuerySchema
from service.notify.stream import close_streams, open_stream

routes = web.RouteTableDef()


@routes.get("/api/v1/stream")
@endpoint(
    "Live feed of new, returned, assigned, overdue and urged cases and visits due (text/event-stream)",
    tags=("notifications",),
    roles=("worker", "station_head", "supervisor", "admin"),
    query=StreamQuerySchema(),
    response_content_type="text/event-stream",
    token_in_query=True,
    problems=(401, 403),
)
async def stream(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    q = read_query(request, StreamQuerySchema())
    last_event_id = request.headers.get("Last-Event-ID") or q["last_event_id"]
    feed = await open_stream(ctx=ctx, principal=principal_of(request), last_event_id=last_event_id)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8", "X-Accel-Buffering": "no"})
    try:
        await resp.prepare(request)
        await resp.write(b"retry: 3000\n\n")
        async for message in feed:
            if message.event is None:
                chunk = ": ping\n\n"
            else:
                chunk = f"id: {message.id}\ndata: {json.dumps(message.event, ensure_ascii=False)}\n\n"
            # A client that stopped reading must not pin this handler forever.
            await asyncio.wait_for(resp.write(chunk.encode()), ctx.settings.stream_write_timeout_seconds)
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        await feed.close()
    return resp


async def on_shutdown(app: web.Application) -> None:
    """End the live-feed streams so a graceful shutdown does not wait on them."""
    await close_streams(ctx=app[CTX])
