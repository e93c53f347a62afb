"""The Open311 GeoReport v2 facade against the running app, read with the PyPI `georeport` client."""

from __future__ import annotations

import asyncio
import dataclasses
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import quote

import pytest
from georeport import GeoReport

from handlers.keys import CTX
from service.catalog import service as catalog
from service.catalog.seed import SEED_SERVICES
from service.common.inputs import from_given
from service.common.models import Principal
from service.identity import clients
from service.stations import service as stations
from service.stations.inputs import StationRegistration
from tests.factories import bearer_for, make_staff

ADMIN = Principal(subject="admin-1", role="admin")
BASE = "/open311/v2"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
HOME_VISIT = [
    ("service_code", "elderly_home_visit"),
    ("lat", "29.861"),
    ("long", "118.411"),
    ("address_string", "徽城镇 新安路 1 号"),
    ("description", "独居老人，近来行动不便"),
    ("attribute[elder_name]", "王大爷"),
    ("attribute[elder_age]", "82"),
    ("attribute[living_situation]", "alone"),
    ("first_name", "芳"),
    ("last_name", "王"),
    ("phone", "13912345678"),
    ("email", "wang@example.cn"),
    ("account_id", "wst-user-42"),
    ("media_url", "https://img.example.cn/a.jpg"),
]


@dataclasses.dataclass
class Integrator:
    client_id: str
    secret: str

    @property
    def api_key(self) -> str:
        return f"{self.client_id}:{self.secret}"


@dataclasses.dataclass
class Open311World:
    client: Any
    settings: Any
    ctx: Any
    station: Any
    wst: Integrator  # 皖事通, with the open311 scope
    other: Integrator  # another client with the open311 scope
    no_scope: Integrator  # a client without it

    @property
    def origin(self) -> str:
        return str(self.client.server.make_url("")).rstrip("/")

    def georeport(self, who: Integrator | None = None, output_format: str = "json") -> GeoReport:
        """The PyPI client as its documentation shows; reading requests sends the key as URL credentials."""
        root = self.origin + BASE
        if who is not None:
            host = root.split("://", 1)[1]
            root = f"http://{quote(who.client_id, safe='')}:{quote(who.secret, safe='')}@{host}"
        return GeoReport(root, jurisdiction="340000", output_format=output_format)

    async def post(
        self, fields: list[tuple[str, str]], *, who: Integrator | None = None, ext: str = ".json", query: str = ""
    ) -> Any:
        body = [("api_key", (who or self.wst).api_key), *fields]
        return await self.client.post(f"{BASE}/requests{ext}{query}", data=body, headers=FORM)

    async def count_cases(self) -> int:
        return await self.ctx.db["cases"].count_documents({})


async def _integrator(ctx: Any, name: str, scopes: list[str], limit: int = 600) -> Integrator:
    issued = await clients.create_client(
        ctx=ctx, principal=ADMIN, name=name, scopes=scopes, rate_limit_per_minute=limit
    )
    return Integrator(issued.client.client_id, issued.client_secret)


