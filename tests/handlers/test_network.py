"""The station network against the plan, through the API: records kept by their own head, verification
kept as history, coverage figures that match a hand count, CSV import (all or nothing) and export."""

from __future__ import annotations

import csv
import io
from typing import Any

from handlers.keys import CTX
from service.network import service as network
from tests.factories import (
    bearer_for,
    keep_network_record,
    make_case,
    make_compliant_station,
    make_phone_resident,
    make_photo,
    make_staff,
    make_station,
    verify_network_record,
)
from tests.seeded import seeded_bearer

# 屯溪区 (341002) has 9 townships in the NBS list; 黄山市 (341000) has 105.
TUNXI, HUANGSHAN = "341002", "341000"


async def small_network(ctx: Any) -> dict[str, Any]:
    """Five stations in Huangshan: one operating and verified, one model, one built, one unreported in
    Tunxi, one operating in Huangshan district (341003)."""
    s = {
        "operating": await make_station(ctx, code="341002001", name="昱东街道社工站"),
        "model": await make_station(ctx, code="341002002", name="昱中街道社工站", point=(118.32, 29.71)),
        "built": await make_station(ctx, code="341002100", name="屯光镇社工站", point=(118.30, 29.75)),
        "silent": await make_station(ctx, code="341002101", name="阳湖镇社工站", point=(118.33, 29.69)),
        "other": await make_station(ctx, code="341003100", name="甘棠镇社工站", point=(118.14, 30.27)),
    }
    heads = {k: await make_staff(ctx, role="station_head", station_id=v.id) for k, v in s.items()}
    supervisor = await make_staff(ctx, role="supervisor", division_prefix="3410")
    await make_compliant_station(ctx, s["operating"], heads["operating"])
    await verify_network_record(ctx, s["operating"], supervisor)
    await make_compliant_station(ctx, s["model"], heads["model"])  # compliant, not verified
    await keep_network_record(
        ctx, s["model"], supervisor, status="model", dates={"model": __import__("datetime").date(2025, 6, 1)}
    )
    await keep_network_record(ctx, s["built"], heads["built"], status="built", dates={"built": _day(2025, 1, 10)})
    await keep_network_record(
        ctx, s["other"], heads["other"], status="operating", dates={"operating": _day(2025, 2, 1)}
    )
    return {"stations": s, "heads": heads, "supervisor": supervisor}


def _day(y: int, m: int, d: int) -> Any:
    from datetime import date

    return date(y, m, d)


async def test_coverage_statistics_match_a_hand_count(client, settings):
    world = await small_network(client.app[CTX])
    as_supervisor = bearer_for(settings, world["supervisor"])

    r = await client.get(f"/api/v1/stats/stations?division={TUNXI}", headers=as_supervisor)
    body = await r.json()
    assert r.status == 200, body
    tunxi = body["division"]
    # By hand: 9 townships; stations 昱东 (operating), 昱中 (model), 屯光 (built), 阳湖 (nothing reported).
    assert (tunxi["code"], tunxi["name"], tunxi["townships"], tunxi["stations"]) == (TUNXI, "屯溪区", 9, 4)
    assert tunxi["by_status"] == {"planned": 0, "built": 1, "operating": 1, "model": 1, "unreported": 1}
    assert (tunxi["covered_townships"], tunxi["coverage_pct"], tunxi["coverage_gap_pct"]) == (2, 22.2, 77.8)
    assert tunxi["model_stations"] == 1
    # Six haves: 昱东 and 昱中 meet them as recorded, only 昱东 is signed off.
    assert (tunxi["compliant"], tunxi["verified"]) == (2, 1)
    assert (tunxi["compliance_pct"], tunxi["reported_compliance_pct"], tunxi["target_pct"]) == (25.0, 50.0, 100.0)

    r = await client.get("/api/v1/stats/stations?group_by=county", headers=as_supervisor)
    body = await r.json()
    assert r.status == 200, body
    city = body["division"]
    assert (city["code"], city["townships"], city["stations"], city["covered_townships"]) == (HUANGSHAN, 105, 5, 3)
    assert city["coverage_pct"] == 2.9
    groups = {g["code"]: g for g in body["groups"]}
    assert sum(g["townships"] for g in groups.values()) == 105
    assert groups[TUNXI]["covered_townships"] == 2 and groups[TUNXI]["townships"] == 9
    assert groups["341003"]["covered_townships"] == 1 and groups["341003"]["stations"] == 1
    assert groups["341004"]["stations"] == 0 and groups["341004"]["coverage_pct"] == 0.0

    # The read port other areas call gives the same figures.
    port = await network.division_coverage(ctx=client.app[CTX], division_code=TUNXI)
    assert (port.coverage_pct, port.compliance_pct, port.townships) == (22.2, 25.0, 9)
    parts = await network.division_coverage_by(ctx=client.app[CTX], division_code=HUANGSHAN, group_by="county")
    assert {g.code: g.covered_townships for g in parts if g.covered_townships} == {TUNXI: 2, "341003": 1}


