"""Cases end to end through the HTTP API, against the real servers."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.keys import CTX
from service.catalog import service as catalog
from service.catalog.models import ServiceType
from service.catalog.seed import SEED_SERVICES
from service.catalog.service import example_answers, example_id_card
from service.idempotency.keys import record_id
from service.idempotency.repository import COLLECTION as IDEMPOTENCY_COLLECTION
from service.idempotency.repository import PENDING
from tests.factories import Who, account_of, bearer_for, bearer_of, make_staff, make_station, principal_of

XI_COUNTY = "341021"  # 歙县
CAPABILITIES = sorted({s.capability for s in SEED_SERVICES})


@dataclasses.dataclass
class World:
    client: Any
    settings: Any
    ctx: Any
    station_a: Any
    station_b: Any
    station_c: Any

    accounts: dict[tuple[str, str | None], Who] = dataclasses.field(default_factory=dict)

    async def _account(self, key: str, role: str, station: Any = None, **fields: Any) -> dict[str, str]:
        """The Authorization header of this world's account ``key`` (made on first use)."""
        slot = (key, station.id if station is not None else None)
        if slot not in self.accounts:
            station_id = station.id if station is not None else None
            self.accounts[slot] = await account_of(self.ctx, role, station_id=station_id, **fields)
        return bearer_for(self.settings, self.accounts[slot])

    def made(self, key: str, station: Any = None) -> Who:
        """The account behind ``key`` ("resident", "worker", ...) once its header was asked for."""
        return self.accounts[(key, station.id if station is not None else None)]

    async def new(self, role: str, **fields: Any) -> dict[str, str]:
        """The Authorization header of a new account of ``role`` (fields as factories.account_of takes)."""
        return await bearer_of(self.ctx, role, **fields)

    async def resident(self) -> dict[str, str]:
        return await self._account("resident", "resident")

    async def other_resident(self) -> dict[str, str]:
        return await self._account("other_resident", "resident")

    async def worker(self, station: Any = None) -> dict[str, str]:
        """The worker of ``station`` (station A when not given)."""
        return await self._account("worker", "worker", station or self.station_a)

    async def head(self, station: Any = None) -> dict[str, str]:
        return await self._account("head", "station_head", station or self.station_a)

    async def supervisor(self) -> dict[str, str]:
        """The supervisor of 歙县, the county of the world's three stations."""
        return await self._account("supervisor", "supervisor", division_prefix=XI_COUNTY)

    async def service(self, code: str) -> ServiceType:
        return await catalog.get_service(ctx=self.ctx, code=code)

    async def submit(
        self,
        code: str = "elderly_home_visit",
        *,
        headers: dict[str, str] | None = None,
        expect: int = 201,
        **extra: Any,
    ) -> dict[str, Any]:
        service = await self.service(code)
        body: dict[str, Any] = {
            "service_code": code,
            "answers": example_answers(service),
            "division_code": self.station_a.code,
            "address": "徽城镇 新安路 1 号",
            "contact": {"name": "王芳", "phone": "13912345678"},
        }
        if service.booking:
            body["preferred_window"] = {"start": "2026-12-02T09:00:00+08:00", "end": "2026-12-02T11:00:00+08:00"}
        body.update(extra)
        resp = await self.client.post("/api/v1/cases", json=body, headers=headers or await self.resident())
        payload = await resp.json()
        assert resp.status == expect, payload
        return payload

    async def act(
        self, case_id: str, action: str, headers: dict[str, str], expect: int = 200, **body: Any
    ) -> dict[str, Any]:
        resp = await self.client.post(f"/api/v1/cases/{case_id}/{action}", json=body, headers=headers)
        payload = await resp.json()
        assert resp.status == expect, payload
        return payload

    async def count(self, collection: str, query: dict[str, Any] | None = None) -> int:
        return await self.ctx.db[collection].count_documents(query or {})


