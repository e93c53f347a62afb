"""The register import reads what Excel saves: UTF-8 with or without BOM, and GBK/GB18030."""

import pytest

from handlers.keys import CTX
from tests.factories import bearer_of, id_card, seed_stations

HEAD = "name,id_card,township,address,flags\n"


@pytest.fixture
async def stations(client):
    return await seed_stations(client.app[CTX])


def _id_with_x() -> str:
    return next(n for n in (id_card("19400101", seq) for seq in range(1, 1000)) if n.endswith("X"))


async def post(client, settings, data: bytes, dry_run: str = "false"):
    headers = {**await bearer_of(client.app[CTX], "admin"), "Content-Type": "text/csv"}
    r = await client.post(f"/api/v1/elders/import?dry_run={dry_run}", data=data, headers=headers)
    return r.status, await r.json()


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("gbk", "gb18030"), ("gb18030", "gb18030"), ("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig")],
)
async def test_the_import_detects_the_encoding_and_keeps_the_chinese_text(
    client, settings, stations, encoding, detected
):
    text = HEAD + f"张桂兰,{id_card(seq=21)},340102001,合肥市瑶海区明光路18号,alone\n"
    status, report = await post(client, settings, text.encode(encoding))
    assert status == 200 and report["written"] is True and report["encoding"] == detected, report
    stored = await client.app[CTX].db["elders"].find_one({})
    assert (stored["name"], stored["address"]) == ("张桂兰", "合肥市瑶海区明光路18号")


async def test_a_file_in_neither_encoding_is_refused(client, settings, stations):
    status, problem = await post(client, settings, HEAD.encode() + b"\xff\xfe\xfd\x80,\x81\x30\n")
    assert status == 400 and problem["code"] == "invalid_encoding", problem
    assert await client.app[CTX].db["elders"].count_documents({}) == 0


async def test_a_lower_case_x_check_digit_is_normalised_on_import(client, settings, stations):
    number = _id_with_x()
    status, report = await post(client, settings, (HEAD + f"李秀兰,{number.lower()},340102001,,alone\n").encode("gbk"))
    assert status == 200 and report["written"] is True, report
    stored = await client.app[CTX].db["elders"].find_one({})
    assert stored["id_card_masked"].endswith("X")


async def test_control_characters_in_imported_names_and_addresses_are_refused_and_nothing_is_written(
    client, settings, stations
):
    text = (
        HEAD
        + f"张桂兰,{id_card(seq=21)},340102001,明光路18号,alone\n"
        + f'"王\t秀英",{id_card(seq=22)},340102001,明光路19号,alone\n'
        + f'李四,{id_card(seq=23)},340102001,"明光路\r\n20号",alone\n'
    )
    status, report = await post(client, settings, text.encode("gb18030"), dry_run="true")
    assert status == 200, report
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(3, "name"), (5, "address")]
    status, problem = await post(client, settings, text.encode("gb18030"))
    assert status == 422 and problem["code"] == "invalid_import"
    assert await client.app[CTX].db["elders"].count_documents({}) == 0
    assert await client.app[CTX].db["visit_schedules"].count_documents({}) == 0


async def test_a_file_holding_characters_no_text_may_hold_is_refused_whole_with_its_line(client, settings, stations):
    # Control characters other than tab and line breaks are refused for every text the
    # service reads, before any row is looked at (docs/security.md).
    text = (
        HEAD
        + f"张桂兰,{id_card(seq=21)},340102001,明光路18号,alone\n"
        + f"赵六,{id_card(seq=24)},340102001,明光路\x0721号,alone\n"
    )
    for dry_run in ("true", "false"):
        status, problem = await post(client, settings, text.encode("gb18030"), dry_run=dry_run)
        assert status == 400 and problem["code"] == "invalid_character", problem
        assert "Line 3" in problem["detail"]
    assert await client.app[CTX].db["elders"].count_documents({}) == 0