async def test_figures_are_scoped_to_the_supervisors_division(client, settings):
    supervisor = await make_staff(client.app[CTX], role="supervisor", division_prefix="3410")
    r = await client.get("/api/v1/stats/stations?division=340100", headers=bearer_for(settings, supervisor))
    assert r.status == 403 and (await r.json())["code"] == "division_outside_scope"
    r = await client.get("/api/v1/stats/stations?division=349900", headers=bearer_for(settings, supervisor))
    assert r.status == 403
    admin = await make_staff(client.app[CTX], role="admin")
    r = await client.get("/api/v1/stats/stations?division=349900", headers=bearer_for(settings, admin))
    assert r.status == 404 and (await r.json())["code"] == "division_not_found"
    head = await make_staff(client.app[CTX], role="station_head", station_id=(await make_station(client.app[CTX])).id)
    r = await client.get("/api/v1/stats/stations", headers=bearer_for(settings, head))
    assert r.status == 403


async def test_a_head_keeps_the_own_stations_record_and_a_head_of_another_station_is_refused(client, settings):
    ctx = client.app[CTX]
    mine = await make_station(ctx)
    theirs = await make_station(ctx, code="341002002", name="昱中街道社工站", point=(118.32, 29.71))
    head = await make_staff(ctx, role="station_head", station_id=mine.id)
    other_head = await make_staff(ctx, role="station_head", station_id=theirs.id)
    photo = await make_photo(ctx, head)
    change = {
        "status": "built",
        "dates": {"built": "2024-03-01"},
        "site": {"address": "新安路 8 号", "floor_area_m2": 120, "photos": [photo.id]},
        "equipment": [{"name": "办公电脑", "quantity": 2}],
    }
    r = await client.patch(f"/api/v1/network/stations/{mine.id}", json=change, headers=bearer_for(settings, head))
    body = await r.json()
    assert r.status == 200, body
    assert (body["status"], body["status_name"], body["revision"], body["dates"]) == (
        "built",
        "已建成",
        1,
        {"built": "2024-03-01"},
    )
    site = next(c for c in body["checklist"] if c["have"] == "site")
    assert site == {"have": "site", "name": "有场地", "met": True, "missing": []}
    assert body["updated_by"] == {"subject": head.id, "role": "station_head"}

    r = await client.patch(
        f"/api/v1/network/stations/{mine.id}",
        json={"equipment": [{"name": "打印机"}], "status": "operating", "dates": {"operating": "2024-04-01"}},
        headers=bearer_for(settings, other_head),
    )
    assert r.status == 403 and (await r.json())["code"] == "not_your_station"
    r = await client.get(f"/api/v1/network/stations/{mine.id}", headers=bearer_for(settings, other_head))
    assert r.status == 403
    r = await client.get(f"/api/v1/network/stations/{mine.id}", headers=bearer_for(settings, head))
    unchanged = await r.json()
    assert (unchanged["revision"], unchanged["status"], unchanged["equipment"]) == (
        1,
        "built",
        [{"name": "办公电脑", "quantity": 2}],
    )

    # A photo someone else uploaded cannot be claimed as evidence; a head may not designate a model station.
    stranger_photo = await make_photo(ctx, other_head)
    r = await client.patch(
        f"/api/v1/network/stations/{mine.id}",
        json={"site": {"photos": [photo.id, stranger_photo.id]}},
        headers=bearer_for(settings, head),
    )
    body = await r.json()
    assert r.status == 422 and body["code"] == "invalid_network_record" and list(body["errors"]) == ["site.photos"]
    # Nor can a resident's photo the head sees through a case at the station (personal data).
    resident = await make_phone_resident(ctx)
    case_photo = await make_photo(ctx, resident)
    await make_case(ctx, resident, photos=[case_photo.id])
    r = await client.get(f"/api/v1/uploads/{case_photo.id}", headers=bearer_for(settings, head))
    assert r.status == 200  # the head may see it on the case...
    r = await client.patch(
        f"/api/v1/network/stations/{mine.id}",
        json={"site": {"photos": [photo.id, case_photo.id]}},
        headers=bearer_for(settings, head),
    )
    assert r.status == 422 and list((await r.json())["errors"]) == ["site.photos"]  # ...not claim it as evidence
    r = await client.patch(
        f"/api/v1/network/stations/{mine.id}",
        json={"status": "model", "dates": {"operating": "2024-04-01", "model": "2024-09-01"}},
        headers=bearer_for(settings, head),
    )
    assert r.status == 403 and (await r.json())["code"] == "model_designated_by_supervisor"
    r = await client.patch(
        f"/api/v1/network/stations/{mine.id}",
        json={"status": "operating", "dates": {"operating": "2024-02-01"}},
        headers=bearer_for(settings, head),
    )
    body = await r.json()
    assert r.status == 422 and body["code"] == "invalid_network_record", body
    assert "dates.operating" in body["errors"]
    r = await client.patch(
        f"/api/v1/network/stations/{mine.id}",
        json={"equipment": [], "expected_revision": 0},
        headers=bearer_for(settings, head),
    )
    assert r.status == 409 and (await r.json())["code"] == "network_record_changed"