@pytest.fixture
async def world(client: Any, settings: Any) -> World:
    ctx = client.app[CTX]
    await catalog.seed_catalog(ctx)
    a = await make_station(ctx, code="341021100", name="徽城镇社工站", point=(118.41, 29.86))
    b = await make_station(ctx, code="341021101", name="深渡镇社工站", point=(118.60, 29.80))
    c = await make_station(ctx, code="341021102", name="北岸镇社工站", point=(118.47, 29.87))
    return World(client=client, settings=settings, ctx=ctx, station_a=a, station_b=b, station_c=c)


# ---------------------------------------------------------------- the whole lifecycle, one service per scenario

SCENARIO_SERVICES = {
    "elderly": "elderly_home_care",
    "children": "child_counselling",
    "community": "neighbourhood_mediation",
    "social_aid": "temporary_assistance",
    "social_org": "org_registration_consult",
    "social_work": "social_worker_booking",
    "funeral": "funeral_service_booking",
}


@pytest.mark.parametrize("scenario", sorted(SCENARIO_SERVICES))
async def test_full_lifecycle_for_each_scenario(world: World, scenario: str) -> None:
    code = SCENARIO_SERVICES[scenario]
    case = await world.submit(code)
    assert case["service"]["scenario"] == scenario
    assert case["status"] == "dispatched"
    assert case["station_id"] == world.station_a.id
    assert case["routing"]["method"] == "division"
    assert case["number"].startswith("HM" + XI_COUNTY)
    assert case["sign_due_at"] < case["resolve_due_at"]
    cid = case["id"]
    worker = await world.worker()
    as_worker = await (await world.client.get(f"/api/v1/cases/{cid}", headers=worker)).json()
    assert "accept" in as_worker["allowed_actions"]
    assert (await world.act(cid, "accept", worker))["status"] == "accepted"
    assert (await world.act(cid, "start", worker))["status"] == "in_progress"
    await world.act(cid, "schedule", worker, scheduled_at="2026-12-03T10:00:00+08:00")
    await world.act(cid, "note", worker, text="已电话联系，约定上门 called and arranged a visit")
    resolved = await world.act(cid, "resolve", worker, result="已上门服务 served at home")
    assert resolved["status"] == "resolved"
    assert (
        "rate"
        in (await (await world.client.get(f"/api/v1/cases/{cid}", headers=await world.resident())).json())[
            "allowed_actions"
        ]
    )
    closed = await world.act(cid, "rate", await world.resident(), rating=5, comment="很满意")
    assert closed["status"] == "closed"
    assert [h["action"] for h in closed["history"]] == [
        "submit",
        "accept",
        "start",
        "schedule",
        "note",
        "resolve",
        "rate",
    ]
    events = [e["type"] async for e in world.ctx.db["events"].find({"case_id": cid}).sort("seq", 1)]
    assert events == [
        "case.created",
        "case.accepted",
        "case.started",
        "case.scheduled",
        "case.noted",
        "case.resolved",
        "case.rated",
    ]
    assert closed["version"] == 7


# ---------------------------------------------------------------- illegal transitions and permissions


async def test_illegal_transitions_are_409_with_a_code(world: World) -> None:
    case = await world.submit()
    cid = case["id"]
    for action, headers, body in (
        ("rate", await world.resident(), {"rating": 4}),
        ("resolve", await world.worker(), {"result": "x"}),
        ("start", await world.worker(), {}),
        ("reopen", await world.resident(), {"reason": "x"}),
    ):
        resp = await world.client.post(f"/api/v1/cases/{cid}/{action}", json=body, headers=headers)
        problem = await resp.json()
        assert resp.status == 409, (action, problem)
        assert problem["code"] == "illegal_transition"
    await world.act(cid, "accept", await world.worker())
    problem = await world.act(cid, "accept", await world.worker(), expect=409)
    assert problem["code"] == "illegal_transition"


