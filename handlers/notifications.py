"""WeChat subscriptions, message templates, the inbox and notification preferences."""

from __future__ import annotations

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.io import json_response, read_json, read_query
from handlers.keys import CTX
from handlers.middlewares import principal_of
from schemas.notifications import (
    InboxQuerySchema,
    InboxSchema,
    NotificationSchema,
    ParkedEventPageSchema,
    ParkedEventQuerySchema,
    PreferencesSchema,
    PreferencesUpdateSchema,
    ReadAllSchema,
    SubscriptionCreateSchema,
    SubscriptionListSchema,
    SubscriptionSchema,
    TemplateListSchema,
)
from service.notify import inbox
from service.notify import service as notify

routes = web.RouteTableDef()
PEOPLE = ("resident", "worker", "station_head", "supervisor", "admin")
TAGS = ("notifications",)


@routes.get("/api/v1/notification-templates")
@endpoint(
    "WeChat subscription-message templates to ask consent for", tags=TAGS, public=True, response=TemplateListSchema()
)
async def list_templates(request: web.Request) -> web.Response:
    return json_response(TemplateListSchema(), {"items": inbox.list_templates(ctx=request.app[CTX])})


@routes.post("/api/v1/me/subscriptions")
@endpoint(
    "Record the answer to a subscription-message consent prompt",
    tags=TAGS,
    roles=("resident",),
    body=SubscriptionCreateSchema(),
    response=SubscriptionSchema(),
    status=201,
    problems=(401, 403, 422),
)
async def record_subscription(request: web.Request) -> web.Response:
    data = await read_json(request, SubscriptionCreateSchema())
    view = await inbox.record_subscription(
        ctx=request.app[CTX], principal=principal_of(request), template_id=data["template_id"], result=data["result"]
    )
    return json_response(SubscriptionSchema(), view, status=201)


@routes.get("/api/v1/me/subscriptions")
@endpoint(
    "My subscription-message grants per template",
    tags=TAGS,
    roles=("resident",),
    response=SubscriptionListSchema(),
    problems=(401, 403),
)
async def list_subscriptions(request: web.Request) -> web.Response:
    items = await inbox.list_subscriptions(ctx=request.app[CTX], principal=principal_of(request))
    return json_response(SubscriptionListSchema(), {"items": items})


@routes.get("/api/v1/me/notifications")
@endpoint(
    "My inbox: every notification I was sent, newest first",
    tags=TAGS,
    roles=PEOPLE,
    query=InboxQuerySchema(),
    response=InboxSchema(),
    problems=(400, 401, 403),
)
async def list_inbox(request: web.Request) -> web.Response:
    q = read_query(request, InboxQuerySchema())
    page = await inbox.list_inbox(
        ctx=request.app[CTX], principal=principal_of(request), unread=q["unread"], cursor=q["cursor"], limit=q["limit"]
    )
    return json_response(InboxSchema(), page)


@routes.post("/api/v1/me/notifications/read-all")
@endpoint("Mark my whole inbox read", tags=TAGS, roles=PEOPLE, body_kind="none", response=ReadAllSchema())
async def mark_all_read(request: web.Request) -> web.Response:
    marked = await inbox.mark_all_read(ctx=request.app[CTX], principal=principal_of(request))
    return json_response(ReadAllSchema(), {"marked": marked})


@routes.post("/api/v1/me/notifications/{notification_id}/read")
@endpoint(
    "Mark one inbox entry read",
    tags=TAGS,
    roles=PEOPLE,
    body_kind="none",
    response=NotificationSchema(),
    problems=(401, 403, 404),
)
async def mark_read(request: web.Request) -> web.Response:
    n = await inbox.mark_read(
        ctx=request.app[CTX], principal=principal_of(request), notification_id=request.match_info["notification_id"]
    )
    return json_response(NotificationSchema(), n)


@routes.get("/api/v1/me/preferences")
@endpoint("My notification preferences", tags=TAGS, roles=PEOPLE, response=PreferencesSchema(), problems=(401, 403))
async def get_preferences(request: web.Request) -> web.Response:
    view = await inbox.get_preferences(ctx=request.app[CTX], principal=principal_of(request))
    return json_response(PreferencesSchema(), view)


@routes.put("/api/v1/me/preferences")
@endpoint(
    "Choose which events reach me on which channel, and SMS quiet hours",
    tags=TAGS,
    roles=PEOPLE,
    body=PreferencesUpdateSchema(),
    response=PreferencesSchema(),
    problems=(401, 403, 422),
)
async def update_preferences(request: web.Request) -> web.Response:
    data = await read_json(request, PreferencesUpdateSchema())
    view = await inbox.update_preferences(
        ctx=request.app[CTX], principal=principal_of(request), events=data["events"], quiet_hours=data["quiet_hours"]
    )
    return json_response(PreferencesSchema(), view)


@routes.get("/api/v1/notification-events/parked")
@endpoint(
    "Events whose notifications could not be made after every try (dead letters of the events loop)",
    tags=TAGS,
    roles=("admin",),
    query=ParkedEventQuerySchema(),
    response=ParkedEventPageSchema(),
)
async def list_parked_events(request: web.Request) -> web.Response:
    query = read_query(request, ParkedEventQuerySchema())
    items, next_cursor = await notify.list_parked_events(ctx=request.app[CTX], principal=principal_of(request), **query)
    return json_response(ParkedEventPageSchema(), {"items": items, "next_cursor": next_cursor})


@routes.post("/api/v1/notification-events/parked/{event_id}/retry")
@endpoint(
    "Hand a parked event back to the events loop (after its cause was fixed)",
    tags=TAGS,
    roles=("admin",),
    status=204,
    problems=(404,),
)
async def retry_parked_event(request: web.Request) -> web.Response:
    await notify.retry_parked_event(
        ctx=request.app[CTX], principal=principal_of(request), event_id=request.match_info["event_id"]
    )
    return web.Response(status=204)