async def test_verification_is_recorded_with_who_and_when_and_lapses_when_the_record_changes(client, settings):
    ctx = client.app[CTX]
    station = await make_station(ctx)
    head = await make_staff(ctx, role="station_head", station_id=station.id)
    supervisor = await make_staff(ctx, role="supervisor", division_prefix="3410")
    far_supervisor = await make_staff(ctx, role="supervisor", division_prefix="3401")
    url = f"/api/v1/network/stations/{station.id}/verifications"

    r = await client.post(url, json={"outcome": "approved"}, headers=bearer_for(settings, supervisor))
    assert r.status == 409 and (await r.json())["code"] == "nothing_to_verify"
    await keep_network_record(ctx, station, head, status="built", dates={"built": _day(2024, 3, 1)})
    r = await client.post(url, json={"outcome": "approved"}, headers=bearer_for(settings, supervisor))
    body = await r.json()
    assert r.status == 409 and body["code"] == "six_haves_incomplete"
    assert "site" in body["missing"]
    r = await client.post(url, json={"outcome": "returned"}, headers=bearer_for(settings, supervisor))
    assert r.status == 422
    once = {**bearer_for(settings, supervisor), "Idempotency-Key": "return-1"}
    r = await client.post(url, json={"outcome": "returned", "note": "缺少场地照片。"}, headers=once)
    returned = await r.json()
    assert r.status == 201, returned
    r = await client.post(url, json={"outcome": "returned", "note": "缺少场地照片。"}, headers=once)
    assert r.status == 201 and (await r.json())["id"] == returned["id"]  # replayed, not recorded twice

    done = await make_compliant_station(ctx, station, head)
    r = await client.post(url, json={"outcome": "approved"}, headers=bearer_for(settings, far_supervisor))
    assert r.status == 403 and (await r.json())["code"] == "station_outside_division"
    r = await client.post(url, json={"outcome": "approved"}, headers=bearer_for(settings, head))
    assert r.status == 403
    r = await client.post(
        url,
        json={"outcome": "approved", "revision": done.record.revision - 1},
        headers=bearer_for(settings, supervisor),
    )
    assert r.status == 409 and (await r.json())["code"] == "network_record_changed"
    r = await client.post(
        url, json={"outcome": "approved", "revision": done.record.revision}, headers=bearer_for(settings, supervisor)
    )
    approved = await r.json()
    assert r.status == 201, approved
    assert approved["by"] == {"subject": supervisor.id, "role": "supervisor"}
    assert (approved["outcome"], approved["revision"]) == ("approved", done.record.revision)
    assert approved["at"].endswith("+00:00")

    r = await client.get(f"/api/v1/network/stations/{station.id}", headers=bearer_for(settings, head))
    body = await r.json()
    assert (body["compliant"], body["verified"], body["verification"]["id"]) == (True, True, approved["id"])

    # The history keeps both, newest first; a later change needs a new sign-off.
    r = await client.get(url, headers=bearer_for(settings, head))
    history = (await r.json())["items"]
    assert [(v["id"], v["outcome"]) for v in history] == [(approved["id"], "approved"), (returned["id"], "returned")]
    assert history[1]["note"] == "缺少场地照片。"
    same = await keep_network_record(ctx, station, head, site={"floor_area_m2": 120.0})  # as recorded already
    assert (same.record.revision, same.verified) == (done.record.revision, True)
    await keep_network_record(ctx, station, head, site={"floor_area_m2": 150.0})
    r = await client.get(f"/api/v1/network/stations/{station.id}", headers=bearer_for(settings, supervisor))
    body = await r.json()
    assert (body["compliant"], body["verified"], body["revision"]) == (True, False, done.record.revision + 1)

    # The supervisor sees the evidence photos through the record.
    photo = body["site"]["photos"][0]
    r = await client.get(
        f"/api/v1/network/stations/{station.id}/photos/{photo}", headers=bearer_for(settings, supervisor)
    )
    assert r.status == 200 and r.headers["Content-Type"] == "image/png"
    r = await client.get(f"/api/v1/uploads/{photo}", headers=bearer_for(settings, supervisor))
    assert r.status == 404  # the uploads route itself still shows photos only through cases


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


