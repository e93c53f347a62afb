"""What /docs shows works as shipped: error examples carry their own status, the filing example files."""

from __future__ import annotations

from typing import Any

from handlers.keys import CTX
from service import bootstrap
from tests.factories import bearer_of


async def test_each_problem_response_shows_an_example_of_its_own_status(client: Any) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    responses = doc["components"]["responses"]
    assert len(responses) >= 8
    for name, response in responses.items():
        example = response["content"]["application/problem+json"]["example"]
        assert name == f"Problem{example['status']}", name
        assert example["type"] == f"/problems/{example['code']}"
    codes = {r["content"]["application/problem+json"]["example"]["code"] for r in responses.values()}
    assert len(codes) == len(responses), "each status shows a code of its own"


async def test_the_documented_filing_example_files_a_case_on_a_seeded_deployment(client: Any, settings: Any) -> None:
    await bootstrap.seed(ctx=client.server.app[CTX])
    doc = await (await client.get("/api/v1/openapi.json")).json()
    example = doc["paths"]["/api/v1/cases"]["post"]["requestBody"]["content"]["application/json"]["example"]
    resp = await client.post("/api/v1/cases", json=example, headers=await bearer_of(client.app[CTX], "resident"))
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["status"] == "dispatched"


async def test_a_405_lists_only_the_methods_of_a_fixed_address(client: Any, settings: Any) -> None:
    admin = await bearer_of(client.app[CTX], "admin")
    for path in ("/api/v1/elders/import", "/api/v1/stations/import"):
        resp = await client.get(path, headers=admin)
        assert resp.status == 405, path
        assert (await resp.json())["code"] == "method_not_allowed"
        assert resp.headers["Allow"] == "POST"


async def test_an_undeclared_method_on_open311_is_405_with_allow(client: Any) -> None:
    resp = await client.delete("/open311/v2/services.json")
    assert resp.status == 405
    assert resp.headers["Allow"] == "GET, HEAD"
    errors = await resp.json()
    assert errors[0]["code"] == 405 and errors[0]["description"].startswith("method_not_allowed")


async def test_an_empty_query_parameter_is_refused_as_documented(client: Any, settings: Any) -> None:
    resp = await client.get("/api/v1/stations?service=", headers=await bearer_of(client.app[CTX], "admin"))
    assert resp.status == 422
    body = await resp.json()
    assert body["code"] == "validation_failed" and "service" in body["errors"]
    doc = await (await client.get("/api/v1/openapi.json")).json()
    params = {p["name"]: p for p in doc["paths"]["/api/v1/stations"]["get"]["parameters"]}
    assert params["service"]["schema"]["minLength"] == 1