ROLE_MATRIX = [
    # (who, method, suffix, body, expected status, expected code)
    ("other_resident", "get", "", None, 404, "case_not_found"),
    ("other_resident", "post", "/cancel", {}, 404, "case_not_found"),
    ("worker_b", "get", "", None, 404, "case_not_found"),
    ("worker_b", "post", "/accept", {}, 404, "case_not_found"),
    ("supervisor_hefei", "get", "", None, 404, "case_not_found"),
    ("supervisor_hefei", "post", "/urge", {}, 404, "case_not_found"),
    ("other_client", "get", "", None, 404, "case_not_found"),
    ("resident", "post", "/accept", {}, 403, "action_not_allowed_for_role"),
    ("worker_a", "post", "/reject", {"reason": "x"}, 403, "action_not_allowed_for_role"),
    ("worker_a", "post", "/urge", {}, 403, "action_not_allowed_for_role"),
    ("supervisor_xi", "post", "/accept", {}, 403, "action_not_allowed_for_role"),
]


@pytest.mark.parametrize(("who", "method", "suffix", "body", "status", "code"), ROLE_MATRIX)
async def test_role_boundaries(
    world: World, who: str, method: str, suffix: str, body: Any, status: int, code: str
) -> None:
    case = await world.submit()
    headers = {
        "resident": await world.resident(),
        "other_resident": await world.other_resident(),
        "worker_a": await world.worker(),
        "worker_b": await world.worker(world.station_b),
        "supervisor_xi": await world.supervisor(),
        "supervisor_hefei": await world.new("supervisor", division_prefix="3401"),
        "other_client": await world.new("client", scopes=("cases:read", "cases:write")),
    }[who]
    url = f"/api/v1/cases/{case['id']}{suffix}"
    resp = await (
        world.client.get(url, headers=headers)
        if method == "get"
        else world.client.post(url, json=body, headers=headers)
    )
    problem = await resp.json()
    assert resp.status == status, problem
    assert problem["code"] == code
    assert (await world.client.get(f"/api/v1/cases/{case['id']}", headers=await world.resident())).status == 200


async def test_lists_show_only_what_each_role_covers(world: World) -> None:
    mine = await world.submit()
    await world.submit(headers=await world.other_resident())
    await world.submit(division_code=world.station_b.code, headers=await world.new("resident"))

    async def ids(headers: dict[str, str]) -> set[str]:
        resp = await world.client.get("/api/v1/cases", headers=headers)
        assert resp.status == 200
        return {c["id"] for c in (await resp.json())["items"]}

    assert await ids(await world.resident()) == {mine["id"]}
    assert len(await ids(await world.worker())) == 2
    assert len(await ids(await world.worker(world.station_b))) == 1
    assert len(await ids(await world.supervisor())) == 3
    assert await ids(await world.new("supervisor", division_prefix="3401")) == set()


async def test_list_pages_with_a_cursor_and_filters(world: World) -> None:
    for _ in range(3):
        await world.submit()
    await world.submit("funeral_subsidy")
    seen: list[str] = []
    url = "/api/v1/cases?limit=2&scenario=elderly"
    while url:
        page = await (await world.client.get(url, headers=await world.supervisor())).json()
        seen += [c["id"] for c in page["items"]]
        url = f"/api/v1/cases?limit=2&scenario=elderly&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert len(seen) == len(set(seen)) == 3
    resp = await world.client.get("/api/v1/cases?cursor=garbage", headers=await world.supervisor())
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_cursor"


# ---------------------------------------------------------------- concurrency


async def test_fifty_concurrent_submissions_with_one_key_make_one_case(world: World) -> None:
    service = await world.service("elderly_home_visit")
    body = {
        "service_code": service.code,
        "answers": example_answers(service),
        "division_code": world.station_a.code,
        "address": "徽城镇 新安路 1 号",
        "contact": {"name": "王芳", "phone": "13912345678"},
    }
    headers = {**await world.resident(), "Idempotency-Key": "retry-me-0001"}

    async def one() -> tuple[int, str]:
        resp = await world.client.post("/api/v1/cases", json=body, headers=headers)
        return resp.status, (await resp.json()).get("id", "")

    results = await asyncio.gather(*(one() for _ in range(50)))
    assert {status for status, _ in results} == {201}
    assert len({cid for _, cid in results}) == 1
    assert await world.count("cases") == 1
    assert await world.count("events", {"type": "case.created"}) == 1
    resp = await world.client.post("/api/v1/cases", json={**body, "address": "另一个地址"}, headers=headers)
    assert resp.status == 422 and (await resp.json())["code"] == "idempotency_key_reused"


