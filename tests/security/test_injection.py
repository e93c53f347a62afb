"""NoSQL-operator injection on every JSON body field and every query parameter of every route.

MongoDB reads a JSON object such as {"$ne": null} as a query operator. Each input the route
table declares (the @endpoint body and query schemas) is sent with operator objects, operator
keys and operator-looking strings, as the widest-seeing role the route allows, over a
database with a case in it. None may succeed with data, and none may break the server.

The native API refuses what it does not know (400/422). Open311 routes follow the spec's
custom of ignoring parameters they do not know, so there an injected key must change
nothing: the answer is the one without it.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import quote

import pytest
from marshmallow import Schema, fields

from config import Settings
from handlers.keys import CTX
from service.catalog import service as catalog
from service.catalog.seed import SEED_SERVICES
from service.catalog.service import example_answers
from service.common.inputs import from_given
from service.common.models import CLIENT_SCOPES, SYSTEM
from service.identity.clients import create_client
from service.stations import service as stations
from service.stations.inputs import StationRegistration
from tests.factories import Accounts, bearer_for, make_wechat_resident
from tests.fuzz.world import SERVICE_CODE
from tests.security.routes import Route, all_routes, best_role, protected_routes, read_answer

OPERATORS: list[Any] = [{"$gt": ""}, {"$ne": None}, {"$where": "1"}, {"$regex": ".*"}]
OPERATOR_STRINGS = ("$gt", "$ne", '{"$ne": null}', "$where")
HARMLESS = "zzzz"  # a literal that matches nothing, to compare operator-looking values with
DIVISION = "340102001"
LENIENT_PREFIX = "/open311/"


@dataclasses.dataclass
class Populated:
    client: Any
    settings: Settings
    ids: dict[str, str]
    api_key: str
    accounts: Accounts

    async def headers(self, route: Route) -> dict[str, str]:
        if route.meta is not None and route.meta.public:
            return {}
        return await self.accounts.bearer(best_role(route))


@pytest.fixture
async def populated(client: Any, settings: Settings) -> Populated:
    """A catalogue, one station and a resident's case: something an injected query could leak."""
    ctx = client.app[CTX]
    await catalog.seed_catalog(ctx)
    station = await stations.create_station(
        ctx=ctx,
        principal=SYSTEM,
        data=from_given(
            StationRegistration,
            {
                "code": DIVISION,
                "name": "测试街道社工站",
                "location": {"type": "Point", "coordinates": [117.31, 31.86]},
                "capabilities": sorted({s.capability for s in SEED_SERVICES}),
                "precision": "exact",
            },
        ),
    )
    service = await catalog.get_service(ctx=ctx, code=SERVICE_CODE)
    body = {
        "service_code": SERVICE_CODE,
        "answers": example_answers(service),
        "division_code": DIVISION,
        "address": "瑶海区 1 号",
        "contact": {"name": "王芳", "phone": "13912345678"},
    }
    resident = await make_wechat_resident(ctx)
    resp = await client.post("/api/v1/cases", json=body, headers=bearer_for(settings, resident))
    assert resp.status == 201, await resp.text()
    case_id = (await resp.json())["id"]
    issued = await create_client(
        ctx=ctx, principal=SYSTEM, name="open311", scopes=list(CLIENT_SCOPES), rate_limit_per_minute=100000
    )
    api_key = f"{issued.client.client_id}:{issued.client_secret}"
    # A request filed through Open311, so the keyed list has something to leak.
    resp = await client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": api_key,
            "service_code": SERVICE_CODE,
            "address_id": DIVISION,
            "address_string": "瑶海区 1 号",
            **_form_answers(service),
        },
    )
    assert resp.status in (200, 201), await resp.text()
    ids = {"case_id": case_id, "id": station.id, "station_id": station.id}
    return Populated(client, settings, ids, api_key, Accounts(ctx, settings, client_rate_limit=100000))


