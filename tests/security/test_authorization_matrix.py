"""Who may call what: every route of the route table against every role, from its @endpoint rule.

A route added without @endpoint metadata, or made public without being listed in
tests/security/routes.py, fails here. Each check sends a real request through the app, so a
rule that the middleware would not enforce fails too.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from config import Settings
from handlers.keys import CTX
from run import create_app
from service.common.models import CLIENT_SCOPES, SYSTEM
from service.identity.clients import create_client
from tests.factories import Accounts
from tests.security.routes import PUBLIC_ROUTES, Route, all_routes, protected_routes, read_answer

BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def _app(settings: Settings) -> web.Application:
    """An app that is built but never started: enough to read its route table."""
    return create_app(settings)


async def _call(client: Any, route: Route, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    kwargs: dict[str, Any] = {"headers": headers}
    if route.method in BODY_METHODS:
        kwargs["json"] = {}
    resp = await client.request(route.method, route.url(), **kwargs)
    return resp.status, await read_answer(resp, route) or {}


def test_every_route_has_an_access_rule(settings: Settings) -> None:
    missing = [r.label for r in all_routes(_app(settings)) if r.meta is None]
    assert not missing, f"routes without @endpoint metadata (every route needs an access rule): {missing}"


def test_public_routes_are_exactly_the_listed_ones(settings: Settings) -> None:
    public = {(r.method, r.path) for r in all_routes(_app(settings)) if r.meta is not None and r.meta.public}
    assert public - PUBLIC_ROUTES == set(), "new public routes: add them to PUBLIC_ROUTES deliberately"
    assert PUBLIC_ROUTES - public == set(), "listed as public but no longer public (or gone): update PUBLIC_ROUTES"


def test_no_route_refuses_every_role(settings: Settings) -> None:
    closed = [r.label for r in protected_routes(_app(settings)) if not r.allowed_roles]
    assert not closed, f"routes nobody may call: {closed}"


async def test_every_protected_route_needs_a_token(client: Any) -> None:
    failures = []
    for route in protected_routes(client.server.app):
        for headers, code in (
            ({}, "authentication_required"),
            ({"Authorization": "Bearer not-a-token"}, "invalid_token"),
            ({"Authorization": "Basic dXNlcjpwYXNz"}, "authentication_required"),
        ):
            status, body = await _call(client, route, headers)
            if status != 401 or body.get("code") != code:
                failures.append(f"{route.label} with {headers or 'no token'}: {status} {body.get('code')}")
    assert not failures, "\n".join(failures)


async def test_a_token_in_the_query_string_is_ignored_except_on_event_streams(client: Any, settings: Settings) -> None:
    """Query strings end up in logs; only EventSource, which cannot send headers, may use one."""
    failures = []
    accounts = Accounts(client.app[CTX], settings)
    for route in protected_routes(client.server.app):
        assert route.meta is not None
        role = route.allowed_roles[0]
        token = (await accounts.bearer(role))["Authorization"].removeprefix("Bearer ")
        resp = await client.request(route.method, route.url() + f"?access_token={token}")
        body = await read_answer(resp, route) or {}
        if route.meta.token_in_query:
            if resp.status in (401, 403):
                failures.append(f"{route.label} refused its query token: {resp.status} {body.get('code')}")
        elif resp.status != 401 or body.get("code") != "authentication_required":
            failures.append(f"{route.label} accepted a query token: {resp.status} {body.get('code')}")
    assert not failures, "\n".join(failures)


async def test_roles_outside_the_rule_are_refused(client: Any, settings: Settings) -> None:
    failures = []
    checked = 0
    accounts = Accounts(client.app[CTX], settings)
    for route in protected_routes(client.server.app):
        for role in route.denied_roles:
            status, body = await _call(client, route, await accounts.bearer(role))
            checked += 1
            if status != 403 or body.get("code") != "role_not_allowed":
                failures.append(f"{route.label} as {role}: {status} {body.get('code')}")
    assert checked, "no route has a role rule"
    assert not failures, "\n".join(failures)


async def test_clients_need_every_scope_the_route_names(client: Any, settings: Settings) -> None:
    failures = []
    checked = 0
    accounts = Accounts(client.app[CTX], settings)
    for route in protected_routes(client.server.app):
        assert route.meta is not None
        if "client" not in route.allowed_roles or not route.meta.scopes:
            continue
        for scope in route.meta.scopes:
            held = tuple(s for s in CLIENT_SCOPES if s != scope)
            status, body = await _call(client, route, await accounts.bearer("client", scopes=held))
            checked += 1
            if status != 403 or body.get("code") != "insufficient_scope":
                failures.append(f"{route.label} without {scope}: {status} {body.get('code')}")
        status, body = await _call(client, route, await accounts.bearer("client", scopes=()))
        if status != 403 or body.get("code") != "insufficient_scope":
            failures.append(f"{route.label} with no scopes: {status} {body.get('code')}")
    assert checked, "no route open to clients names a scope"
    assert not failures, "\n".join(failures)


def test_routes_name_only_known_scopes(settings: Settings) -> None:
    unknown = sorted(
        (r.label, s) for r in all_routes(_app(settings)) if r.meta for s in r.meta.scopes if s not in CLIENT_SCOPES
    )
    assert not unknown, f"routes naming scopes no client can be given: {unknown}"


async def test_allowed_roles_get_past_the_gate(client: Any, settings: Settings) -> None:
    """The converse: a role inside the rule is not turned away by the gate (the handler may still say no)."""
    failures = []
    accounts = Accounts(client.app[CTX], settings)
    for route in protected_routes(client.server.app):
        for role in route.allowed_roles:
            status, body = await _call(client, route, await accounts.bearer(role))
            if status == 401 or body.get("code") in ("role_not_allowed", "insufficient_scope"):
                failures.append(f"{route.label} as {role}: {status} {body.get('code')}")
    assert not failures, "\n".join(failures)


async def _keyed_call(client: Any, route: Route, key: str | None) -> tuple[int, str]:
    params = {"api_key": key} if key is not None else {}
    if route.method == "GET":
        resp = await client.get(route.url(), params=params)
    else:
        resp = await client.request(route.method, route.url(), data={"service_code": "elderly_home_visit", **params})
    body = await resp.json()
    first = body[0]["description"] if isinstance(body, list) and body else repr(body)
    return resp.status, first


async def test_routes_keyed_by_api_key_refuse_missing_wrong_and_unscoped_keys(client: Any) -> None:
    ctx = client.app[CTX]
    unscoped = await create_client(
        ctx=ctx, principal=SYSTEM, name="no open311", scopes=["cases:read"], rate_limit_per_minute=1000
    )
    keyed = [r for r in all_routes(client.server.app) if r.keyed]
    assert keyed, "no route takes an api_key"
    failures = []
    for route in keyed:
        for key, code in (
            (None, "api_key_required"),
            ("hmc_0000:hms_wrong", "invalid_api_key"),
            (f"{unscoped.client.client_id}:{unscoped.client_secret}", "invalid_api_key"),
        ):
            status, description = await _keyed_call(client, route, key)
            if status != 403 or not description.startswith(code):
                failures.append(f"{route.label} with key {key!r}: {status} {description}")
    assert not failures, "\n".join(failures)
