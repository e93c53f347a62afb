"""Webhook subscriptions of API clients, their delivery log, pings and redeliveries."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.io import json_response, read_json, read_query
from handlers.keys import CTX
from handlers.middlewares import principal_of
from schemas.cases import CaseSchema
from schemas.webhooks import (
    DeliveryPageSchema,
    DeliveryQuerySchema,
    DeliverySchema,
    WebhookCreateSchema,
    WebhookPageSchema,
    WebhookQuerySchema,
    WebhookSchema,
    WebhookUpdateSchema,
    WebhookWithSecretSchema,
)
from service.cases import queries as case_queries
from service.common.context import Context
from service.common.errors import NotFoundError
from service.common.models import Principal
from service.webhooks import operations, subscriptions

routes = web.RouteTableDef()


class ClientCaseViews:
    """The case exactly as GET /api/v1/cases/{id} shows it to a client (``service.webhooks.ports.CaseViews``).

    The composition root installs it as ``ctx.case_views`` so webhook payloads carry the same
    representation as the API.
    """

    async def case_for_client(self, ctx: Context, case_id: str, client_id: str) -> dict[str, Any] | None:
        principal = Principal(subject=client_id, role="client", scopes=frozenset({"cases:read"}))
        try:
            case = await case_queries.get_case(ctx=ctx, principal=principal, case_id=case_id)
        except NotFoundError:
            return None
        return dict(CaseSchema().dump(case))


TAGS = ("webhooks",)
SCOPES = ("webhooks:manage",)
READERS = ("client", "admin")


@routes.post("/api/v1/webhooks")
@endpoint(
    "Subscribe a URL to case events (the signing secret is shown once)",
    tags=TAGS,
    body=WebhookCreateSchema(),
    response=WebhookWithSecretSchema(),
    status=201,
    roles=("client",),
    scopes=SCOPES,
    problems=(409, 422),
)
async def create_webhook(request: web.Request) -> web.Response:
    data = await read_json(request, WebhookCreateSchema())
    created = await subscriptions.create_subscription(ctx=request.app[CTX], principal=principal_of(request), data=data)
    return json_response(WebhookWithSecretSchema(), created, status=201)


@routes.get("/api/v1/webhooks")
@endpoint(
    "List webhook subscriptions (a client's own; admins see all)",
    tags=TAGS,
    query=WebhookQuerySchema(),
    response=WebhookPageSchema(),
    roles=READERS,
    scopes=SCOPES,
)
async def list_webhooks(request: web.Request) -> web.Response:
    q = read_query(request, WebhookQuerySchema())
    page = await subscriptions.list_subscriptions(ctx=request.app[CTX], principal=principal_of(request), **q)
    return json_response(WebhookPageSchema(), page)


@routes.get("/api/v1/webhooks/{webhook_id}")
@endpoint(
    "Read a webhook subscription", tags=TAGS, response=WebhookSchema(), roles=READERS, scopes=SCOPES, problems=(404,)
)
async def get_webhook(request: web.Request) -> web.Response:
    sub = await subscriptions.get_subscription(
        ctx=request.app[CTX], principal=principal_of(request), subscription_id=request.match_info["webhook_id"]
    )
    return json_response(WebhookSchema(), sub)


@routes.patch("/api/v1/webhooks/{webhook_id}")
@endpoint(
    "Change a webhook's URL, event types, description or active flag",
    tags=TAGS,
    body=WebhookUpdateSchema(),
    response=WebhookSchema(),
    roles=("client",),
    scopes=SCOPES,
    problems=(404, 422),
)
async def update_webhook(request: web.Request) -> web.Response:
    data = await read_json(request, WebhookUpdateSchema())
    sub = await subscriptions.update_subscription(
        ctx=request.app[CTX],
        principal=principal_of(request),
        subscription_id=request.match_info["webhook_id"],
        data=data,
    )
    return json_response(WebhookSchema(), sub)


@routes.delete("/api/v1/webhooks/{webhook_id}")
@endpoint(
    "Delete a webhook subscription and its log",
    tags=TAGS,
    status=204,
    roles=("client",),
    scopes=SCOPES,
    problems=(404,),
)
async def delete_webhook(request: web.Request) -> web.Response:
    await subscriptions.delete_subscription(
        ctx=request.app[CTX], principal=principal_of(request), subscription_id=request.match_info["webhook_id"]
    )
    return web.Response(status=204)


@routes.post("/api/v1/webhooks/{webhook_id}/ping")
@endpoint(
    "Send a webhook.ping now and report how the receiver answered",
    tags=TAGS,
    response=DeliverySchema(),
    roles=("client",),
    scopes=SCOPES,
    problems=(404,),
)
async def ping_webhook(request: web.Request) -> web.Response:
    result = await operations.ping_subscription(
        ctx=request.app[CTX], principal=principal_of(request), subscription_id=request.match_info["webhook_id"]
    )
    return json_response(DeliverySchema(), result)


@routes.post("/api/v1/webhooks/{webhook_id}/rotate-secret")
@endpoint(
    "Replace the signing secret (the new one is shown once)",
    tags=TAGS,
    response=WebhookWithSecretSchema(),
    roles=("client",),
    scopes=SCOPES,
    problems=(404,),
)
async def rotate_webhook_secret(request: web.Request) -> web.Response:
    rotated = await subscriptions.rotate_secret(
        ctx=request.app[CTX], principal=principal_of(request), subscription_id=request.match_info["webhook_id"]
    )
    return json_response(WebhookWithSecretSchema(), rotated)


@routes.get("/api/v1/webhooks/{webhook_id}/deliveries")
@endpoint(
    "Delivery log of a webhook subscription, newest first",
    tags=TAGS,
    query=DeliveryQuerySchema(),
    response=DeliveryPageSchema(),
    roles=READERS,
    scopes=SCOPES,
    problems=(404,),
)
async def list_webhook_deliveries(request: web.Request) -> web.Response:
    q = read_query(request, DeliveryQuerySchema())
    page = await operations.list_deliveries(
        ctx=request.app[CTX], principal=principal_of(request), subscription_id=request.match_info["webhook_id"], **q
    )
    return json_response(DeliveryPageSchema(), page)


@routes.post("/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
@endpoint(
    "Queue a delivery again now (also delivered or dead ones)",
    tags=TAGS,
    response=DeliverySchema(),
    status=202,
    roles=("client",),
    scopes=SCOPES,
    problems=(404,),
)
async def redeliver_webhook_delivery(request: web.Request) -> web.Response:
    result = await operations.redeliver(
        ctx=request.app[CTX],
        principal=principal_of(request),
        subscription_id=request.match_info["webhook_id"],
        delivery_id=request.match_info["delivery_id"],
    )
    return json_response(DeliverySchema(), result, status=202)
