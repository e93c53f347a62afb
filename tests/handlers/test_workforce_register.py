"""The workforce register: import with dry run and all-or-nothing apply, masking, history, who may do what."""

from __future__ import annotations

import re
from typing import Any

import pytest

from handlers.keys import CTX
from service.common.models import SYSTEM
from tests.factories import (
    REGISTER_COLUMNS,
    TOWNSHIP,
    bearer_for,
    csv_text,
    id_card,
    import_register,
    make_staff,
    make_station,
    make_training_session,
    worker_row,
)


@pytest.fixture
async def station(client: Any) -> Any:
    return await make_station(client.app[CTX])


async def post_csv(client: Any, headers: dict[str, str], path: str, body: bytes, dry_run: bool) -> tuple[int, Any]:
    resp = await client.post(
        f"{path}?dry_run={'true' if dry_run else 'false'}",
        data=body,
        headers={**headers, "Content-Type": "text/csv"},
    )
    return resp.status, await resp.json()


async def count(client: Any, collection: str) -> int:
    return int(await client.app[CTX].db[collection].count_documents({}))


async def test_a_dry_run_reports_and_writes_nothing_then_the_apply_writes_every_row(
    client: Any, settings: Any, station: Any
) -> None:
    admin = bearer_for(settings, SYSTEM)
    body = csv_text(REGISTER_COLUMNS, [worker_row(1), worker_row(2, role="manager")])
    status, report = await post_csv(client, admin, "/api/v1/workforce/people/import", body, dry_run=True)
    assert status == 200 and report["to_create"] == 2 and report["written"] is False, report
    assert await count(client, "workforce_people") == 0
    status, report = await post_csv(client, admin, "/api/v1/workforce/people/import", body, dry_run=False)
    assert status == 200 and report["written"] is True, report
    assert await count(client, "workforce_people") == 2
    # the same file again changes nothing; a changed row is an update
    status, report = await post_csv(client, admin, "/api/v1/workforce/people/import", body, dry_run=False)
    assert (report["to_create"], report["to_update"], report["written"]) == (0, 0, False)
    again = csv_text(REGISTER_COLUMNS, [worker_row(1, role="supervisor")])
    status, report = await post_csv(client, admin, "/api/v1/workforce/people/import", again, dry_run=False)
    assert (report["to_create"], report["to_update"], report["written"]) == (0, 1, True)


async def test_bad_rows_are_each_named_with_their_error_and_nothing_is_written(
    client: Any, settings: Any, station: Any
) -> None:
    admin = bearer_for(settings, SYSTEM)
    bad_number = id_card("19900101", 3, region="341002")[:-1] + ("0" if id_card("19900101", 3)[-1] != "0" else "1")
    rows = [
        worker_row(1),  # line 2: fine
        worker_row(2, employer_kind="school"),  # line 3
        worker_row(3, id_card=bad_number),  # line 4
        worker_row(4, status="left"),  # line 5: left without an end date
        worker_row(5, division="341002009"),  # line 6: no station serves this township
        worker_row(6, id_card=worker_row(1)["id_card"]),  # line 7: the same person as line 2
        worker_row(7, qualification_level="senior"),  # line 8: no certificate number
        worker_row(8, start_date="2023-02-30"),  # line 9
        worker_row(9, employer_kind="care_home", division="341002"),  # line 10: no employer name
    ]
    status, problem = await post_csv(
        client, admin, "/api/v1/workforce/people/import", csv_text(REGISTER_COLUMNS, rows), dry_run=False
    )
    assert status == 422 and problem["code"] == "invalid_import", problem
    named = {(e["row"], e["field"]) for e in problem["rows"]}
    assert named == {
        (3, "employer_kind"),
        (4, "id_card"),
        (5, "end_date"),
        (6, "division"),
        (7, "id_card"),
        (8, "certificate_no"),
        (9, "start_date"),
        (10, "employer_name"),
    }
    assert all(e["message"] for e in problem["rows"])
    assert await count(client, "workforce_people") == 0 and await count(client, "workforce_history") == 0
    # the dry run names the same rows, answered 200
    status, report = await post_csv(
        client, admin, "/api/v1/workforce/people/import", csv_text(REGISTER_COLUMNS, rows), dry_run=True
    )
    assert status == 200 and {(e["row"], e["field"]) for e in report["errors"]} == named


async def test_a_file_with_a_missing_column_is_refused_as_a_whole(client: Any, settings: Any, station: Any) -> None:
    body = b"name,id_card,division\n" + "张三,{},{}\n".format(worker_row(1)["id_card"], TOWNSHIP).encode()
    status, problem = await post_csv(
        client, bearer_for(settings, SYSTEM), "/api/v1/workforce/people/import", body, dry_run=False
    )
    assert status == 422 and problem["code"] == "invalid_import" and "columns" in problem["errors"]


