"""Resolving with photos (办结附照片): uploaded first, referenced by id, the resolver's own or the case's."""

from __future__ import annotations

from typing import Any

from config import Settings
from handlers.keys import CTX
from tests.factories import (
    act,
    bearer_for,
    case_body,
    make_phone_resident,
    make_staff,
    make_station,
)
from tests.handlers.test_uploads import form, png


async def _upload(client: Any, headers: dict[str, str]) -> str:
    resp = await client.post("/api/v1/uploads", data=form(png()), headers=headers)
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def _world(client: Any, settings: Settings) -> dict[str, Any]:
    ctx = client.app[CTX]
    station = await make_station(ctx)
    other_station = await make_station(ctx, code="341002002", name="老街街道社工站", point=(118.30, 29.70))
    resident = await make_phone_resident(ctx)
    w = {
        "worker": bearer_for(settings, await make_staff(ctx, station_id=station.id)),
        "colleague": bearer_for(settings, await make_staff(ctx, station_id=station.id)),
        "elsewhere": bearer_for(settings, await make_staff(ctx, station_id=other_station.id)),
        "resident": bearer_for(settings, resident),
        "stranger": bearer_for(settings, await make_phone_resident(ctx)),
    }
    resident_photo = await _upload(client, w["resident"])
    body = {**await case_body(ctx), "photos": [resident_photo]}
    resp = await client.post("/api/v1/cases", json=body, headers=w["resident"])
    assert resp.status == 201, await resp.text()
    case = await resp.json()
    assert case["station_id"] == station.id
    await act(client, settings, w["worker"], case["id"], "accept")
    return {**w, "case_id": case["id"], "resident_photo": resident_photo}


async def test_worker_resolves_with_photos_the_resident_and_station_can_see_them(
    client: Any, settings: Settings
) -> None:
    w = await _world(client, settings)
    photo = await _upload(client, w["worker"])
    body = {"result": "已上门修好台阶。", "photos": [photo, photo, w["resident_photo"]]}
    case = await act(client, settings, w["worker"], w["case_id"], "resolve", body)
    assert case["status"] == "resolved"
    assert case["result_photos"] == [photo, w["resident_photo"]]  # the repeat shown once
    assert case["photos"] == [w["resident_photo"]]  # the filing's own photos are unchanged
    assert case["history"][-1]["data"]["photos"] == [photo, w["resident_photo"]]
    # The resident sees the resolution's photo; so does the station; nobody else does.
    for who, status in (("resident", 200), ("colleague", 200), ("stranger", 404), ("elsewhere", 404)):
        resp = await client.get(f"/api/v1/uploads/{photo}", headers=w[who])
        assert resp.status == status, who
        if status == 404:
            assert (await resp.json())["code"] == "upload_not_found"
    resp = await client.get(f"/api/v1/cases/{w['case_id']}", headers=w["resident"])
    assert (await resp.json())["result_photos"] == [photo, w["resident_photo"]]


async def test_resolving_without_photos_keeps_an_empty_list(client: Any, settings: Settings) -> None:
    w = await _world(client, settings)
    case = await act(client, settings, w["worker"], w["case_id"], "resolve", {"result": "电话回访，已解决。"})
    assert case["result_photos"] == []
    assert "photos" not in case["history"][-1]["data"]


async def test_photos_not_uploaded_by_the_resolver_are_refused_and_nothing_changes(
    client: Any, settings: Settings
) -> None:
    w = await _world(client, settings)
    colleagues = await _upload(client, w["colleague"])
    strangers = await _upload(client, w["stranger"])
    for photos in ([colleagues], [strangers], ["65a0c0ffee0000000000beef"], ["not-an-upload"]):
        resp = await client.post(
            f"/api/v1/cases/{w['case_id']}/resolve", json={"result": "已办结", "photos": photos}, headers=w["worker"]
        )
        assert resp.status == 422, photos
        problem = await resp.json()
        assert problem["code"] == "unknown_photo"
        assert list(problem["errors"]) == ["photos"]
    resp = await client.get(f"/api/v1/cases/{w['case_id']}", headers=w["worker"])
    case = await resp.json()
    assert case["status"] == "accepted"
    assert not case.get("result_photos")
    assert case["history"][-1]["action"] == "accept"


async def test_more_than_nine_photos_or_a_bad_list_is_a_field_error(client: Any, settings: Settings) -> None:
    w = await _world(client, settings)
    photo = await _upload(client, w["worker"])
    for photos in ([photo] * 10, photo, [""], [123]):
        resp = await client.post(
            f"/api/v1/cases/{w['case_id']}/resolve", json={"result": "已办结", "photos": photos}, headers=w["worker"]
        )
        assert resp.status == 422, photos
        assert "photos" in (await resp.json())["errors"]
    resp = await client.post(
        f"/api/v1/cases/{w['case_id']}/resolve", json={"result": "已办结", "photos": [{"$gt": ""}]}, headers=w["worker"]
    )
    assert resp.status == 400
    assert (await resp.json())["code"] == "operator_not_allowed"
    resp = await client.get(f"/api/v1/cases/{w['case_id']}", headers=w["worker"])
    assert (await resp.json())["status"] == "accepted"


async def test_reopening_clears_the_resolution_photos(client: Any, settings: Settings) -> None:
    w = await _world(client, settings)
    photo = await _upload(client, w["worker"])
    await act(client, settings, w["worker"], w["case_id"], "resolve", {"result": "已办结", "photos": [photo]})
    case = await act(client, settings, w["resident"], w["case_id"], "reopen", {"reason": "台阶又坏了"})
    assert case["status"] == "in_progress"
    assert case["result_photos"] == []
    assert case["result"] is None