async def test_a_keyed_filings_fingerprint_is_of_the_body_as_sent_not_of_the_defaults_filled_in(
    world: World,
) -> None:
    # A release that changes a default must not turn a retry into idempotency_key_reused: the key
    # remembers the body as the client sent it, before the schema filled in anything.
    service = await world.service("elderly_home_visit")
    body = {
        "service_code": service.code,
        "answers": example_answers(service),
        "division_code": world.station_a.code,
        "address": "徽城镇 新安路 1 号",
        "contact": {"name": "王芳", "phone": "13912345678"},
    }
    headers = {**await world.resident(), "Idempotency-Key": "as-sent-0001"}
    first = await world.client.post("/api/v1/cases", json=body, headers=headers)
    assert first.status == 201
    stored = await world.ctx.db["idempotency_keys"].find_one({"key": "as-sent-0001"})
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    sent = hashlib.sha256(f"POST\n/api/v1/cases\n{canonical}".encode()).hexdigest()
    assert stored is not None and stored["fingerprint"] == sent
    again = await world.client.post("/api/v1/cases", json=dict(reversed(list(body.items()))), headers=headers)
    assert again.status == 201 and again.headers["Idempotency-Replayed"] == "true"
    # The defaults written out are another body, as sent: the key refuses it.
    spelled_out = await world.client.post("/api/v1/cases", json={**body, "anonymous": False}, headers=headers)
    assert spelled_out.status == 422 and (await spelled_out.json())["code"] == "idempotency_key_reused"


async def test_retry_after_a_crash_between_storing_the_case_and_its_answer_returns_the_same_case(
    world: World,
) -> None:
    # The process died after the case was committed but before the key's answer was recorded:
    # the key is still pending and its lease has run out, so a retry takes it over.
    service = await world.service("elderly_home_visit")
    body = {
        "service_code": service.code,
        "answers": example_answers(service),
        "division_code": world.station_a.code,
        "address": "徽城镇 新安路 1 号",
        "contact": {"name": "王芳", "phone": "13912345678"},
    }
    headers = {**await world.resident(), "Idempotency-Key": "crash-then-retry-1"}
    first = await world.client.post("/api/v1/cases", json=body, headers=headers)
    assert first.status == 201
    db = world.client.app[CTX].db
    changed = await db[IDEMPOTENCY_COLLECTION].update_one(
        {"_id": record_id(principal_of(world.made("resident")).subject, "crash-then-retry-1")},
        {"$set": {"state": PENDING, "owner": "dead-process", "lease_until": datetime.now(UTC) - timedelta(seconds=1)},
         "$unset": {"status": "", "body": ""}},
    )  # fmt: skip
    assert changed.modified_count == 1
    retry = await world.client.post("/api/v1/cases", json=body, headers=headers)
    assert retry.status == 201
    assert (await retry.json())["id"] == (await first.json())["id"]
    assert await world.count("cases") == 1
    assert await world.count("events", {"type": "case.created"}) == 1


async def test_twenty_concurrent_accepts_give_one_winner(world: World) -> None:
    case = await world.submit()

    async def accept(i: int) -> int:
        resp = await world.client.post(
            f"/api/v1/cases/{case['id']}/accept",
            json={},
            headers=await world.new("worker", station_id=world.station_a.id),
        )
        return resp.status

    statuses = await asyncio.gather(*(accept(i) for i in range(20)))
    assert sorted(statuses) == [200] + [409] * 19
    assert await world.count("events", {"case_id": case["id"], "type": "case.accepted"}) == 1


# ---------------------------------------------------------------- returns and re-routing


