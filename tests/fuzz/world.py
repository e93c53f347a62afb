"""A small populated deployment for fuzzing: catalogue, stations, staff of each role, a client, cases.

Reads made while fuzzing then hit real records (a real case id, a real station, a real
upload) rather than only answering 404.
"""

from __future__ import annotations

import dataclasses

import requests

from service import bootstrap
from service.catalog import service as catalog
from service.catalog.service import example_answers
from service.common.models import CLIENT_SCOPES
from service.stations.service import station_ids_by_code
from tests.factories import Who, bearer_for, make_client, make_phone_resident, make_staff
from tests.servers import LiveServer

DIVISION = "340102001"  # a township of 合肥市瑶海区 in the seeded station list
SUPERVISOR_PREFIX = "3401"
SERVICE_CODE = "elderly_home_visit"
# The smallest PNG there is: 1x1, one grey pixel.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a4944415478da63f80f00010101001b36ee4a0000000049454e44ae426082"
)


@dataclasses.dataclass
class World:
    server: LiveServer
    accounts: dict[str, Who]  # role -> its account
    ids: dict[str, str]  # path parameter name -> an id that exists

    def url(self, path: str) -> str:
        return self.server.base_url + path

    def auth(self, role: str) -> dict[str, str]:
        """A fresh Authorization header for ``role`` (a new token id each time: logout revokes one)."""
        if role not in self.accounts:
            return {}
        assert self.server.settings is not None
        return bearer_for(self.server.settings, self.accounts[role])


async def _accounts(server: LiveServer) -> tuple[dict[str, Who], dict[str, str]]:
    """Create one account per role; returns the accounts per role and their ids."""
    ctx = server.ctx
    await bootstrap.seed(ctx=ctx)
    ids: dict[str, str] = {}
    station_id = (await station_ids_by_code(ctx=ctx, codes=[DIVISION]))[DIVISION]
    ids.update({"id": station_id, "station_id": station_id})
    accounts: dict[str, Who] = {"resident": await make_phone_resident(ctx, phone="13800000001")}
    for role in ("worker", "station_head", "supervisor", "admin"):
        member = await make_staff(ctx, role=role, station_id=station_id, division_prefix=SUPERVISOR_PREFIX)
        accounts[role] = member
        ids.setdefault("staff_id", member.id)
    issued = await make_client(ctx, scopes=tuple(CLIENT_SCOPES), name="fuzz client", rate_limit_per_minute=100000)
    accounts["client"] = issued
    ids["client_id"] = issued.client.client_id
    ids["api_key"] = f"{issued.client.client_id}:{issued.client_secret}"  # Open311's key
    return accounts, ids


def build_world(server: LiveServer) -> World:
    """Seed the server's database and file a case or two through the API."""
    accounts, ids = server.run(_accounts(server))
    world = World(server=server, accounts=accounts, ids=ids)
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