async def test_a_bad_csv_names_every_row_with_its_error_and_writes_nothing(client, settings):
    ctx = client.app[CTX]
    a = await make_station(ctx)
    b = await make_station(ctx, code="341002002", name="昱中街道社工站", point=(118.32, 29.71))
    await make_station(ctx, code="340102001", name="明光路街道社工站", point=(117.30, 31.86))
    supervisor = await make_staff(ctx, role="supervisor", division_prefix="3410")
    headers = {**bearer_for(settings, supervisor), "Content-Type": "text/csv"}
    header = ["station_code", "status", "built_on", "operating_on", "site_address", "floor_area_m2", "equipment"]
    bad = _csv(
        [
            header,
            ["341002001", "operating", "2024-01-01", "2024-02-01", "新安路 8 号", "120", "电脑:2;档案柜:1"],
            ["341002002", "opening", "", "", "", "", ""],  # line 3: unknown status
            ["340102001", "built", "2024-01-01", "", "", "", ""],  # line 4: another division's station
            ["341002009", "built", "2024-01-01", "", "", "", ""],  # line 5: no such station
            ["341002002", "operating", "2024-05-01", "2024-03-01", "", "-5", ""],  # line 6: date order, area
            ["341002001", "built", "2024-01-01", "", "", "", ""],  # line 7: twice in the file
            ["341002002", "built", "", "", "", "", ""],  # line 8: built without its date
        ]
    )
    r = await client.post("/api/v1/network/import?dry_run=true", data=bad, headers=headers)
    report = await r.json()
    assert r.status == 200, report
    assert (report["total"], report["written"]) == (7, False)
    assert sorted((e["row"], e["field"]) for e in report["errors"]) == [
        (3, "status"),
        (4, "station_code"),
        (5, "station_code"),
        (6, "floor_area_m2"),
        (6, "operating_on"),
        (6, "station_code"),  # 341002002 is on line 3 already
        (7, "station_code"),
        (8, "built_on"),
        (8, "station_code"),
    ]
    r = await client.post("/api/v1/network/import?dry_run=false", data=bad, headers=headers)
    refused = await r.json()
    assert r.status == 422 and refused["code"] == "invalid_import"
    assert {e["row"] for e in refused["rows"]} == {3, 4, 5, 6, 7, 8}
    for station in (a, b):
        kept = await network.get_station_network(ctx=ctx, principal=_p(supervisor), station_id=station.id)
        assert kept.record.revision == 0  # nothing written, not even the good first row

    good = _csv(
        [
            header,
            ["341002001", "operating", "2024-01-01", "2024-02-01", "新安路 8 号", "120", "电脑:2;档案柜:1"],
            ["341002002", "built", "2024-05-01", "", "", "", ""],
        ]
    )
    r = await client.post("/api/v1/network/import?dry_run=false", data=good, headers=headers)
    report = await r.json()
    assert r.status == 200 and report["written"] and report["to_create"] == 2, report

    # The export reads back what was imported, and imports again unchanged.
    r = await client.get(f"/api/v1/network/export?division={TUNXI}", headers=bearer_for(settings, supervisor))
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
    text = (await r.read()).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["station_code"] for row in rows] == ["341002001", "341002002"]
    first = rows[0]
    assert (first["status"], first["operating_on"], first["floor_area_m2"], first["equipment"]) == (
        "operating",
        "2024-02-01",
        "120",
        "电脑:2; 档案柜:1",
    )
    assert (first["station_name"], first["county_name"], first["compliant"]) == ("昱东街道社工站", "屯溪区", "no")
    r = await client.post("/api/v1/network/import?dry_run=true", data=text.encode("utf-8"), headers=headers)
    again = await r.json()
    assert r.status == 200 and again["errors"] == [] and again["to_update"] == 2, again


