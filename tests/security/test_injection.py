"""NoSQL-operator injection on every JSON body field and every query parameter of every route.

MongoDB reads a JSON object such as {"$ne": null} as a query operator. Each input the route
table declares (the @endpoint body and query schemas) is sent with operator objects, operator
keys and operator-looking strings, as the widest-seeing role the route allows, over a
database with a case in it. None may succeed with data, and none may break the server.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import quote

import pytest
from marshmallow import Schema

from config import Settings
from handlers.keys import CTX
from service import catalog, stations
from service.catalog_seed import SEED_SERVICES
from service.models import SYSTEM
from tests.fuzz.world import SERVICE_CODE, answers_for
from tests.helpers import token_for
from tests.security.routes import Route, all_routes, best_role, protected_routes, role_claims

OPERATORS: list[Any] = [{"$gt": ""}, {"$ne": None}, {"$where": "1"}, {"$regex": ".*"}]
DIVISION = "340102001"


@dataclasses.dataclass
class Populated:
    client: Any
    settings: Settings
    ids: dict[str, str]

    def headers(self, route: Route) -> dict[str, str]:
        if route.meta is not None and route.meta.public:
            return {}
        role = best_role(route)
        return token_for(self.settings, role, **role_claims(role))


@pytest.fixture
async def populated(client: Any, settings: Settings) -> Populated:
    """A catalogue, one station and a resident's case: something an injected query could leak."""
    ctx = client.app[CTX]
    await catalog.seed_catalog(ctx)
    station = await stations.create_station(
        ctx=ctx,
        principal=SYSTEM,
        data={
            "code": DIVISION,
            "name": "测试街道社工站",
            "location": {"type": "Point", "coordinates": [117.31, 31.86]},
            "capabilities": sorted({s.capability for s in SEED_SERVICES}),
            "precision": "exact",
        },
    )
    service = await catalog.get_service(ctx=ctx, code=SERVICE_CODE)
    body = {
        "service_code": SERVICE_CODE,
        "answers": answers_for(service),
        "division_code": DIVISION,
        "contact": {"name": "王芳", "phone": "13912345678"},
    }
    resp = await client.post("/api/v1/cases", json=body, headers=token_for(settings, "resident", subject="res-1"))
    assert resp.status == 201, await resp.text()
    case_id = (await resp.json())["id"]
    return Populated(client, settings, {"case_id": case_id, "id": station.id, "station_id": station.id})


def _input_names(schema: Schema) -> list[str]:
    """The names a caller sends for a schema's loadable fields."""
    return sorted(f.data_key or name for name, f in schema.fields.items() if not f.dump_only)


def _json_routes(routes: list[Route]) -> list[tuple[Route, str]]:
    return [
        (r, name)
        for r in routes
        if r.meta is not None and r.meta.body_kind == "json" and r.meta.body is not None
        for name in _input_names(r.meta.body)
    ]


def _query_routes(routes: list[Route]) -> list[tuple[Route, str]]:
    return [
        (r, name)
        for r in routes
        if r.meta is not None and r.meta.query is not None
        for name in _input_names(r.meta.query)
    ]


def _leaks(status: int, body: Any) -> bool:
    """A success that returns records: the injected value was taken as a filter."""
    if not 200 <= status < 300:
        return False
    return not (isinstance(body, dict) and body.get("items") == [])


async def _send(world: Populated, route: Route, *, query: str = "", json: Any = None) -> tuple[int, Any]:
    url = route.url(**world.ids) + (f"?{query}" if query else "")
    kwargs: dict[str, Any] = {"headers": world.headers(route)}
    if json is not None:
        kwargs["json"] = json
    resp = await world.client.request(route.method, url, **kwargs)
    body = await resp.json() if resp.content_type.endswith("json") else await resp.read()
    return resp.status, body


def _all_routes(world: Populated) -> list[Route]:
    return [r for r in all_routes(world.client.server.app) if r.meta is not None]


async def test_operator_objects_in_any_json_field_are_refused(populated: Populated) -> None:
    cases = _json_routes(_all_routes(populated))
    assert cases, "no route takes a JSON body"
    failures = []
    for route, name in cases:
        for operator in OPERATORS:
            for value in (operator, [operator], {"nested": operator}):
                status, body = await _send(populated, route, json={name: value})
                code = body.get("code") if isinstance(body, dict) else None
                if status != 400 or code != "operator_not_allowed":
                    failures.append(f"{route.label} {name}={value!r}: {status} {code}")
    assert not failures, "\n".join(failures)


async def test_operator_keys_in_the_query_string_are_refused(populated: Populated) -> None:
    cases = _query_routes(_all_routes(populated))
    assert cases, "no route takes a query"
    failures = []
    for route, name in cases:
        for query in (f"{name}[$ne]=x", f"{name}[$gt]=", f"{quote(name)}.$where=1", "$where=1"):
            status, body = await _send(populated, route, query=query)
            code = body.get("code") if isinstance(body, dict) else None
            if status not in (400, 422):
                failures.append(f"{route.label}?{query}: {status} {code}")
    assert not failures, "\n".join(failures)


async def test_operator_strings_as_query_values_match_nothing(populated: Populated) -> None:
    failures = []
    for route, name in _query_routes(_all_routes(populated)):
        for value in ("$gt", "$ne", '{"$ne": null}', "$where"):
            status, body = await _send(populated, route, query=f"{name}={quote(value)}")
            if status >= 500 or _leaks(status, body):
                failures.append(f"{route.label}?{name}={value}: {status} {str(body)[:120]}")
    assert not failures, "\n".join(failures)


async def test_the_case_is_there_to_be_leaked(populated: Populated) -> None:
    """The guard for the tests above: the seeded case is visible to an honest query."""
    route = next(
        r for r in protected_routes(populated.client.server.app) if (r.method, r.path) == ("GET", "/api/v1/cases")
    )
    status, body = await _send(populated, route)
    assert status == 200 and len(body["items"]) == 1