@pytest.fixture
async def world(client: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Open311World:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    ctx = client.app[CTX]
    await catalog.seed_catalog(ctx)
    station = await stations.create_station(
        ctx=ctx,
        principal=ADMIN,
        data=from_given(
            StationRegistration,
            {
                "code": "341021100",
                "name": "徽城镇社工站",
                "location": {"type": "Point", "coordinates": [118.41, 29.86]},
                "capabilities": sorted({s.capability for s in SEED_SERVICES}),
                "precision": "exact",
            },
        ),
    )
    return Open311World(
        client=client,
        settings=settings,
        ctx=ctx,
        station=station,
        wst=await _integrator(ctx, "皖事通 Wanshitong", ["open311", "cases:read"]),
        other=await _integrator(ctx, "12345 热线 hotline", ["open311"]),
        no_scope=await _integrator(ctx, "数据平台 data platform", ["cases:read"]),
    )


async def _filed(world: Open311World, fields: list[tuple[str, str]] = HOME_VISIT, **kw: Any) -> dict[str, Any]:
    resp = await world.post(fields, **kw)
    body = await resp.json()
    assert resp.status == 201, body
    return dict(body[0])


# ---------------------------------------------------------------- read with the georeport client


async def test_georeport_client_lists_services_in_json_and_xml(world: Open311World) -> None:
    in_json = await asyncio.to_thread(world.georeport().get_service_list)
    in_xml = await asyncio.to_thread(world.georeport(output_format="xml").get_service_list)
    codes = {s.code for s in SEED_SERVICES}
    assert {s["service_code"] for s in in_json} == codes
    assert {s["service_code"] for s in in_xml} == codes
    visit = next(s for s in in_json if s["service_code"] == "elderly_home_visit")
    assert visit["service_name"] == "上门探访 Home visit request"
    assert visit["metadata"] is True and visit["type"] == "realtime"
    assert visit["group"] == "互联网+养老 Elderly care"
    visit_xml = next(s for s in in_xml if s["service_code"] == "elderly_home_visit")
    assert visit_xml["metadata"] == "true" and visit_xml["group"] == visit["group"]


async def test_georeport_client_reads_a_service_definition_in_json_and_xml(world: Open311World) -> None:
    definition = await asyncio.to_thread(world.georeport().get_service_definition, "elderly_home_care")
    assert definition["service_code"] == "elderly_home_care"
    attrs = {a["code"]: a for a in definition["attributes"]}
    care = attrs["care_items"]
    assert care["datatype"] == "multivaluelist" and care["required"] is True and care["variable"] is True
    assert {"key": "meals", "name": "助餐 meals"} in care["values"]
    assert attrs["preferred_time"]["datatype"] == "datetime"
    assert "contact_phone" not in attrs and "address" not in attrs, "asked once: phone and address_string"
    assert [a["order"] for a in definition["attributes"]] == list(range(1, len(attrs) + 1))

    in_xml = await asyncio.to_thread(world.georeport(output_format="xml").get_service_definition, "elderly_home_care")
    assert in_xml["service_code"] == "elderly_home_care"
    xml_attrs = {a["code"]: a for a in in_xml["attributes"]["attribute"]}
    assert xml_attrs["care_items"]["datatype"] == "multivaluelist"
    assert {"key": "meals", "name": "助餐 meals"} in xml_attrs["care_items"]["values"]["value"]

    emergency = await asyncio.to_thread(world.georeport().get_service_definition, "elderly_emergency")
    kinds = {a["code"]: a["datatype"] for a in emergency["attributes"]}
    assert kinds["emergency_type"] == "singlevaluelist"


async def test_request_posted_as_the_spec_shows_is_found_by_the_georeport_client(world: Open311World) -> None:
    created = await _filed(world)
    number = created["service_request_id"]
    assert number.startswith("HM") and created["account_id"] == "wst-user-42"
    assert "徽城镇社工站" in created["service_notice"]

    reader = world.georeport(world.wst)
    listed = await asyncio.to_thread(reader.get_service_requests)
    assert [r["service_request_id"] for r in listed] == [number]
    one = await asyncio.to_thread(reader.get_service_request, number)
    assert one["status"] == "open"
    assert one["service_code"] == "elderly_home_visit"
    assert one["agency_responsible"] == "徽城镇社工站"
    assert one["description"] == "独居老人，近来行动不便"
    assert one["address"] == "徽城镇 新安路 1 号"
    assert one["lat"] == pytest.approx(29.861) and one["long"] == pytest.approx(118.411)
    assert one["media_url"] == "https://img.example.cn/a.jpg"
    assert one["requested_datetime"] and one["expected_datetime"] > one["requested_datetime"]

    xml_reader = world.georeport(world.wst, output_format="xml")
    in_xml = await asyncio.to_thread(xml_reader.get_service_request, number)
    assert in_xml["service_request_id"] == number and in_xml["status"] == "open"
    assert in_xml["agency_responsible"] == "徽城镇社工站"
    listed_xml = await asyncio.to_thread(xml_reader.get_service_requests, status="open")
    assert listed_xml["service_request_id"] == number  # xmltodict gives one element as a dict

    # The filed request is an ordinary case of that client, with its answers typed.
    case = await world.ctx.db["cases"].find_one({"number": number})
    assert case["created_by"] == {"subject": world.wst.client_id, "role": "client"}
    assert case["answers"]["elder_age"] == 82 and case["answers"]["living_situation"] == "alone"
    assert case["contact"]["name"] == "王芳" and case["source"]["channel"] == "open311"


async def test_multi_value_attributes_and_query_string_fields_are_accepted(world: Open311World) -> None:
    fields = [
        ("attribute[care_items][]", "meals"),
        ("attribute[care_items][]", "bathing"),
        ("attribute[preferred_time]", "2026-12-02T09:00:00+08:00"),
        ("address_string", "徽城镇 新安路 3 号"),
        ("phone", "13912345678"),
    ]
    query = "?service_code=elderly_home_care&lat=29.861&long=118.411&jurisdiction_id=340000"
    resp = await world.post(fields, ext=".xml", query=query)
    assert resp.status == 201, await resp.text()
    root = ET.fromstring(await resp.read())
    assert root.tag == "service_requests"
    number = root.findtext("request/service_request_id")
    assert number
    case = await world.ctx.db["cases"].find_one({"number": number})
    assert case["answers"]["care_items"] == ["meals", "bathing"]
    assert case["preferred_window"]["start"].isoformat().startswith("2026-12-02T01:00:00")


async def test_status_maps_to_closed_with_the_result_as_status_notes(world: Open311World) -> None:
    number = (await _filed(world))["service_request_id"]
    case = await world.ctx.db["cases"].find_one({"number": number})
    worker = bearer_for(world.settings, await make_staff(world.ctx, role="worker", station_id=world.station.id))
    result = "已上门探访，安排每周助餐 visited; weekly meals arranged"
    for action, body in (("accept", {}), ("resolve", {"result": result})):
        resp = await world.client.post(f"/api/v1/cases/{case['_id']}/{action}", json=body, headers=worker)
        assert resp.status == 200, await resp.text()

    reader = world.georeport(world.wst)
    one = await asyncio.to_thread(reader.get_service_request, number)
    assert one["status"] == "closed"
    assert one["status_notes"] == result
    assert await asyncio.to_thread(reader.get_service_requests, status="open") == []
    closed = await asyncio.to_thread(reader.get_service_requests, status="closed", service_code="elderly_home_visit")
    assert [r["service_request_id"] for r in closed] == [number]
    repeated = await asyncio.to_thread(reader.get_service_requests, status="closed,closed")
    assert [r["service_request_id"] for r in repeated] == [number]  # a state named twice is still that state


async def test_token_maps_a_case_id_to_its_request_id(world: Open311World) -> None:
    number = (await _filed(world))["service_request_id"]
    case = await world.ctx.db["cases"].find_one({"number": number})
    resp = await world.client.get(f"{BASE}/tokens/{case['_id']}.json", params={"api_key": world.wst.api_key})
    assert await resp.json() == [{"service_request_id": number, "token": case["_id"]}]
    resp = await world.client.get(f"{BASE}/tokens/nope.xml", params={"api_key": world.wst.api_key})
    assert resp.status == 404
    assert ET.fromstring(await resp.read()).findtext("error/code") == "404"


# ---------------------------------------------------------------- the spec's XML element names


async def test_xml_answers_use_the_specification_element_names(world: Open311World) -> None:
    number = (await _filed(world))["service_request_id"]

    async def xml(path: str, **params: str) -> ET.Element:
        resp = await world.client.get(BASE + path, params=params)
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "text/xml" and resp.charset == "utf-8"
        text = await resp.text()
        assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
        return ET.fromstring(text.encode())

    discovery = await xml("/discovery.xml")
    assert discovery.tag == "discovery"
    endpoint = discovery.find("endpoints/endpoint")
    assert endpoint is not None and endpoint.findtext("specification") == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint.findtext("url", "").endswith("/open311/v2")
    assert [f.text for f in endpoint.findall("formats/format")] == ["application/json", "text/xml"]
    for name in ("changeset", "contact", "key_service"):
        assert discovery.find(name) is not None

    services = await xml("/services.xml")
    assert services.tag == "services"
    first = services.find("service")
    assert first is not None
    assert [c.tag for c in first] == [
        "service_code", "service_name", "description", "metadata", "type", "keywords", "group"
    ]  # fmt: skip

    definition = await xml("/services/elderly_home_care.xml")
    assert definition.tag == "service_definition" and definition.findtext("service_code") == "elderly_home_care"
    attribute = definition.find("attributes/attribute")
    assert attribute is not None
    assert [c.tag for c in attribute] == [
        "variable", "code", "datatype", "required", "datatype_description", "order", "description", "values"
    ]  # fmt: skip
    assert definition.find("attributes/attribute/values/value/key") is not None

    requests = await xml("/requests.xml", api_key=world.wst.api_key)
    assert requests.tag == "service_requests"
    request = requests.find("request")
    assert request is not None and request.findtext("service_request_id") == number
    assert [c.tag for c in request] == [
        "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
        "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
        "address", "address_id", "zipcode", "lat", "long", "media_url",
    ]  # fmt: skip


async def test_without_an_extension_the_answer_is_json(world: Open311World) -> None:
    resp = await world.client.get(f"{BASE}/services")
    assert resp.status == 200 and resp.content_type == "application/json"
    assert len(await resp.json()) == len(SEED_SERVICES)


# ---------------------------------------------------------------- bad input writes nothing


async def _expect_error(resp: Any, status: int, code: str, xml: bool = False) -> list[str]:
    assert resp.status == status, await resp.text()
    if xml:
        root = ET.fromstring(await resp.read())
        assert root.tag == "errors"
        errors = [{"code": int(e.findtext("code", "0")), "description": e.findtext("description")} for e in root]
    else:
        assert resp.content_type == "application/json"
        errors = await resp.json()
    assert errors and all(e["code"] == status for e in errors)
    assert errors[0]["description"].startswith(code + ":"), errors
    return [e["description"] for e in errors]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"service_code": "no_such_service"}, 404, "service_not_found"),
        ({"lat": None, "long": None}, 400, "location_required"),
        ({"lat": "95"}, 400, "invalid_location"),
        ({"attribute[elder_age]": "eighty"}, 400, "invalid_attribute"),
        ({"attribute[elder_age]": "12"}, 400, "invalid_answers"),
        ({"attribute[living_situation]": "castle"}, 400, "invalid_answers"),
        ({"attribute[favourite_colour]": "red"}, 400, "invalid_attribute"),
        ({"attribute[elder_name]": None}, 400, "invalid_answers"),
        ({"phone": "12345"}, 400, "invalid_phone"),
        ({"address_string": None}, 400, "address_required"),
        ({"jurisdiction_id": "110000"}, 404, "jurisdiction_not_found"),
    ],
)
async def test_bad_requests_get_the_spec_error_and_write_nothing(
    world: Open311World, change: dict[str, str | None], status: int, code: str
) -> None:
    fields = [(k, v) for k, v in HOME_VISIT if k not in change]
    fields += [(k, v) for k, v in change.items() if v is not None]
    for ext in (".json", ".xml"):
        await _expect_error(await world.post(fields, ext=ext), status, code, xml=ext == ".xml")
    assert await world.count_cases() == 0


