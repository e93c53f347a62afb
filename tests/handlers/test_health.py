"""Operations endpoints and the problem model on the real app."""

from __future__ import annotations

from typing import Any


async def test_healthz_answers_ok_with_request_id(client: Any) -> None:
    resp = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}
    assert resp.headers["X-Request-ID"] == "abc-123"
    assert resp.headers["Server"] == "huimin"


async def test_readyz_reports_both_stores(client: Any) -> None:
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert (await resp.json())["checks"] == {"mongodb": "ok", "redis": "ok"}


async def test_unknown_route_is_a_problem_document(client: Any) -> None:
    resp = await client.get("/api/v1/no-such-thing")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["code"] == "not_found"
    assert body["status"] == 404
    assert body["instance"] == "/api/v1/no-such-thing"
    assert resp.headers.get("X-Request-ID")


async def test_wrong_method_is_405_with_allow(client: Any) -> None:
    resp = await client.delete("/healthz")
    assert resp.status == 405
    assert (await resp.json())["code"] == "method_not_allowed"
    assert "GET" in resp.headers["Allow"]


async def test_metrics_count_requests_by_route(client: Any) -> None:
    await client.get("/healthz")
    text = await (await client.get("/metrics")).text()
    assert 'huimin_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