async def test_id_numbers_are_masked_and_stored_only_encrypted_and_phones_masked(
    client: Any, settings: Any, station: Any
) -> None:
    ctx = client.app[CTX]
    worker = await make_staff(ctx, role="worker", station_id=station.id)
    number = worker_row(1)["id_card"]
    await import_register(
        ctx, [worker_row(1, phone="13905591234", staff_id=worker.id), worker_row(2, phone="13905590000")]
    )
    resp = await client.get("/api/v1/workforce/people?limit=100", headers=bearer_for(settings, SYSTEM))
    text = await resp.text()
    assert number not in text and "13905591234" not in text and "13905590000" not in text
    items = (await resp.json())["items"]
    assert all(re.fullmatch(r"3410\*{10}\d{3}[\dX]", p["id_card_masked"]) for p in items)
    assert {p["phone"] for p in items} == {"139****1234", "139****0000"}
    stored = await ctx.db["workforce_people"].find_one({"staff_id": worker.id})
    assert number not in str(stored) and stored["id_card_enc"].startswith("v1.")
    # the person themselves sees their own phone; a colleague at the station sees it masked
    own = [
        p
        for p in (await (await client.get("/api/v1/workforce/people", headers=bearer_for(settings, worker))).json())[
            "items"
        ]
    ]
    assert {p["phone"] for p in own} == {"13905591234", "139****0000"}


async def test_changes_are_kept_in_the_history_with_phones_masked(client: Any, settings: Any, station: Any) -> None:
    ctx = client.app[CTX]
    await import_register(ctx, [worker_row(1, phone="13905591234")])
    admin = bearer_for(settings, SYSTEM)
    [person] = (await (await client.get("/api/v1/workforce/people", headers=admin)).json())["items"]
    resp = await client.patch(
        f"/api/v1/workforce/people/{person['id']}",
        json={"role": "supervisor", "phone": "13905595678"},
        headers=admin,
    )
    assert resp.status == 200, await resp.json()
    resp = await client.patch(f"/api/v1/workforce/people/{person['id']}", json={"status": "left"}, headers=admin)
    problem = await resp.json()
    assert resp.status == 422 and problem["code"] == "invalid_person" and "end_date" in problem["errors"]
    history = (await (await client.get(f"/api/v1/workforce/people/{person['id']}/history", headers=admin)).json())[
        "items"
    ]
    assert [h["action"] for h in history] == ["imported", "updated"]
    assert history[1]["changes"] == {
        "phone": {"from": "139****1234", "to": "139****5678"},
        "role": {"from": "frontline", "to": "supervisor"},
    }
    assert "13905591234" not in str(history)


async def test_a_supervisor_manages_only_their_division(client: Any, settings: Any) -> None:
    ctx = client.app[CTX]
    await make_station(ctx)  # 341002001
    await make_station(ctx, code="341003100", name="甘棠镇社工站")
    supervisor = await make_staff(ctx, role="supervisor", division_prefix="341002")
    headers = bearer_for(settings, supervisor)
    rows = [worker_row(1), worker_row(2, division="341003100")]
    status, problem = await post_csv(
        client, headers, "/api/v1/workforce/people/import", csv_text(REGISTER_COLUMNS, rows), dry_run=False
    )
    assert status == 422 and [(e["row"], e["field"]) for e in problem["rows"]] == [(3, "division")]
    await import_register(ctx, [worker_row(1), worker_row(2, division="341003100")])
    people = (await (await client.get("/api/v1/workforce/people", headers=bearer_for(settings, SYSTEM))).json())[
        "items"
    ]
    other = next(p for p in people if p["division"] == "341003100")
    resp = await client.get(f"/api/v1/workforce/people/{other['id']}", headers=headers)
    assert resp.status == 404 and (await resp.json())["code"] == "person_not_found"
    body = {**worker_row(3, division="341003100"), "start_date": "2024-01-01"}
    resp = await client.post("/api/v1/workforce/people", json=body, headers=headers)
    assert resp.status == 403 and (await resp.json())["code"] == "outside_your_area"


async def test_a_linked_staff_account_must_exist_and_be_linked_once(client: Any, settings: Any, station: Any) -> None:
    ctx = client.app[CTX]
    worker = await make_staff(ctx, role="worker", station_id=station.id)
    admin = bearer_for(settings, SYSTEM)
    first = await client.post("/api/v1/workforce/people", json={**worker_row(1), "staff_id": worker.id}, headers=admin)
    assert first.status == 201, await first.json()
    again = await client.post("/api/v1/workforce/people", json={**worker_row(2), "staff_id": worker.id}, headers=admin)
    assert again.status == 409 and (await again.json())["code"] == "staff_account_linked"
    unknown = await client.post("/api/v1/workforce/people", json={**worker_row(3), "staff_id": "0" * 24}, headers=admin)
    problem = await unknown.json()
    assert unknown.status == 422 and problem["code"] == "invalid_person" and "staff_id" in problem["errors"]