async def test_bad_attribute_errors_name_the_attribute(world: Open311World) -> None:
    fields = [(k, v) for k, v in HOME_VISIT if k != "attribute[elder_age]"] + [("attribute[elder_age]", "12")]
    descriptions = await _expect_error(await world.post(fields), 400, "invalid_answers")
    assert any(d.startswith("attribute[elder_age]:") for d in descriptions)


async def test_a_home_visit_without_address_string_names_address_string(world: Open311World) -> None:
    fields = [(k, v) for k, v in HOME_VISIT if k != "address_string"]
    descriptions = await _expect_error(await world.post(fields), 400, "address_required")
    assert any(d.startswith("address_string:") for d in descriptions), descriptions


@pytest.mark.parametrize("key_of", ["wrong_secret", "unknown_client", "no_colon", "no_scope", "missing"])
async def test_a_wrong_api_key_is_403_and_writes_nothing(world: Open311World, key_of: str) -> None:
    keys = {
        "wrong_secret": f"{world.wst.client_id}:hms_wrong",
        "unknown_client": f"hmc_0000000000000000:{world.wst.secret}",
        "no_colon": world.wst.secret,
        "no_scope": world.no_scope.api_key,
        "missing": "",
    }
    body = [("api_key", keys[key_of]), *HOME_VISIT] if keys[key_of] else list(HOME_VISIT)
    resp = await world.client.post(f"{BASE}/requests.json", data=body, headers=FORM)
    await _expect_error(resp, 403, "api_key_required" if key_of == "missing" else "invalid_api_key")
    resp = await world.client.get(f"{BASE}/requests.xml", params={"api_key": keys[key_of]} if keys[key_of] else {})
    await _expect_error(resp, 403, "api_key_required" if key_of == "missing" else "invalid_api_key", xml=True)
    assert await world.count_cases() == 0