async def test_return_reroutes_and_two_returns_go_to_the_supervisor(world: World) -> None:
    case = await world.submit()
    first = await world.act(case["id"], "return", await world.worker(), reason="不属于本站辖区 not our township")
    assert first["status"] == "dispatched"
    assert first["station_id"] not in (world.station_a.id, None)
    assert world.station_a.id in first["routing"]["excluded"]
    second_station = next(s for s in (world.station_b, world.station_c) if s.id == first["station_id"])
    second = await world.act(case["id"], "return", await world.worker(second_station), reason="也不是 no")
    assert second["status"] == "unrouted"
    assert second["station_id"] is None
    assert second["division"] == XI_COUNTY
    assert second["routing"]["method"] == "unrouted"
    dispatched = await world.act(case["id"], "dispatch", await world.supervisor(), station_id=world.station_c.id)
    assert dispatched["status"] == "dispatched" and dispatched["station_id"] == world.station_c.id
    types = [e["type"] async for e in world.ctx.db["events"].find({"case_id": case["id"]}).sort("seq", 1)]
    assert types.count("case.returned") == 2 and "case.unrouted" in types and types[-1] == "case.dispatched"


# ---------------------------------------------------------------- time limits: sweeps


async def test_sweep_flags_an_overdue_case_once_even_with_two_sweepers(world: World) -> None:
    from service.cases import sweeps as case_sweeps

    case = await world.submit()
    world.ctx.clock = lambda: _later(case["sign_due_at"])
    first, second = await asyncio.gather(case_sweeps.sweep_once(ctx=world.ctx), case_sweeps.sweep_once(ctx=world.ctx))
    assert first["sign_overdue"] + second["sign_overdue"] == 1
    assert (await case_sweeps.sweep_once(ctx=world.ctx))["sign_overdue"] == 0
    assert await world.count("events", {"case_id": case["id"], "type": "case.overdue"}) == 1
    listed = await (await world.client.get("/api/v1/cases?overdue=true", headers=await world.supervisor())).json()
    assert [c["id"] for c in listed["items"]] == [case["id"]]


def _later(iso: str, **delta: float) -> datetime:
    """A minute (plus ``delta``) after an RFC 3339 time from the API."""
    return datetime.fromisoformat(iso) + timedelta(minutes=1, **delta)


async def test_sweep_auto_closes_cases_resolved_seven_days_ago(world: World) -> None:
    from service.cases import sweeps as case_sweeps

    case = await world.submit()
    await world.act(case["id"], "accept", await world.worker())
    resolved = await world.act(case["id"], "resolve", await world.worker(), result="done")
    resolved_at = resolved["resolved_at"]
    world.ctx.clock = lambda: _later(resolved_at, days=6)
    assert (await case_sweeps.sweep_once(ctx=world.ctx))["auto_closed"] == 0
    world.ctx.clock = lambda: _later(resolved_at, days=7)
    assert (await case_sweeps.sweep_once(ctx=world.ctx))["auto_closed"] == 1
    got = await (await world.client.get(f"/api/v1/cases/{case['id']}", headers=await world.resident())).json()
    assert got["status"] == "closed"
    assert got["history"][-1]["action"] == "auto_close"


# ---------------------------------------------------------------- privacy


async def test_phones_are_masked_except_for_the_resident_and_the_assignee(world: World) -> None:
    case = await world.submit(
        served_person={
            "name": "王大爷",
            "relation": "父亲 father",
            "phone": "13700001111",
            "id_card": example_id_card(),
        }
    )
    cid = case["id"]
    assert case["contact"]["phone"] == "13912345678"
    assert case["served_person"]["id_card_masked"].startswith("3410") and "*" in case["served_person"]["id_card_masked"]
    assert "id_card" not in case["served_person"] and "id_card_enc" not in case["served_person"]
    as_head = await (await world.client.get(f"/api/v1/cases/{cid}", headers=await world.head())).json()
    assert as_head["contact"]["phone"] == "139****5678"
    assert as_head["served_person"]["phone"] == "137****1111"
    await world.act(cid, "accept", await world.worker())
    as_assignee = await (await world.client.get(f"/api/v1/cases/{cid}", headers=await world.worker())).json()
    assert as_assignee["contact"]["phone"] == "13912345678"
    audit = await world.ctx.db["audit_log"].find_one({"target.id": cid})
    worker = principal_of(world.made("worker", world.station_a))
    assert audit["actor"]["subject"] == worker.subject and "contact.phone" in audit["fields"]
    stored = await world.ctx.db["cases"].find_one({"_id": cid})
    assert example_id_card() not in str(stored)


