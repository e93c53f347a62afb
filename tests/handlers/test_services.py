from handlers.keys import CTX
from tests.factories import bearer_for, bearer_of, make_phone_resident, make_staff, make_station

NEW_SERVICE = {
    "code": "library_delivery",
    "scenario": "community",
    "name_zh": "送书上门",
    "name_en": "Library home delivery",
    "description_zh": "为行动不便的居民送书上门。",
    "description_en": "Books delivered to residents who cannot get out.",
    "fields": [
        {"code": "address", "type": "string", "label_zh": "地址", "label_en": "Address", "required": True},
        {
            "code": "genre",
            "type": "single_choice",
            "label_zh": "类别",
            "label_en": "Genre",
            "choices": [{"code": "novel", "label_zh": "小说", "label_en": "novels"}],
        },
    ],
    "capability": "community",
    "booking": True,
    "sign_within_hours": 8,
    "resolve_within_days": 5,
}


async def seed_catalog(client):
    from handlers.keys import CTX
    from service.catalog.service import seed_catalog as seed

    await seed(client.app[CTX])


async def test_catalogue_lists_seven_scenarios_and_at_least_nineteen_services(seeded_client):
    r = await seeded_client.get("/api/v1/scenarios")
    assert r.status == 200
    scenarios = (await r.json())["items"]
    assert [s["code"] for s in scenarios] == [
        "elderly",
        "children",
        "community",
        "social_aid",
        "social_org",
        "social_work",
        "funeral",
    ]
    r = await seeded_client.get("/api/v1/services")
    services = (await r.json())["items"]
    assert len(services) >= 19
    # Retired for the volunteer service (docs/volunteers.md): hours are recorded by the organiser.
    assert not {"volunteer_certificate", "volunteer_project_enrolment"} & {s["code"] for s in services}
    assert {s["scenario"] for s in services} == {s["code"] for s in scenarios}


async def test_services_filter_by_scenario(seeded_client):
    r = await seeded_client.get("/api/v1/services", params={"scenario": "funeral"})
    items = (await r.json())["items"]
    assert items and all(s["scenario"] == "funeral" for s in items)
    r = await seeded_client.get("/api/v1/services", params={"scenario": "space"})
    assert r.status == 422 and (await r.json())["code"] == "validation_failed"


async def test_service_detail_has_typed_fields(seeded_client):
    r = await seeded_client.get("/api/v1/services/elderly_age_allowance")
    body = await r.json()
    assert r.status == 200
    assert body["name_zh"] == "高龄津贴申领" and body["version"] == 1 and body["active"] is True
    assert {f["code"]: f["type"] for f in body["fields"]}["id_card"] == "id_card"


async def test_service_detail_tells_who_may_apply_what_to_prepare_and_how_long(seeded_client):
    r = await seeded_client.get("/api/v1/services/elderly_age_allowance")
    body = await r.json()
    assert body["icon"] == "allowance"
    assert "80" in body["conditions_zh"] and body["conditions_en"]
    assert "户口簿" in body["materials_zh"] and len(body["materials_en"]) == len(body["materials_zh"])
    assert body["time_limit_zh"] == "16 个工作小时内受理，15 个工作日内办结"


async def test_admin_sets_and_changes_a_services_page_texts(client, settings):
    await seed_catalog(client)
    admin = await bearer_of(client.app[CTX], "admin")
    r = await client.patch(
        "/api/v1/services/facility_booking",
        json={"materials_zh": ["活动方案"], "materials_en": ["the plan"], "icon": "room"},
        headers=admin,
    )
    assert r.status == 200, await r.text()
    body = await r.json()
    assert (body["materials_zh"], body["icon"], body["version"]) == (["活动方案"], "room", 2)
    r = await client.patch("/api/v1/services/facility_booking", json={"icon": "Not An Icon!"}, headers=admin)
    assert r.status == 422 and "icon" in (await r.json())["errors"]


async def test_unknown_service_is_404(seeded_client):
    r = await seeded_client.get("/api/v1/services/no_such_service")
    assert r.status == 404 and (await r.json())["code"] == "service_not_found"


async def test_admin_change_makes_a_new_version_and_keeps_the_old(client, settings):
    await seed_catalog(client)
    admin = await bearer_of(client.app[CTX], "admin")
    r = await client.patch(
        "/api/v1/services/elderly_home_visit", json={"sign_within_hours": 4, "expected_version": 1}, headers=admin
    )
    assert r.status == 200, await r.text()
    assert (await r.json())["version"] == 2
    current = await (await client.get("/api/v1/services/elderly_home_visit")).json()
    old = await (await client.get("/api/v1/services/elderly_home_visit", params={"version": "1"})).json()
    assert (current["version"], current["sign_within_hours"]) == (2, 4)
    assert (old["version"], old["sign_within_hours"]) == (1, 8)
    listed = await (await client.get("/api/v1/services", params={"scenario": "elderly"})).json()
    assert [s["version"] for s in listed["items"] if s["code"] == "elderly_home_visit"] == [2]
    stale = await client.patch(
        "/api/v1/services/elderly_home_visit", json={"urgent": True, "expected_version": 1}, headers=admin
    )
    assert stale.status == 409 and (await stale.json())["code"] == "service_version_conflict"


