"""Odd and hostile input gets a 4xx in the route's error format, never a 5xx, and nothing is half-stored.

Each test drives the real app over the real servers: JSON with lone surrogates and control
characters on every JSON route, Open311 forms that are not UTF-8, an empty multipart body,
CSV and GeoJSON imports the parsers choke on, stored text that XML cannot carry, over-long
addresses and headers (which must never be repeated back: they carry the Open311 api_key),
and live-feed resume ids beyond 64 bits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from marshmallow import fields

from config import Settings
from handlers.keys import CTX
from service.cases import submit as case_submit
from service.cases.inputs import CaseSubmission
from service.catalog import service as catalog
from service.catalog.service import example_answers
from service.common.models import CLIENT_SCOPES, SYSTEM, Principal
from service.identity.clients import create_client
from tests.factories import bearer, bearer_for, make_phone_resident, make_staff, make_station
from tests.fuzz.world import SERVICE_CODE
from tests.security.routes import Route, all_routes

DIVISION = "340102001"
OPEN311 = "/open311/v2"
PROBLEM = "application/problem+json"
# Characters text here may not hold (each refused on input, each replaced in XML output).
HOSTILE = {"lone surrogate": "\ud800", "U+0001": "\x01", "backspace": "\x08", "NUL": "\x00", "U+FFFE": "\ufffe"}
STATION_CSV_HEADER = "code,name,county_code,county_name,city_name,lon,lat\n"
ELDER_CSV_HEADER = "name,id_card,township\n"


@dataclasses.dataclass
class Deployment:
    client: Any
    settings: Settings
    ctx: Any
    station_id: str
    client_id: str
    api_key: str
    client_token: dict[str, str]
    made: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)

    async def token(self, role: str) -> dict[str, str]:
        """The Authorization header of a real account of ``role``, made on first use (password hashing is slow)."""
        if role == "client":
            return self.client_token
        if role not in self.made:
            if role == "resident":
                who: Any = await make_phone_resident(self.ctx)
            else:
                station = self.station_id if role in ("worker", "station_head") else None
                prefix = DIVISION[:4] if role == "supervisor" else None
                who = await make_staff(self.ctx, role=role, station_id=station, division_prefix=prefix)
            self.made[role] = bearer_for(self.settings, who)
        return self.made[role]

    async def auth(self, route: Route) -> dict[str, str]:
        if route.meta is None or route.meta.public:
            return {}
        for role in ("admin", "client", "supervisor", "station_head", "worker", "resident"):
            if role in route.allowed_roles:
                return await self.token(role)
        raise AssertionError(f"no role may call {route.label}")

    async def count(self, collection: str) -> int:
        return int(await self.ctx.db[collection].count_documents({}))


@pytest.fixture
async def deployment(client: Any, settings: Settings) -> Deployment:
    """A station and an integrator client with every scope, made through the real code paths."""
    ctx = client.app[CTX]
    station = await make_station(ctx, code=DIVISION, name="测试街道社工站", point=(117.31, 31.86))
    issued = await create_client(
        ctx=ctx, principal=SYSTEM, name="对接 hostile", scopes=list(CLIENT_SCOPES), rate_limit_per_minute=100000
    )
    resp = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": issued.client.client_id,
            "client_secret": issued.client_secret,
        },
    )
    assert resp.status == 200, await resp.text()
    return Deployment(
        client=client,
        settings=settings,
        ctx=ctx,
        station_id=station.id,
        client_id=issued.client.client_id,
        api_key=f"{issued.client.client_id}:{issued.client_secret}",
        client_token=bearer((await resp.json())["access_token"]),
    )


def _json_routes(app: Any) -> list[Route]:
    return [r for r in all_routes(app) if r.meta is not None and r.meta.body_kind == "json" and r.meta.body]


async def _problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    text = await resp.text()
    assert resp.status == status, text
    assert resp.content_type == PROBLEM, text
    body = json.loads(text)
    assert body["status"] == status and body["code"] == code, body
    return dict(body)


async def _open311_error(resp: Any, status: int, code: str) -> str:
    """The Open311 error list (JSON or XML, parsed strictly); returns its text."""
    text = await resp.text()
    assert resp.status == status, text
    if resp.content_type == "text/xml":
        root = ET.fromstring(await resp.read())
        descriptions = [e.findtext("description") or "" for e in root.findall("error")]
    else:
        assert resp.content_type == "application/json", text
        descriptions = [e["description"] for e in json.loads(text)]
    assert descriptions and descriptions[0].startswith(f"{code}:"), text
    return text


def _case_body(service: Any, **extra: Any) -> dict[str, Any]:
    return {
        "service_code": SERVICE_CODE,
        "answers": example_answers(service),
        "division_code": DIVISION,
        "address": "瑶海区 明光路 1 号",
        "contact": {"name": "王芳", "phone": "13912345678"},
        **extra,
    }


# ---------------------------------------------------------------- JSON bodies


async def test_a_lone_surrogate_in_any_json_route_is_400_invalid_character(deployment: Deployment) -> None:
    app = deployment.client.app
    routes = _json_routes(app)
    assert len(routes) > 20  # the walk reaches the routes, not a handful
    failures = []
    for route in routes:
        assert route.meta is not None and route.meta.body is not None
        loadable = {f.data_key or n: f for n, f in route.meta.body.fields.items() if not f.dump_only}
        # A text field where there is one, so the surrogate would reach the schema and beyond.
        name = min(loadable, key=lambda n: (not isinstance(loadable[n], fields.String), n))
        # json= escapes the surrogate as \ud800, which is valid JSON syntax for a character no UTF-8 can hold.
        resp = await deployment.client.request(
            route.method, route.url(), json={name: "before \ud800 after"}, headers=await deployment.auth(route)
        )
        body = await resp.text()
        if resp.status != 400 or json.loads(body).get("code") != "invalid_character":
            failures.append(f"{route.label} field {name}: {resp.status} {body[:200]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("label", sorted(HOSTILE))
async def test_a_case_description_with_a_character_xml_cannot_hold_is_refused_and_nothing_is_filed(
    deployment: Deployment, label: str
) -> None:
    service = await catalog.get_service(ctx=deployment.ctx, code=SERVICE_CODE)
    body = _case_body(service, description=f"门口{HOSTILE[label]}台阶破损")
    resp = await deployment.client.post("/api/v1/cases", json=body, headers=await deployment.token("resident"))
    problem = await _problem(resp, 400, "invalid_character")
    assert problem["field"] == "description"
    assert problem["character"] == f"U+{ord(HOSTILE[label]):04X}"
    assert await deployment.count("cases") == 0


async def test_a_surrogate_pair_is_one_character_and_is_accepted(deployment: Deployment) -> None:
    service = await catalog.get_service(ctx=deployment.ctx, code=SERVICE_CODE)
    raw = json.dumps(_case_body(service, description="老人摔倒 \U0001f198"))  # sent as \ud83c\udd98
    assert "\\ud83c\\udd98" in raw
    headers = {**await deployment.token("resident"), "Content-Type": "application/json"}
    resp = await deployment.client.post("/api/v1/cases", data=raw, headers=headers)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["description"] == "老人摔倒 \U0001f198"


async def test_a_20000_deep_json_array_is_400_on_a_json_route(deployment: Deployment) -> None:
    headers = {**await deployment.token("resident"), "Content-Type": "application/json"}
    resp = await deployment.client.post("/api/v1/cases", data="[" * 20000 + "]" * 20000, headers=headers)
    await _problem(resp, 400, "too_deeply_nested")


# ---------------------------------------------------------------- Open311 forms


async def _open311_post(deployment: Deployment, body: bytes, ext: str = ".json") -> Any:
    return await deployment.client.post(
        f"{OPEN311}/requests{ext}",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def _form_fields(deployment: Deployment, service: Any) -> bytes:
    from urllib.parse import urlencode

    fields = {
        "api_key": deployment.api_key,
        "service_code": SERVICE_CODE,
        "address_id": DIVISION,
        "address_string": "瑶海区 明光路 1 号",
    }
    for code, value in example_answers(service).items():
        fields[f"attribute[{code}]"] = value[0] if isinstance(value, list) else str(value)
    return urlencode(fields).encode()


@pytest.mark.parametrize(
    "tail",
    [b"&description=%FF%FE", b"&description=\xff\xfe", b"&description=%ED%A0%80"],
    ids=["percent-encoded", "raw", "encoded surrogate"],
)
async def test_an_open311_form_that_is_not_utf8_is_400_and_nothing_is_filed(
    deployment: Deployment, tail: bytes
) -> None:
    service = await catalog.get_service(ctx=deployment.ctx, code=SERVICE_CODE)
    resp = await _open311_post(deployment, _form_fields(deployment, service) + tail)
    text = await _open311_error(resp, 400, "malformed_form")
    assert deployment.api_key.split(":")[1] not in text
    assert await deployment.count("cases") == 0
    # The same form, clean, is filed: the refusal was the bytes, nothing else.
    resp = await _open311_post(deployment, _form_fields(deployment, service) + b"&description=%E9%97%A8")
    assert resp.status == 201, await resp.text()


async def test_an_open311_form_with_a_control_character_is_400_in_xml_too(deployment: Deployment) -> None:
    service = await catalog.get_service(ctx=deployment.ctx, code=SERVICE_CODE)
    resp = await _open311_post(deployment, _form_fields(deployment, service) + b"&description=a%01b", ext=".xml")
    await _open311_error(resp, 400, "invalid_character")
    assert await deployment.count("cases") == 0


# ---------------------------------------------------------------- uploads and imports


@pytest.mark.parametrize(
    "body",
    [b"", b"--x--\r\n", b"--x\r\n"],
    ids=["empty", "closing boundary only", "opening boundary only"],
)
async def test_an_empty_or_truncated_multipart_upload_is_a_4xx_problem(deployment: Deployment, body: bytes) -> None:
    headers = {**await deployment.token("resident"), "Content-Type": "multipart/form-data; boundary=x"}
    resp = await deployment.client.post("/api/v1/uploads", data=body, headers=headers)
    text = await resp.text()
    assert 400 <= resp.status < 500 and resp.content_type == PROBLEM, text
    assert json.loads(text)["code"] in ("file_missing", "malformed_body")
    assert await deployment.count("fs.files") == 0


async def test_a_csv_field_over_the_csv_module_limit_is_400_malformed_csv(deployment: Deployment) -> None:
    admin = {**await deployment.token("admin"), "Content-Type": "text/csv"}
    huge = "x" * 200_000  # the csv module refuses fields over 131,072 characters
    rows = "340102001,站,340102,瑶海区,合肥市,117.3,31.8\n" + f'340102002,"{huge}",340102,瑶海区,合肥市,117.3,31.8\n'
    resp = await deployment.client.post(
        "/api/v1/stations/import?dry_run=false", data=(STATION_CSV_HEADER + rows).encode(), headers=admin
    )
    problem = await _problem(resp, 400, "malformed_csv")
    assert problem["line"] == 3
    resp = await deployment.client.post(
        "/api/v1/elders/import?dry_run=true", data=(ELDER_CSV_HEADER + f"{huge},x,y\n").encode(), headers=admin
    )
    await _problem(resp, 400, "malformed_csv")
    assert await deployment.count("elders") == 0


async def test_an_import_file_with_a_control_character_names_its_line(deployment: Deployment) -> None:
    admin = {**await deployment.token("admin"), "Content-Type": "text/csv"}
    rows = "340102001,站,340102,瑶海区,合肥市,117.3,31.8\n340102002,站\x01,340102,瑶海区,合肥市,117.3,31.8\n"
    resp = await deployment.client.post(
        "/api/v1/stations/import?dry_run=false", data=(STATION_CSV_HEADER + rows).encode(), headers=admin
    )
    problem = await _problem(resp, 400, "invalid_character")
    assert problem["line"] == 3 and problem["character"] == "U+0001"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("[" * 20000 + "]" * 20000, "too_deeply_nested"),
        ('{"type": "FeatureCollection", "features": [], "name": "\\udc00"}', "invalid_character"),
    ],
    ids=["20000-deep array", "lone surrogate"],
)
async def test_a_hostile_geojson_import_is_400(deployment: Deployment, body: str, code: str) -> None:
    admin = {**await deployment.token("admin"), "Content-Type": "application/geo+json"}
    resp = await deployment.client.post("/api/v1/stations/import?dry_run=false", data=body.encode(), headers=admin)
    await _problem(resp, 400, code)


# ---------------------------------------------------------------- XML answers


async def test_open311_xml_stays_well_formed_whatever_text_was_stored(deployment: Deployment) -> None:
    """A case stored with characters XML 1.0 cannot hold (through the service, as older data or other paths
    could have it) still gives XML that a strict parser reads, with U+FFFD in their place."""
    service = await catalog.get_service(ctx=deployment.ctx, code=SERVICE_CODE)
    stored = "求助\x00\x01\x08\ufffe完"
    principal = Principal(subject=deployment.client_id, role="client", scopes=frozenset(CLIENT_SCOPES))
    case = await case_submit.submit_case(
        ctx=deployment.ctx, principal=principal, data=CaseSubmission(**_case_body(service, description=stored))
    )
    key = {"api_key": deployment.api_key}
    one = await deployment.client.get(f"{OPEN311}/requests/{case['number']}.xml", params=key)
    assert one.status == 200, await one.text()
    listed = await deployment.client.get(f"{OPEN311}/requests.xml", params=key)
    assert listed.status == 200, await listed.text()
    for resp in (one, listed):
        root = ET.fromstring(await resp.read())  # expat: refuses any character XML 1.0 does not allow
        descriptions = [r.findtext("description") for r in root.findall("request")]
        assert descriptions == ["求助\ufffd\ufffd\ufffd\ufffd完"]
    # JSON carries the stored text as it is.
    as_json = await deployment.client.get(f"{OPEN311}/requests/{case['number']}.json", params=key)
    assert (await as_json.json())[0]["description"] == stored


# ---------------------------------------------------------------- over-long addresses and headers


def _ids(n: int) -> str:
    return ",".join(f"HM20260101{i:06d}" for i in range(n))


async def test_open311_asking_for_more_ids_than_the_limit_is_400_too_many_ids(deployment: Deployment) -> None:
    url = f"{OPEN311}/requests.json?service_request_id={_ids(201)}&api_key={deployment.api_key}"
    assert len(url) < 8192
    text = await _open311_error(await deployment.client.get(url), 400, "too_many_ids")
    assert deployment.api_key.split(":")[1] not in text
    ok = await deployment.client.get(
        f"{OPEN311}/requests.json?service_request_id={_ids(200)}&api_key={deployment.api_key}"
    )
    assert ok.status == 200 and await ok.json() == []


@pytest.mark.parametrize("ext", [".json", ".xml"])
async def test_an_over_long_open311_address_is_414_in_the_open311_format_without_the_key(
    deployment: Deployment, ext: str
) -> None:
    url = f"{OPEN311}/requests{ext}?api_key={deployment.api_key}&service_request_id={_ids(500)}"
    assert 8192 < len(url) < 65536
    text = await _open311_error(await deployment.client.get(url), 414, "uri_too_long")
    assert deployment.api_key.split(":")[1] not in text and deployment.client_id not in text


async def test_an_over_long_native_address_is_a_414_problem(deployment: Deployment) -> None:
    resp = await deployment.client.get("/api/v1/services?q=" + "x" * 9000)
    await _problem(resp, 414, "uri_too_long")


async def _raw_exchange(deployment: Deployment, payload: bytes) -> tuple[str, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", deployment.client.server.port)
    try:
        writer.write(payload)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return head.decode("latin-1").lower(), body


@pytest.mark.parametrize(
    ("what", "status", "code"),
    [("request line", 414, "uri_too_long"), ("header", 431, "header_too_large"), ("garbage", 400, "bad_request")],
)
async def test_requests_the_parser_refuses_get_a_problem_that_repeats_nothing(
    deployment: Deployment, what: str, status: int, code: str
) -> None:
    secret = deployment.api_key.split(":")[1]
    if what == "request line":
        payload = (
            f"GET {OPEN311}/requests.json?api_key={deployment.api_key}&x={'y' * 70000} HTTP/1.1\r\nHost: a\r\n\r\n"
        )
    elif what == "header":
        payload = f"GET /healthz HTTP/1.1\r\nHost: a\r\nAuthorization: Basic {secret}{'z' * 20000}\r\n\r\n"
    else:
        payload = f"GET /healthz?api_key={secret} HTTP/1.1\r\nHost: a\r\nBad Header {secret}\r\n\r\n"
    head, body = await _raw_exchange(deployment, payload.encode())
    assert head.split("\r\n")[0].split(" ")[1] == str(status), head
    assert f"content-type: {PROBLEM}" in head and "\r\nserver: huimin" in head and "x-request-id: " in head
    problem = json.loads(body)
    assert problem["status"] == status and problem["code"] == code
    assert secret not in body.decode() and secret.lower() not in head


# ---------------------------------------------------------------- the live feed


@pytest.mark.parametrize("digits", [20, 40, 400])
async def test_a_resume_id_beyond_64_bits_is_422_before_the_stream_opens(deployment: Deployment, digits: int) -> None:
    number = "9" * digits
    supervisor = await deployment.token("supervisor")
    by_header = await deployment.client.get("/api/v1/stream", headers={**supervisor, "Last-Event-ID": number})
    await _problem(by_header, 422, "invalid_last_event_id")
    by_query = await deployment.client.get("/api/v1/stream", params={"last_event_id": number}, headers=supervisor)
    await _problem(by_query, 422, "invalid_last_event_id" if digits <= 40 else "validation_failed")


async def test_the_largest_resume_id_opens_the_stream(deployment: Deployment) -> None:
    resp = await deployment.client.get(
        "/api/v1/stream", headers={**await deployment.token("supervisor"), "Last-Event-ID": str(2**63 - 1)}
    )
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    resp.close()