async def test_confidential_report_hides_the_reporter_from_station_staff(world: World) -> None:
    case = await world.submit("child_protection_report", anonymous=False)
    as_worker = await (await world.client.get(f"/api/v1/cases/{case['id']}", headers=await world.worker())).json()
    assert as_worker["contact"] is None
    assert as_worker["created_by"] == {"role": "resident"}
    as_owner = await (await world.client.get(f"/api/v1/cases/{case['id']}", headers=await world.resident())).json()
    assert as_owner["contact"]["name"] == "王芳"


# ---------------------------------------------------------------- bad input writes nothing


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"service_code": "no_such_service"}, "unknown_service"),
        ({"division_code": None}, "location_required"),
        ({"answers": {"unknown_field": "x"}}, "invalid_answers"),
        ({"division_code": "12345"}, "validation_failed"),
        ({"location": {"lon": 500, "lat": 30}, "division_code": None}, "invalid_coordinates"),
        ({"photos": ["000000000000000000000000"]}, "unknown_photo"),
        ({"anonymous": True}, "anonymity_not_allowed"),
    ],
)
async def test_bad_submissions_get_a_problem_and_write_nothing(world: World, change: dict[str, Any], code: str) -> None:
    service = await world.service("elderly_home_visit")
    body = {
        "service_code": service.code,
        "answers": example_answers(service),
        "division_code": world.station_a.code,
        "address": "徽城镇 新安路 1 号",
        "contact": {"name": "王芳", "phone": "13912345678"},
        **change,
    }
    resp = await world.client.post("/api/v1/cases", json=body, headers=await world.resident())
    problem = await resp.json()
    assert resp.status == 422, problem
    assert problem["code"] == code
    assert await world.count("cases") == 0
    assert await world.count("events") == 0


async def test_rating_out_of_range_and_missing_case(world: World) -> None:
    case = await world.submit()
    await world.act(case["id"], "accept", await world.worker())
    await world.act(case["id"], "resolve", await world.worker(), result="ok")
    problem = await world.act(case["id"], "rate", await world.resident(), expect=422, rating=6)
    assert problem["code"] == "validation_failed"
    problem = await world.act("0" * 24, "accept", await world.worker(), expect=404)
    assert problem["code"] == "case_not_found"
    stored = await world.ctx.db["cases"].find_one({"_id": case["id"]})
    assert stored["status"] == "resolved" and stored["version"] == 3


# ---------------------------------------------------------------- KPIs


async def test_kpis_count_and_rate_by_station(world: World) -> None:
    done = await world.submit()
    await world.act(done["id"], "accept", await world.worker())
    await world.act(done["id"], "resolve", await world.worker(), result="ok")
    await world.act(done["id"], "rate", await world.resident(), rating=5)
    meh = await world.submit()
    await world.act(meh["id"], "accept", await world.worker())
    await world.act(meh["id"], "resolve", await world.worker(), result="ok")
    await world.act(meh["id"], "rate", await world.resident(), rating=2)
    await world.submit(division_code=world.station_b.code)
    resp = await world.client.get(
        f"/api/v1/stats/kpis?division={XI_COUNTY}&group_by=station", headers=await world.supervisor()
    )
    body = await resp.json()
    assert resp.status == 200, body
    groups = {g["key"]: g for g in body["groups"]}
    a = groups[world.station_a.id]
    assert a["total"] == 2
    assert a["by_status"] == {"closed": 2}
    assert a["satisfaction_rate"] == 0.5
    assert a["response_rate"] == 1.0
    assert a["on_time_resolution_rate"] == 1.0
    assert groups[world.station_b.id]["by_status"] == {"dispatched": 1}
    resp = await world.client.get("/api/v1/stats/kpis?division=3401", headers=await world.supervisor())
    assert resp.status == 403
    assert (await world.client.get("/api/v1/stats/kpis", headers=await world.resident())).status == 403