async def test_admin_creates_and_retires_a_service(client, settings):
    admin = await bearer_of(client.app[CTX], "admin")
    r = await client.post("/api/v1/services", json=NEW_SERVICE, headers=admin)
    assert r.status == 201, await r.text()
    again = await client.post("/api/v1/services", json=NEW_SERVICE, headers=admin)
    assert again.status == 409 and (await again.json())["code"] == "service_exists"
    r = await client.post("/api/v1/services/library_delivery/retire", headers=admin)
    assert r.status == 200 and (await r.json())["active"] is False
    listed = await (await client.get("/api/v1/services")).json()
    assert "library_delivery" not in [s["code"] for s in listed["items"]]
    preview = await client.post(
        "/api/v1/routing/preview",
        json={"service_code": "library_delivery", "location": {"lon": 117.2, "lat": 31.8}},
        headers=admin,
    )
    assert preview.status == 422 and (await preview.json())["code"] == "service_retired"


async def test_only_admins_change_the_catalogue(client, settings):
    worker = await bearer_of(client.app[CTX], "worker", station_id=(await make_station(client.app[CTX])).id)
    r = await client.post("/api/v1/services", json=NEW_SERVICE, headers=worker)
    assert r.status == 403 and (await r.json())["code"] == "role_not_allowed"
    r = await client.post("/api/v1/services", json=NEW_SERVICE)
    assert r.status == 401


async def test_invalid_service_definition_is_refused_and_nothing_stored(client, settings):
    admin = await bearer_of(client.app[CTX], "admin")
    bad = {**NEW_SERVICE, "fields": [{"code": "x", "type": "single_choice", "label_zh": "x", "label_en": "x"}]}
    r = await client.post("/api/v1/services", json=bad, headers=admin)
    assert r.status == 422
    r = await client.get("/api/v1/services/library_delivery")
    assert r.status == 404


# The built-in of an earlier release where the applicant typed their own hours.
OLD_VOLUNTEER_CERTIFICATE = {
    "code": "volunteer_certificate",
    "scenario": "social_work",
    "name_zh": "志愿服务证明开具",
    "name_en": "Volunteer service record certificate",
    "description_zh": "为在社工站参加志愿服务的人员开具志愿服务时长证明。",
    "description_en": "A certificate of volunteer hours served through the station.",
    "fields": [
        {"code": "period_from", "type": "date", "label_zh": "服务起始日期", "label_en": "From", "required": True},
        {"code": "period_to", "type": "date", "label_zh": "服务截止日期", "label_en": "To", "required": True},
        {"code": "hours", "type": "number", "label_zh": "服务时长（小时）", "label_en": "Hours", "required": True},
    ],
    "capability": "social_work",
    "sign_within_hours": 16,
    "resolve_within_days": 5,
}


async def test_seeding_retires_the_old_volunteer_entries_and_their_cases_still_read(client, settings):
    ctx = client.app[CTX]
    station = await make_station(ctx)
    worker = await make_staff(ctx, station_id=station.id)
    resident = await make_phone_resident(ctx)
    admin = await bearer_of(ctx, "admin")
    r = await client.post("/api/v1/services", json=OLD_VOLUNTEER_CERTIFICATE, headers=admin)
    assert r.status == 201, await r.text()
    filing = {
        "service_code": "volunteer_certificate",
        "answers": {"period_from": "2026-01-01", "period_to": "2026-06-30", "hours": 12},
        "division_code": station.code,
        "address": "昱东街道 新安路 1 号",
        "contact": {"name": "王芳", "phone": "13912345678"},
    }
    r = await client.post("/api/v1/cases", json=filing, headers=bearer_for(settings, resident))
    assert r.status == 201, await r.text()
    case_id = (await r.json())["id"]

    await seed_catalog(client)

    listed = await (await client.get("/api/v1/services")).json()
    codes = {s["code"] for s in listed["items"]}
    assert "volunteer_certificate" not in codes and "volunteer_project_enrolment" not in codes
    r = await client.get("/api/v1/services/volunteer_certificate")
    assert r.status == 200 and (await r.json())["active"] is False
    for who in (bearer_for(settings, resident), bearer_for(settings, worker)):
        r = await client.get(f"/api/v1/cases/{case_id}", headers=who)
        assert r.status == 200, await r.text()
        body = await r.json()
        assert body["service"]["name_zh"] == "志愿服务证明开具" and body["answers"]["hours"] == 12
    r = await client.post("/api/v1/cases", json=filing, headers=bearer_for(settings, resident))
    assert r.status == 422 and (await r.json())["code"] == "service_retired"
    await seed_catalog(client)  # seeding again changes nothing
    r = await client.get("/api/v1/cases", headers=bearer_for(settings, resident))
    assert [c["id"] for c in (await r.json())["items"]] == [case_id]