async def test_the_network_table_lists_a_division_with_status_filter(client, settings):
    ctx = client.app[CTX]
    world = await small_network(ctx)
    headers = bearer_for(settings, world["supervisor"])
    r = await client.get(f"/api/v1/network/stations?division={TUNXI}&limit=3", headers=headers)
    page = await r.json()
    assert r.status == 200, page
    assert [i["station"]["code"] for i in page["items"]] == ["341002001", "341002002", "341002100"]
    assert page["items"][0]["verified"] is True and page["items"][1]["status"] == "model"
    r = await client.get(f"/api/v1/network/stations?division={TUNXI}&cursor={page['next_cursor']}", headers=headers)
    rest = await r.json()
    assert [(i["station"]["code"], i["status"]) for i in rest["items"]] == [("341002101", "unreported")]
    assert rest["next_cursor"] is None
    r = await client.get("/api/v1/network/stations?status=operating", headers=headers)
    assert [i["station"]["code"] for i in (await r.json())["items"]] == ["341002001", "341003100"]


def _p(member: Any) -> Any:
    from tests.factories import principal_of

    return principal_of(member)


async def test_the_seeded_province_counts_every_township_and_reports_nothing_as_done(seeded_client):
    admin = await seeded_bearer(seeded_client, "admin")
    r = await seeded_client.get("/api/v1/stats/stations?group_by=city", headers=admin)
    body = await r.json()
    assert r.status == 200, body
    province = body["division"]
    assert (province["code"], province["name"], province["townships"], province["stations"]) == (
        "340000",
        "安徽省",
        1523,
        1523,
    )
    assert province["by_status"]["unreported"] == 1523 and province["coverage_pct"] == 0.0
    assert len(body["groups"]) == 16 and sum(g["townships"] for g in body["groups"]) == 1523