async def test_bad_training_rows_are_named_and_nothing_is_written(client: Any, settings: Any, station: Any) -> None:
    ctx = client.app[CTX]
    await import_register(
        ctx,
        [
            worker_row(1),
            worker_row(
                2,
                occupation="elderly_care",
                employer_kind="care_home",
                division="341002",
                employer_name="屯溪区社会福利院",
            ),
        ],
    )
    session = await make_training_session(ctx, category="certified", starts_on="2025-04-01", ends_on="2025-04-03")
    body = csv_text(
        ("id_card", "status", "attended_hours", "completed_on"),
        [
            {"id_card": worker_row(1)["id_card"], "status": "completed"},  # line 2: fine
            {"id_card": worker_row(2)["id_card"], "status": "completed"},  # line 3: an elderly-care worker
            {"id_card": worker_row(9)["id_card"], "status": "completed"},  # line 4: not on the register
            {"id_card": worker_row(1)["id_card"], "status": "done"},  # line 5
            {"id_card": worker_row(1)["id_card"], "status": "attended", "completed_on": "2025-04-03"},  # line 6
        ],
    )
    status, problem = await post_csv(
        client, bearer_for(settings, SYSTEM), f"/api/v1/training/sessions/{session.id}/records/import", body, False
    )
    assert status == 422 and problem["code"] == "invalid_import", problem
    assert {(e["row"], e["field"]) for e in problem["rows"]} == {
        (3, "id_card"),
        (4, "id_card"),
        (5, "status"),
        (6, "completed_on"),
    }
    assert await count(client, "training_records") == 0


async def test_bad_reference_figure_rows_are_named_and_nothing_is_written(client: Any, settings: Any) -> None:
    body = csv_text(
        ("division", "year", "older_population", "care_home_beds", "source"),
        [
            {"division": "341002", "year": 2025, "older_population": 60000, "source": "统计年鉴"},
            {"division": "34100", "year": 2025, "older_population": 1, "source": "统计年鉴"},
            {"division": "341003", "year": 1999, "care_home_beds": 10, "source": "统计年鉴"},
            {"division": "341004", "year": 2025, "older_population": -5, "source": "统计年鉴"},
            {"division": "341021", "year": 2025, "older_population": 100},
            {"division": "341002", "year": 2025, "care_home_beds": 400, "source": "统计年鉴"},
        ],
    )
    status, problem = await post_csv(
        client, bearer_for(settings, SYSTEM), "/api/v1/reference-figures/import", body, False
    )
    assert status == 422, problem
    assert {(e["row"], e["field"]) for e in problem["rows"]} == {
        (3, "division"),
        (4, "year"),
        (5, "older_population"),
        (6, "source"),
        (7, "division"),
    }
    assert await count(client, "reference_figures") == 0


async def test_only_administrators_import_reference_figures(client: Any, settings: Any) -> None:
    supervisor = await make_staff(client.app[CTX], role="supervisor", division_prefix="3410")
    status, problem = await post_csv(
        client, bearer_for(settings, supervisor), "/api/v1/reference-figures/import", b"division\n", False
    )
    assert status == 403 and problem["code"] == "role_not_allowed"


async def test_an_import_row_moves_a_person_to_another_townships_station(client: Any, settings: Any) -> None:
    ctx = client.app[CTX]
    await make_station(ctx)  # 341002001
    other = await make_station(ctx, code="341002002", name="昱中街道社工站")
    await import_register(ctx, [worker_row(1)])
    report = await import_register(ctx, [worker_row(1, division="341002002")])
    assert report.written and report.to_update == 1 and not report.errors, report
    [person] = (await (await client.get("/api/v1/workforce/people", headers=bearer_for(settings, SYSTEM))).json())[
        "items"
    ]
    assert person["division"] == "341002002" and person["employer"]["station_id"] == other.id
    assert person["employer"]["name"] == "昱中街道社工站"


async def test_the_same_idempotency_key_registers_a_person_once(client: Any, settings: Any, station: Any) -> None:
    headers = {**bearer_for(settings, SYSTEM), "Idempotency-Key": "register-once"}
    first = await client.post("/api/v1/workforce/people", json=worker_row(1), headers=headers)
    again = await client.post("/api/v1/workforce/people", json=worker_row(1), headers=headers)
    assert first.status == again.status == 201 and again.headers.get("Idempotency-Replayed") == "true"
    assert (await first.json())["id"] == (await again.json())["id"]
    assert await count(client, "workforce_people") == 1


async def test_the_register_pages_by_cursor_and_refuses_a_cursor_it_did_not_write(
    client: Any, settings: Any, station: Any
) -> None:
    admin = bearer_for(settings, SYSTEM)
    body = csv_text(REGISTER_COLUMNS, [worker_row(n) for n in (1, 2, 3)])
    status, report = await post_csv(client, admin, "/api/v1/workforce/people/import", body, dry_run=False)
    assert status == 200 and report["written"] is True, report
    seen: list[str] = []
    cursor = None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        resp = await client.get(f"/api/v1/workforce/people?{query}", headers=admin)
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 3 and len(set(seen)) == 3
    for forged in ("bm90LWFuLWlk", "not-base64!", "WyJhIiwgImIiXQ"):
        resp = await client.get(f"/api/v1/workforce/people?cursor={forged}", headers=admin)
        assert resp.status == 400 and (await resp.json())["code"] == "invalid_cursor", forged
