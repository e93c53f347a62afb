"""Case actions as a client of the API meets them: what a case offers, how to call it, how times read.

- ``allowed_actions`` lists exactly the actions that succeed now for the caller, in the same
  words as the action URLs, ``history[].action`` and the request fields;
- an action that needs no fields needs no body;
- every time in every answer is RFC 3339 with ``T``, ``+00:00`` and milliseconds.

Staff log in through the API (accounts made by the staff service, as the CLI does); the
resident is a real resident record with tokens issued by the auth service.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.keys import CTX
from schemas.cases import ACTIONS
from service.common.models import Principal
from service.identity import auth
from service.identity.repository.residents import ResidentsRepository
from tests.factories import bearer, login, make_staff
from tests.handlers.test_cases import XI_COUNTY, World, world  # noqa: F401 - the shared case-world fixture

RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00$")
LOOKS_LIKE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


@dataclasses.dataclass
class People:
    resident: dict[str, str]
    worker: dict[str, str]
    worker_id: str
    head: dict[str, str]
    supervisor: dict[str, str]
    admin: dict[str, str]

    def by_role(self) -> dict[str, dict[str, str]]:
        return {
            "resident": self.resident,
            "worker": self.worker,
            "station_head": self.head,
            "supervisor": self.supervisor,
            "admin": self.admin,
        }


@pytest.fixture
async def people(world: World) -> People:  # noqa: F811
    async def staff(username: str, role: str, **kw: Any) -> tuple[str, dict[str, str]]:
        member = await make_staff(world.client.app[CTX], username=username, role=role, **kw)
        return str(member.id), bearer((await login(world.client, username))["access_token"])

    worker_id, worker = await staff("worker-li", "worker", station_id=world.station_a.id)
    _, head = await staff("head-wang", "station_head", station_id=world.station_a.id)
    _, supervisor = await staff("sup-xi", "supervisor", division_prefix=XI_COUNTY)
    _, admin = await staff("root", "admin")
    resident = await ResidentsRepository(world.ctx.db).upsert_phone(phone="13912345678", now=datetime.now(UTC))
    pair = await auth.issue_token_pair(ctx=world.ctx, principal=Principal(subject=resident.id, role="resident"))
    return People(bearer(pair.access_token), worker, worker_id, head, supervisor, admin)


def _bodies(w: World, people: People) -> dict[str, dict[str, Any]]:
    """A valid body for every action (fields the action needs, nothing else)."""
    soon = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    return {
        "accept": {},
        "return": {"reason": "不属于本站 not ours"},
        "assign": {"assignee_id": people.worker_id},
        "start": {},
        "schedule": {"scheduled_at": soon},
        "note": {"text": "已电话联系 called"},
        "request_extension": {"extra_days": 3, "reason": "需要上门核实"},
        "approve_extension": {},
        "deny_extension": {"reason": "时限内可办结"},
        "resolve": {"result": "已上门服务 served at home"},
        "reopen": {"reason": "问题未解决"},
        "rate": {"rating": 5},
        "cancel": {},
        "reject": {"reason": "不符合条件"},
        "urge": {},
        "dispatch": {"station_id": w.station_b.id},
    }


Setup = Callable[[World, People], Awaitable[str]]


async def _dispatched(w: World, p: People) -> str:
    return str((await w.submit(headers=p.resident))["id"])


async def _accepted(w: World, p: People) -> str:
    cid = await _dispatched(w, p)
    await w.act(cid, "accept", p.worker)
    return cid


async def _extension_pending(w: World, p: People) -> str:
    cid = await _accepted(w, p)
    await w.act(cid, "start", p.worker)
    await w.act(cid, "request_extension", p.head, extra_days=3, reason="需要上门核实")
    return cid


async def _resolved(w: World, p: People) -> str:
    cid = await _accepted(w, p)
    await w.act(cid, "resolve", p.worker, result="已上门服务 served at home")
    return cid


SETUPS: dict[str, Setup] = {
    "dispatched": _dispatched,
    "accepted": _accepted,
    "extension_pending": _extension_pending,
    "resolved": _resolved,
}


async def _read(w: World, cid: str, headers: dict[str, str]) -> dict[str, Any]:
    resp = await w.client.get(f"/api/v1/cases/{cid}", headers=headers)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


# ---------------------------------------------------------------- allowed_actions: exactly what succeeds


@pytest.mark.parametrize("situation", sorted(SETUPS))
async def test_allowed_actions_are_exactly_the_actions_that_succeed(
    world: World,  # noqa: F811
    people: People,
    situation: str,
) -> None:
    setup = SETUPS[situation]
    bodies = _bodies(world, people)
    cid = await setup(world, people)
    offered: dict[str, list[str]] = {}
    for role, headers in people.by_role().items():
        before = await _read(world, cid, headers)
        offered[role] = before["allowed_actions"]
        assert set(offered[role]) <= set(ACTIONS), offered[role]
        for action in sorted(set(ACTIONS) - set(offered[role])):
            resp = await world.client.post(f"/api/v1/cases/{cid}/{action}", json=bodies[action], headers=headers)
            assert resp.status in (403, 409), (role, action, resp.status, await resp.text())
        after = await _read(world, cid, headers)
        assert after["version"] == before["version"], (role, "a refused action changed the case")
    for role, actions in offered.items():
        for action in actions:
            fresh = await setup(world, people)
            resp = await world.client.post(
                f"/api/v1/cases/{fresh}/{action}", json=bodies[action], headers=people.by_role()[role]
            )
            assert resp.status == 200, (role, action, await resp.text())
            assert (await resp.json())["history"][-1]["action"] == action


async def test_extension_decisions_are_offered_only_while_a_request_is_pending(
    world: World,  # noqa: F811
    people: People,
) -> None:
    cid = await _accepted(world, people)
    assert not {"approve_extension", "deny_extension"} & set(
        (await _read(world, cid, people.supervisor))["allowed_actions"]
    )
    assert "request_extension" in (await _read(world, cid, people.head))["allowed_actions"]
    problem = await world.act(cid, "approve_extension", people.supervisor, expect=409)
    assert problem["code"] == "no_extension_requested"

    await world.act(cid, "request_extension", people.head, extra_days=3, reason="需要上门核实")
    assert {"approve_extension", "deny_extension"} <= set(
        (await _read(world, cid, people.supervisor))["allowed_actions"]
    )
    assert "request_extension" not in (await _read(world, cid, people.head))["allowed_actions"]
    problem = await world.act(cid, "request_extension", people.head, expect=409, extra_days=1, reason="再延")
    assert problem["code"] == "extension_pending"

    await world.act(cid, "deny_extension", people.supervisor, reason="时限内可办结")
    assert not {"approve_extension", "deny_extension"} & set(
        (await _read(world, cid, people.supervisor))["allowed_actions"]
    )


# ---------------------------------------------------------------- one vocabulary


async def test_extension_action_names_and_fields_are_one_vocabulary(world: World, people: People) -> None:  # noqa: F811
    cid = await _accepted(world, people)
    case = await world.act(cid, "request_extension", people.head, extra_days=3, reason="需要上门核实")
    assert case["extension"]["extra_days"] == 3 and "days" not in case["extension"]
    entry = case["history"][-1]
    assert entry["action"] == "request_extension"
    assert entry["data"] == {"extra_days": 3, "reason": "需要上门核实"}
    approved = await world.act(cid, "approve_extension", people.supervisor)
    assert approved["history"][-1]["action"] == "approve_extension"
    assert approved["extension"]["status"] == "approved"
    # Every name a case offers is the URL of its action.
    paths = (await (await world.client.get("/api/v1/openapi.json")).json())["paths"]
    for action in ACTIONS:
        assert f"/api/v1/cases/{{case_id}}/{action}" in paths


async def test_the_earlier_extension_urls_still_work(world: World, people: People) -> None:  # noqa: F811
    cid = await _accepted(world, people)
    requested = await world.act(cid, "extension-request", people.head, extra_days=2, reason="需要上门核实")
    assert requested["history"][-1]["action"] == "request_extension"
    denied = await world.act(cid, "extension-deny", people.supervisor, reason="时限内可办结")
    assert denied["extension"]["status"] == "denied"
    paths = (await (await world.client.get("/api/v1/openapi.json")).json())["paths"]
    assert not [p for p in paths if p.endswith(("extension-request", "extension-approve", "extension-deny"))]


# ---------------------------------------------------------------- actions without fields need no body


@pytest.mark.parametrize("how", ["no body", "empty body", "empty object"])
async def test_actions_without_fields_accept_no_body(world: World, people: People, how: str) -> None:  # noqa: F811
    cid = await _dispatched(world, people)

    async def post(action: str, headers: dict[str, str]) -> dict[str, Any]:
        url = f"/api/v1/cases/{cid}/{action}"
        if how == "no body":
            resp = await world.client.post(url, headers=headers)
        elif how == "empty body":
            resp = await world.client.post(url, data=b"", headers={**headers, "Content-Type": "application/json"})
        else:
            resp = await world.client.post(url, json={}, headers=headers)
        assert resp.status == 200, (action, how, await resp.text())
        return dict(await resp.json())

    assert (await post("accept", people.worker))["status"] == "accepted"
    assert (await post("urge", people.supervisor))["urge_count"] == 1
    assert (await post("start", people.worker))["status"] == "in_progress"


async def test_an_action_with_required_fields_and_no_body_names_the_missing_fields(
    world: World,  # noqa: F811
    people: People,
) -> None:
    cid = await _accepted(world, people)
    resp = await world.client.post(f"/api/v1/cases/{cid}/resolve", headers=people.worker)
    assert resp.status == 422
    problem = await resp.json()
    assert problem["code"] == "validation_failed" and set(problem["errors"]) == {"result"}
    resp = await world.client.post(
        f"/api/v1/cases/{cid}/resolve", data=b"result", headers={**people.worker, "Content-Type": "text/plain"}
    )
    assert resp.status == 415 and (await resp.json())["code"] == "unsupported_media_type"


async def test_openapi_marks_action_bodies_required_only_when_they_have_required_fields(
    world: World,  # noqa: F811
) -> None:
    paths = (await (await world.client.get("/api/v1/openapi.json")).json())["paths"]
    for action in ("accept", "start", "urge", "approve_extension", "cancel"):
        assert paths[f"/api/v1/cases/{{case_id}}/{action}"]["post"]["requestBody"]["required"] is False, action
    for action in ("resolve", "request_extension", "note", "assign"):
        assert paths[f"/api/v1/cases/{{case_id}}/{action}"]["post"]["requestBody"]["required"] is True, action


# ---------------------------------------------------------------- one date-time format


def _times(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every string in an answer that reads as a time, with where it is."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _times(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [t for i, v in enumerate(value) for t in _times(v, f"{path}[{i}]")]
    if isinstance(value, str) and LOOKS_LIKE_TIME.match(value):
        return [(path, value)]
    return []


async def test_every_time_in_a_case_is_rfc3339_with_milliseconds_and_the_same_on_every_read(
    world: World,  # noqa: F811
    people: People,
) -> None:
    created = await world.submit(headers=people.resident)
    cid = created["id"]
    read = await _read(world, cid, people.resident)
    for key in ("created_at", "updated_at", "sign_due_at", "resolve_due_at"):
        assert created[key] == read[key], key
    await world.act(cid, "accept", people.worker)
    await world.act(cid, "schedule", people.worker, scheduled_at="2026-12-03T10:00:00+08:00")
    await world.act(cid, "request_extension", people.head, extra_days=3, reason="需要上门核实")
    answer = await world.act(cid, "approve_extension", people.supervisor)
    again = await _read(world, cid, people.supervisor)
    times = _times(answer)
    where = {path for path, _ in times}
    assert {
        ".extension.requested_at",
        ".extension.decided_at",
        ".resolve_due_at",
        ".scheduled_at",
    } <= where, where
    assert any(p.endswith(".data.scheduled_at") for p in where) and any(
        p.endswith(".data.resolve_due_at") for p in where
    )
    bad = [(path, value) for path, value in times if not RFC3339_MS.match(value)]
    assert not bad, bad
    assert dict(_times(again)) == dict(times)
    assert answer["scheduled_at"] == "2026-12-03T02:00:00.000+00:00"
    # A booking: its datetime answer and its preferred window read the same way.
    booking = await world.submit("elderly_home_care", headers=people.resident)
    assert RFC3339_MS.match(booking["answers"]["preferred_time"]), booking["answers"]
    assert set(booking["preferred_window"]) == {"start", "end"}
    bad = [(path, value) for path, value in _times(booking) if not RFC3339_MS.match(value)]
    assert not bad, bad
    assert _times(await _read(world, booking["id"], people.resident)) == _times(booking)
    page = await (await world.client.get("/api/v1/cases", headers=people.supervisor)).json()
    bad = [(path, value) for path, value in _times(page) if not RFC3339_MS.match(value)]
    assert not bad, bad