def _form_answers(service: Any) -> dict[str, str]:
    """The service's answers as Open311 attribute[code] form fields."""
    out = {}
    for code, value in example_answers(service).items():
        out[f"attribute[{code}]"] = value[0] if isinstance(value, list) else str(value)
    return out


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


async def _send(world: Populated, route: Route, *, query: str = "", json: Any = None) -> tuple[int, Any]:
    if route.keyed:
        query = "&".join(q for q in (f"api_key={quote(world.api_key)}", query) if q)
    url = route.url(**world.ids) + (f"?{query}" if query else "")
    kwargs: dict[str, Any] = {"headers": await world.headers(route)}
    if json is not None:
        kwargs["json"] = json
    resp = await world.client.request(route.method, url, **kwargs)
    return resp.status, await read_answer(resp, route)


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
        lenient = route.path.startswith(LENIENT_PREFIX)
        baseline = await _send(populated, route) if lenient else None
        for query in (f"{name}[$ne]=x", f"{name}[$gt]=", f"{quote(name)}.$where=1", "$where=1"):
            status, body = await _send(populated, route, query=query)
            refused = status in (400, 422) or (lenient and 400 <= status < 500)
            if not refused and not (lenient and (status, body) == baseline):
                failures.append(f"{route.label}?{query}: {status} {str(body)[:160]}")
    assert not failures, "\n".join(failures)


async def test_operator_strings_as_query_values_match_nothing(populated: Populated) -> None:
    failures = []
    for route, name in _query_routes(_all_routes(populated)):
        if name == "api_key":
            continue  # the key itself is sent with every request to a keyed route
        literal = await _send(populated, route, query=f"{name}={HARMLESS}")
        for value in OPERATOR_STRINGS:
            status, body = await _send(populated, route, query=f"{name}={quote(value)}")
            # Taken as a literal, it matches what any other unmatched literal does; a 2xx that
            # differs from that answer means the value acted as an operator.
            if status >= 500 or (200 <= status < 300 and (status, body) != literal):
                failures.append(f"{route.label}?{name}={value}: {status} {str(body)[:160]}")
    assert not failures, "\n".join(failures)


async def test_the_case_is_there_to_be_leaked(populated: Populated) -> None:
    """The guard for the tests above: the seeded cases are visible to honest queries."""
    route = next(
        r for r in protected_routes(populated.client.server.app) if (r.method, r.path) == ("GET", "/api/v1/cases")
    )
    status, body = await _send(populated, route)
    assert status == 200 and len(body["items"]) == 2
    keyed = next(
        r for r in all_routes(populated.client.server.app) if (r.method, r.path) == ("GET", "/open311/v2/requests")
    )
    status, body = await _send(populated, keyed)
    assert status == 200 and len(body) == 1


def _integer_inputs(schema: Schema | None) -> list[str]:
    if schema is None:
        return []
    return sorted(
        f.data_key or name for name, f in schema.fields.items() if isinstance(f, fields.Integer) and not f.dump_only
    )


async def test_integers_beyond_what_the_database_stores_are_refused(populated: Populated) -> None:
    """MongoDB stores at most 64-bit integers; a bigger number must be a 4xx, not a driver error."""
    huge = 2**70
    failures = []
    checked = 0
    for route in _all_routes(populated):
        assert route.meta is not None
        for name in _integer_inputs(route.meta.query):
            status, _ = await _send(populated, route, query=f"{name}={huge}")
            checked += 1
            if not 400 <= status < 500:
                failures.append(f"{route.label}?{name}={huge}: {status}")
        if route.meta.body_kind == "json":
            for name in _integer_inputs(route.meta.body):
                status, _ = await _send(populated, route, json={name: huge})
                checked += 1
                if not 400 <= status < 500:
                    failures.append(f"{route.label} {name}={huge}: {status}")
    assert checked, "no route takes an integer"
    assert not failures, "\n".join(failures)
