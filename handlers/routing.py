"""Routing preview: which station a request would go to, and why."""

from __future__ import annotations

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.io import json_response, read_json
from handlers.keys import CTX
from schemas.routing import RoutingDecisionSchema, RoutingPreviewSchema
from service.stations.routing import route_request

routes = web.RouteTableDef()


@routes.post("/api/v1/routing/preview")
@endpoint(
    "Preview the routing decision for a service at a location or division code",
    tags=("routing",),
    description="A resident's app calls it before filing: with needs_township true it shows the townships "
    "and files the case with the chosen division_code, so the case reaches the township station directly.",
    roles=("resident", "worker", "station_head", "supervisor", "admin", "client"),
    scopes=("stations:read",),
    body=RoutingPreviewSchema(),
    response=RoutingDecisionSchema(),
    problems=(422,),
)
async def preview(request: web.Request) -> web.Response:
    data = await read_json(request, RoutingPreviewSchema())
    decision = await route_request(
        ctx=request.app[CTX],
        service_code=data["service_code"],
        location=data.get("location"),
        division_code=data.get("division_code"),
        exclude=frozenset(data["exclude"]),
    )
    return json_response(RoutingDecisionSchema(), decision.to_dict())