async def test_a_disabled_client_key_stops_working_at_once(world: Open311World) -> None:
    await clients.disable_client(ctx=world.ctx, principal=ADMIN, client_id=world.wst.client_id)
    await _expect_error(await world.post(HOME_VISIT), 403, "invalid_api_key")


async def test_unknown_service_definition_and_jurisdiction_are_404(world: Open311World) -> None:
    await _expect_error(await world.client.get(f"{BASE}/services/no_such.json"), 404, "service_not_found")
    await _expect_error(await world.client.get(f"{BASE}/services/no_such.xml"), 404, "service_not_found", xml=True)
    resp = await world.client.get(f"{BASE}/services.json", params={"jurisdiction_id": "320000"})
    await _expect_error(resp, 404, "jurisdiction_not_found")
    await _expect_error(await world.client.get(f"{BASE}/nothing-here.json"), 404, "not_found")


async def test_date_filters_are_checked(world: Open311World) -> None:
    key = world.wst.api_key
    resp = await world.client.get(f"{BASE}/requests.json", params={"api_key": key, "start_date": "yesterday"})
    await _expect_error(resp, 400, "invalid_date")
    resp = await world.client.get(
        f"{BASE}/requests.json",
        params={"api_key": key, "start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
    )
    await _expect_error(resp, 400, "date_range_too_long")
    resp = await world.client.get(f"{BASE}/requests.json", params={"api_key": key, "status": "pending"})
    await _expect_error(resp, 400, "invalid_status")


async def test_a_date_range_in_the_past_finds_nothing_new(world: Open311World) -> None:
    await _filed(world)
    params = {"api_key": world.wst.api_key, "start_date": "2020-01-01T00:00:00Z", "end_date": "2020-02-01T00:00:00Z"}
    assert await (await world.client.get(f"{BASE}/requests.json", params=params)).json() == []


# ---------------------------------------------------------------- privacy


async def test_a_client_never_sees_another_clients_requests(world: Open311World) -> None:
    number = (await _filed(world))["service_request_id"]
    other = world.georeport(world.other)
    assert await asyncio.to_thread(other.get_service_requests) == []
    resp = await world.client.get(f"{BASE}/requests/{number}.json", params={"api_key": world.other.api_key})
    await _expect_error(resp, 404, "request_not_found")
    resp = await world.client.get(
        f"{BASE}/requests.json", params={"api_key": world.other.api_key, "service_request_id": number}
    )
    assert await resp.json() == []


async def test_reading_requests_needs_an_api_key(world: Open311World) -> None:
    await _filed(world)
    await _expect_error(await world.client.get(f"{BASE}/requests.json"), 403, "api_key_required")
