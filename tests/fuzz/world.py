"""A small populated deployment for fuzzing: catalogue, stations, staff of each role, a client, cases.

Reads made while fuzzing then hit real records (a real case id, a real station, a real
upload) rather than only answering 404.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import requests

from service import bootstrap
from service.catalog import service as catalog
from service.catalog.service import example_answers
from service.common.models import CLIENT_SCOPES, SYSTEM
from service.identity.clients import create_client
from service.identity.repository.residents import ResidentsRepository
from service.identity.staff import create_staff
from service.stations.repository import StationsRepository
from tests.helpers import token_for
from tests.live import LiveServer

DIVISION = "340102001"  # a township of 合肥市瑶海区 in the seeded station list
SUPERVISOR_PREFIX = "3401"
SERVICE_CODE = "elderly_home_visit"
PASSWORD = "fuzz-password-0123"
# The smallest PNG there is: 1x1, one grey pixel.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a4944415478da63f80f00010101001b36ee4a0000000049454e44ae426082"
)


@dataclasses.dataclass
class World:
    server: LiveServer
    claims: dict[str, dict[str, Any]]  # role -> the principal fields of its account
    ids: dict[str, str]  # path parameter name -> an id that exists

    def url(self, path: str) -> str:
        return self.server.base_url + path

    def auth(self, role: str) -> dict[str, str]:
        """A fresh Authorization header for ``role`` (a new token id each time: logout revokes one)."""
        if role not in self.claims:
            return {}
        assert self.server.settings is not None
        return token_for(self.server.settings, role, **self.claims[role])


async def _accounts(server: LiveServer) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Create one account per role; returns the token claims per role and their ids."""
    ctx = server.ctx
    await bootstrap.seed(ctx=ctx)
    claims: dict[str, dict[str, Any]] = {}
    ids: dict[str, str] = {}
    station_id = (await StationsRepository(ctx.db).codes([DIVISION]))[DIVISION]
    ids.update({"id": station_id, "station_id": station_id})
    resident = await ResidentsRepository(ctx.db).upsert_phone(phone="13800000001", now=ctx.now())
    claims["resident"] = {"subject": resident.id}
    for role, extra in (
        ("worker", {"station_id": station_id}),
        ("station_head", {"station_id": station_id}),
        ("supervisor", {"division_prefix": SUPERVISOR_PREFIX}),
        ("admin", {}),
    ):
        member = await create_staff(
            ctx=ctx, principal=SYSTEM, username=f"fuzz-{role}", password=PASSWORD, role=role, **extra
        )
        claims[role] = {"subject": member.id, **extra}
        ids.setdefault("staff_id", member.id)
    issued = await create_client(
        ctx=ctx, principal=SYSTEM, name="fuzz client", scopes=list(CLIENT_SCOPES), rate_limit_per_minute=100000
    )
    claims["client"] = {"subject": issued.client.client_id, "scopes": CLIENT_SCOPES}
    ids["client_id"] = issued.client.client_id
    ids["api_key"] = f"{issued.client.client_id}:{issued.client_secret}"  # Open311's key
    return claims, ids


def build_world(server: LiveServer) -> World:
    """Seed the server's database and file a case or two through the API."""
    claims, ids = server.run(_accounts(server))
    world = World(server=server, claims=claims, ids=ids)
    service = server.run(catalog.get_service(ctx=server.ctx, code=SERVICE_CODE))
    with requests.Session() as http:
        upload = http.post(
            server.base_url + "/api/v1/uploads",
            files={"file": ("p.png", PNG, "image/png")},
            headers=world.auth("resident"),
            timeout=10,
        )
        assert upload.status_code == 201, upload.text
        ids["upload_id"] = upload.json()["id"]
        for role in ("resident", "client"):
            body = {
                "service_code": SERVICE_CODE,
                "answers": example_answers(service),
                "division_code": DIVISION,
                "address": "瑶海区 1 号",
                "contact": {"name": "王芳", "phone": "13912345678"},
            }
            resp = http.post(server.base_url + "/api/v1/cases", json=body, headers=world.auth(role), timeout=10)
            assert resp.status_code == 201, resp.text
            ids.setdefault("case_id", resp.json()["id"])
    ids["code"] = SERVICE_CODE
    return world