async def test_station_head_assigns_only_to_staff_of_the_station(world: World) -> None:
    li = await make_staff(world.ctx, role="worker", name="李社工", station_id=world.station_a.id)
    zhao = await make_staff(world.ctx, role="worker", station_id=world.station_b.id)
    case = await world.submit()
    await world.act(case["id"], "accept", await world.head())
    problem = await world.act(case["id"], "assign", await world.head(), expect=422, assignee_id=zhao.id)
    assert problem["code"] == "assignee_not_at_station"
    assigned = await world.act(case["id"], "assign", await world.head(), assignee_id=li.id)
    assert assigned["assignee_id"] == li.id
    other = await world.new("worker", station_id=world.station_a.id)
    problem = await world.act(case["id"], "start", other, expect=403)
    assert problem["code"] == "not_your_case"
    li_headers = bearer_for(world.settings, li)
    assert (await world.act(case["id"], "start", li_headers))["status"] == "in_progress"
    mine = await (await world.client.get(f"/api/v1/cases?assignee={li.id}", headers=li_headers)).json()
    assert [c["id"] for c in mine["items"]] == [case["id"]]


async def test_extension_request_and_approval_moves_the_resolve_due_time(world: World) -> None:
    case = await world.submit()
    await world.act(case["id"], "accept", await world.head())
    requested = await world.act(
        case["id"], "request_extension", await world.head(), extra_days=3, reason="需要上门核实"
    )
    assert requested["extension"]["status"] == "requested"
    problem = await world.act(case["id"], "approve_extension", await world.worker(), expect=403)
    assert problem["code"] == "action_not_allowed_for_role"
    approved = await world.act(case["id"], "approve_extension", await world.supervisor())
    assert approved["resolve_due_at"] > case["resolve_due_at"]
    problem = await world.act(case["id"], "deny_extension", await world.supervisor(), expect=409, reason="x")
    assert problem["code"] == "no_extension_requested"


async def test_case_photos_are_visible_to_the_station_of_the_case_only(world: World) -> None:
    import aiohttp

    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

    async def upload() -> str:
        form = aiohttp.FormData()
        form.add_field("file", png, filename="p.png", content_type="image/png")
        resp = await world.client.post("/api/v1/uploads", data=form, headers=await world.resident())
        assert resp.status == 201
        return str((await resp.json())["id"])

    attached, loose = await upload(), await upload()
    case = await world.submit(photos=[attached])
    assert case["photos"] == [attached]
    assert (await world.client.get(f"/api/v1/uploads/{attached}", headers=await world.worker())).status == 200
    for headers, upload_id in ((await world.worker(world.station_b), attached), (await world.worker(), loose)):
        resp = await world.client.get(f"/api/v1/uploads/{upload_id}", headers=headers)
        assert resp.status == 404
        assert (await resp.json())["code"] == "upload_not_found"


async def test_staff_entry_on_behalf_of_a_resident_appears_in_their_app(world: World) -> None:
    from service.identity.repository.residents import ResidentsRepository

    resident = await ResidentsRepository(world.ctx.db).upsert_phone(phone="13912345678", now=world.ctx.now())
    case = await world.submit(headers=await world.worker())
    assert case["created_by"]["role"] == "worker"
    theirs = await (await world.client.get("/api/v1/cases", headers=bearer_for(world.settings, resident))).json()
    assert [c["id"] for c in theirs["items"]] == [case["id"]]
    unknown = await world.submit(headers=await world.worker(), contact={"name": "赵", "phone": "13700009999"})
    stored = await world.ctx.db["cases"].find_one({"_id": unknown["id"]})
    assert stored["owner"] is None
