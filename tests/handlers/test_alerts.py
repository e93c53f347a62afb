"""Device alerts end to end: the real app, its loops, the MongoDB-wire server, Redis and the SMS stand-in.

Stations, staff, people on the register, vendors and devices come from ``tests/factories.py``;
the SMS gateway is the local stand-in of ``tests/fakes``. Nothing of our own is mocked: the
app's clock is moved where the test needs 03:00 or minutes to pass.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest

from config import Settings
from handlers.keys import CTX
from run import create_app
from service.alerts.models import Device
from service.identity.accounts import IssuedClient, StaffMember
from service.visits.models import Elder
from service.webhooks.delivery import deliver_once
from tests.factories import (
    TOWNSHIP,
    alert_body,
    bearer_for,
    make_device,
    make_elder,
    make_rota_entry,
    make_staff,
    make_station,
    make_vendor,
)
from tests.fakes.sms import FakeSms
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers_webhooks import subscribe

SHANGHAI = ZoneInfo("Asia/Shanghai")
T = TypeVar("T")
ON_DUTY_PHONE = "13700000001"
OFF_DUTY_PHONE = "13700000002"
HEAD_PHONE = "13700000003"
COUNTY_PHONE = "13700000004"
# Steps of this test's county: minutes after the alert, while nobody has signed for it.
RULES = """
[counties.default]
name = "default"
machine_calls_count = false
escalation = [{ after_minutes = 30, to = "county" }]

[counties.341002]
name = "屯溪区"
machine_calls_count = false
escalation = [
  { after_minutes = 3, to = "station_head" },
  { after_minutes = 8, to = "county" },
]
"""


async def eventually(probe: Callable[[], Awaitable[T]], *, within: float = 8.0, what: str = "") -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def rules_file(tmp_path: Path) -> str:
    path = tmp_path / "county_rules.toml"
    path.write_text(RULES, encoding="utf-8")
    return str(path)


@pytest.fixture
def live_settings(settings: Settings, sms: FakeSms, rules_file: str) -> Settings:
    """The app as deployed: loops on, the SMS gateway at its stand-in, quiet hours 21:00-08:00."""
    return settings.replace(
        background_tasks=True,
        sms_sender="http",
        sms_api_base=sms.url,
        notify_poll_seconds=0.05,
        notify_retry_base_seconds=0.01,
        alert_sweep_seconds=0.05,
        quiet_hours="21:00-08:00",
        county_rules_file=rules_file,
    )


class World:
    """A station with an on-duty worker, an off-duty worker, a head, a county supervisor, a person and a device."""

    station_id: str
    on_duty: StaffMember
    off_duty: StaffMember
    head: StaffMember
    supervisor: StaffMember
    elder: Elder
    vendor: IssuedClient
    device: Device


async def _world(ctx: Any, *, rota: bool = True) -> World:
    w = World()
    station = await make_station(ctx)
    w.station_id = station.id
    w.on_duty = await make_staff(ctx, station_id=station.id, phone="13800000001")
    w.off_duty = await make_staff(ctx, station_id=station.id, phone=OFF_DUTY_PHONE)
    w.head = await make_staff(ctx, role="station_head", station_id=station.id, phone=HEAD_PHONE)
    w.supervisor = await make_staff(ctx, role="supervisor", division_prefix=TOWNSHIP[:6], phone=COUNTY_PHONE)
    w.elder = await make_elder(ctx)
    w.vendor = await make_vendor(ctx)
    w.device = await make_device(ctx, w.elder, w.vendor)
    if rota:
        await make_rota_entry(ctx, w.on_duty, phone=ON_DUTY_PHONE, starts_at=ctx.now() - timedelta(hours=2))
    return w


async def _post(client: Any, settings: Settings, vendor: IssuedClient, body: dict[str, Any]) -> tuple[int, Any]:
    resp = await client.post("/api/v1/alerts", json=body, headers=bearer_for(settings, vendor))
    return resp.status, await resp.json()


async def _case(client: Any, settings: Settings, who: StaffMember, case_id: str) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/cases/{case_id}", headers=bearer_for(settings, who))
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


def _last_3am() -> datetime:
    """The last 03:00 in Shanghai before now (the loops read events from an hour before their clock)."""
    local = datetime.now(SHANGHAI)
    night = local.replace(hour=3, minute=0, second=0, microsecond=0)
    if night > local:
        night -= timedelta(days=1)
    return night.astimezone(UTC)


# ---------------------------------------------------------------- urgent alerts


async def test_sos_opens_an_urgent_case_at_the_persons_station_within_a_second(client: Any, settings: Settings) -> None:
    ctx = client.app[CTX]
    w = await _world(ctx)
    # A process's first routing loads the division table once (~0.6 s); the promise is about a running server.
    warm = await make_device(ctx, await make_elder(ctx), w.vendor)
    assert (await _post(client, settings, w.vendor, alert_body(warm, type="sos")))[0] == 201
    started = time.perf_counter()
    status, alert = await _post(client, settings, w.vendor, alert_body(w.device, type="sos"))
    elapsed = time.perf_counter() - started
    assert status == 201, alert
    assert elapsed < 1.0, f"intake took {elapsed:.3f} s"
    assert alert["outcome"] == "case_opened" and alert["case_id"]
    case = await _case(client, settings, w.on_duty, alert["case_id"])
    assert case["status"] == "dispatched"
    assert case["station_id"] == w.station_id == w.elder.station_id
    assert case["service"]["code"] == "elderly_emergency"
    assert case["service"]["urgent"] is True and case["service"]["clock"] == "calendar"
    assert case["source"]["channel"] == "device" and case["source"]["alert_id"] == alert["id"]
    # Calendar time around the clock: the sign-for limit is an elapsed hour, never "next working morning".
    created = datetime.fromisoformat(case["created_at"])
    assert datetime.fromisoformat(case["sign_due_at"]) - created == timedelta(hours=1)
    assert alert["escalation"]["level"] == 0 and alert["escalation"]["next_at"]


async def test_on_duty_worker_is_texted_at_3am_despite_quiet_hours(
    aiohttp_client: Any, live_settings: Settings, sms: FakeSms
) -> None:
    client = await aiohttp_client(create_app(live_settings))
    ctx = client.app[CTX]
    night = _last_3am()
    ctx.clock = lambda: night
    w = await _world(ctx)
    status, alert = await _post(client, live_settings, w.vendor, alert_body(w.device, type="fall"))
    assert status == 201, alert

    async def texted() -> list[dict[str, Any]]:
        return [m for m in sms.messages if m["phone"] == ON_DUTY_PHONE]

    [message] = await eventually(texted, what="the on-duty worker's SMS at 03:00")
    assert message["template"] == "huimin_staff_alert"
    assert "跌倒" in message["params"]["title"] + message["params"]["body"]
    # The rota decides who is woken: the off-duty worker is not texted.
    await asyncio.sleep(0.3)
    assert not [m for m in sms.messages if m["phone"] == OFF_DUTY_PHONE]


async def test_unsigned_alert_escalates_to_the_head_then_the_county_after_the_configured_steps(
    aiohttp_client: Any, live_settings: Settings, sms: FakeSms
) -> None:
    client = await aiohttp_client(create_app(live_settings))
    ctx = client.app[CTX]
    start = _last_3am()
    clock = {"now": start}
    ctx.clock = lambda: clock["now"]
    w = await _world(ctx)
    status, alert = await _post(client, live_settings, w.vendor, alert_body(w.device, type="smoke"))
    assert status == 201, alert

    def to(phone: str) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
        async def probe() -> list[dict[str, Any]]:
            return [m for m in sms.messages if m["phone"] == phone]

        return probe

    await eventually(to(ON_DUTY_PHONE), what="the first notice")
    clock["now"] = start + timedelta(minutes=2, seconds=50)  # before the first step (3 minutes)
    await asyncio.sleep(0.4)
    assert not await to(HEAD_PHONE)()

    clock["now"] = start + timedelta(minutes=3, seconds=1)
    [head_sms] = await eventually(to(HEAD_PHONE), what="the station head's SMS after 3 minutes")
    assert "升级" in head_sms["params"]["title"]
    assert not await to(COUNTY_PHONE)()

    clock["now"] = start + timedelta(minutes=8, seconds=1)
    await eventually(to(COUNTY_PHONE), what="the county supervisor's SMS after 8 minutes")
    resp = await client.get(f"/api/v1/alerts/{alert['id']}", headers=bearer_for(live_settings, w.head))
    record = await resp.json()
    assert record["escalation"]["level"] == 2 and record["escalation"]["done"] is True
    assert [h["to"] for h in record["escalation"]["history"]] == ["station_head", "county"]
    # One text per step, not one per sweep.
    await asyncio.sleep(0.3)
    assert len(await to(HEAD_PHONE)()) == 1 and len(await to(COUNTY_PHONE)()) == 1


async def test_signing_for_the_case_stops_the_escalation(
    aiohttp_client: Any, live_settings: Settings, sms: FakeSms
) -> None:
    client = await aiohttp_client(create_app(live_settings))
    ctx = client.app[CTX]
    start = _last_3am()
    clock = {"now": start}
    ctx.clock = lambda: clock["now"]
    w = await _world(ctx)
    _, alert = await _post(client, live_settings, w.vendor, alert_body(w.device, type="sos"))
    resp = await client.post(
        f"/api/v1/cases/{alert['case_id']}/accept", json={}, headers=bearer_for(live_settings, w.on_duty)
    )
    assert resp.status == 200, await resp.text()
    clock["now"] = start + timedelta(minutes=20)

    async def stopped() -> bool:
        resp = await client.get(f"/api/v1/alerts/{alert['id']}", headers=bearer_for(live_settings, w.head))
        esc = (await resp.json())["escalation"]
        return bool(esc["done"] and esc["reason"] == "case_accepted")

    await eventually(stopped, what="the ladder stopping once signed for")
    await asyncio.sleep(0.3)
    assert not [m for m in sms.messages if m["phone"] in (HEAD_PHONE, COUNTY_PHONE)]


async def test_twenty_repeats_of_an_alert_make_one_case(client: Any, settings: Settings) -> None:
    w = await _world(client.app[CTX])
    bodies = [alert_body(w.device, type="sos") for _ in range(20)]
    results = await asyncio.gather(*(_post(client, settings, w.vendor, b) for b in bodies))
    assert all(status == 201 for status, _ in results), results
    outcomes = sorted(a["outcome"] for _, a in results)
    assert outcomes == ["case_opened"] + ["collapsed"] * 19
    [first] = [a for _, a in results if a["outcome"] == "case_opened"]
    resp = await client.get("/api/v1/cases?service=elderly_emergency", headers=bearer_for(settings, w.head))
    assert [c["id"] for c in (await resp.json())["items"]] == [first["case_id"]]
    resp = await client.get(f"/api/v1/alerts/{first['id']}", headers=bearer_for(settings, w.head))
    assert (await resp.json())["repeats"] == 19
    # The very same alert sent again is the same record (200), not a repeat.
    status, again = await _post(client, settings, w.vendor, bodies[0])
    assert status == 200 and again["id"] == results[0][1]["id"]


async def test_alert_id_reused_with_other_content_is_refused(client: Any, settings: Settings) -> None:
    w = await _world(client.app[CTX])
    body = alert_body(w.device, type="sos")
    assert (await _post(client, settings, w.vendor, body))[0] == 201
    status, problem = await _post(client, settings, w.vendor, {**body, "type": "fall"})
    assert status == 422 and problem["code"] == "alert_id_reused"


async def test_fall_alert_for_an_unregistered_device_is_refused_and_recorded_for_the_vendor(
    client: Any, settings: Settings
) -> None:
    w = await _world(client.app[CTX])
    body = {**alert_body(w.device, type="fall"), "device_id": "NOT-ON-REGISTER-1"}
    status, problem = await _post(client, settings, w.vendor, body)
    assert status == 422, problem
    assert problem["code"] == "device_not_registered"
    assert "NOT-ON-REGISTER-1" in problem["detail"] and problem["errors"]["device_id"]
    resp = await client.get("/api/v1/alerts?outcome=refused", headers=bearer_for(settings, w.vendor))
    [kept] = (await resp.json())["items"]
    assert kept["id"] == problem["alert_id"] and kept["refusal"]["code"] == "device_not_registered"
    assert kept["device_id"] == "NOT-ON-REGISTER-1" and kept["case_id"] is None
    # No case was opened, and station staff do not see the refused alert on their board.
    resp = await client.get("/api/v1/cases", headers=bearer_for(settings, w.head))
    assert (await resp.json())["items"] == []
    resp = await client.get("/api/v1/alerts", headers=bearer_for(settings, w.head))
    assert (await resp.json())["items"] == []


async def test_another_vendors_device_counts_as_unregistered(client: Any, settings: Settings) -> None:
    w = await _world(client.app[CTX])
    other = await make_vendor(client.app[CTX])
    status, problem = await _post(client, settings, other, alert_body(w.device, type="sos"))
    assert status == 422 and problem["code"] == "device_not_registered"


async def test_only_vendor_clients_with_the_alerts_scope_report_alerts(client: Any, settings: Settings) -> None:
    w = await _world(client.app[CTX])
    plain = await make_vendor(client.app[CTX], scopes=("cases:write",))
    resp = await client.post("/api/v1/alerts", json=alert_body(w.device), headers=bearer_for(settings, plain))
    assert resp.status == 403 and (await resp.json())["code"] == "insufficient_scope"
    resp = await client.post("/api/v1/alerts", json=alert_body(w.device), headers=bearer_for(settings, w.head))
    assert resp.status == 403


# ---------------------------------------------------------------- no activity, maintenance


async def test_no_activity_puts_a_check_up_due_today_on_the_due_list(client: Any, settings: Settings) -> None:
    ctx = client.app[CTX]
    w = await _world(ctx)
    meter = await make_device(ctx, w.elder, w.vendor, type="water_meter")
    status, alert = await _post(client, settings, w.vendor, alert_body(meter, type="no_activity"))
    assert status == 201 and alert["outcome"] == "checkup_due", alert
    resp = await client.get("/api/v1/visits/due", headers=bearer_for(settings, w.on_duty))
    due = [d for d in (await resp.json())["items"] if d["period"].startswith("checkup-")]
    [checkup] = due
    assert checkup["elder_id"] == w.elder.id
    today = datetime.now(SHANGHAI).date()
    assert checkup["period"] == f"checkup-{today.isoformat()}"
    assert datetime.fromisoformat(checkup["due_by"]).astimezone(SHANGHAI).date() == today + timedelta(days=1)
    # A second no-activity alert the same day collapses into the same check-up.
    status, again = await _post(client, settings, w.vendor, alert_body(meter, type="no_activity"))
    assert again["outcome"] == "collapsed" and again["checkup_id"] == alert["checkup_id"]
    # A visit that reaches the person takes it off the due list.
    visit = {"elder_id": w.elder.id, "method": "home", "visited_at": datetime.now(UTC).isoformat(), "reached": True}
    resp = await client.post("/api/v1/visits", json=visit, headers=bearer_for(settings, w.on_duty))
    assert resp.status == 201, await resp.text()
    resp = await client.get("/api/v1/visits/due", headers=bearer_for(settings, w.on_duty))
    assert not [d for d in (await resp.json())["items"] if d["period"].startswith("checkup-")]


async def test_low_battery_and_offline_go_to_the_maintenance_list(client: Any, settings: Settings) -> None:
    w = await _world(client.app[CTX])
    for kind in ("low_battery", "low_battery", "offline"):
        status, alert = await _post(client, settings, w.vendor, alert_body(w.device, type=kind))
        assert status == 201 and alert["maintenance_id"], alert
    resp = await client.get("/api/v1/maintenance", headers=bearer_for(settings, w.on_duty))
    items = {i["kind"]: i for i in (await resp.json())["items"]}
    assert set(items) == {"low_battery", "offline"} and items["low_battery"]["count"] == 2
    resp = await client.post(
        f"/api/v1/maintenance/{items['offline']['id']}/done", json={}, headers=bearer_for(settings, w.on_duty)
    )
    assert resp.status == 200 and (await resp.json())["status"] == "done"
    resp = await client.get("/api/v1/maintenance", headers=bearer_for(settings, w.on_duty))
    assert [i["kind"] for i in (await resp.json())["items"]] == ["low_battery"]
    # No case for maintenance.
    resp = await client.get("/api/v1/cases", headers=bearer_for(settings, w.head))
    assert (await resp.json())["items"] == []


# ---------------------------------------------------------------- devices and rota


async def test_worker_of_another_station_cannot_register_a_device_for_the_person(
    client: Any, settings: Settings
) -> None:
    ctx = client.app[CTX]
    w = await _world(ctx)
    elsewhere = await make_station(ctx, code="341002002", name="老街街道社工站", point=(118.30, 29.71))
    stranger = await make_staff(ctx, station_id=elsewhere.id)
    body = {
        "elder_id": w.elder.id,
        "type": "fall_detector",
        "vendor_client_id": w.vendor.client.client_id,
        "vendor_device_id": "FD-1",
    }
    resp = await client.post("/api/v1/devices", json=body, headers=bearer_for(settings, stranger))
    assert resp.status == 404 and (await resp.json())["code"] == "elder_not_found"
    resp = await client.post("/api/v1/devices", json=body, headers=bearer_for(settings, w.on_duty))
    assert resp.status == 201, await resp.text()
    resp = await client.post("/api/v1/devices", json=body, headers=bearer_for(settings, w.on_duty))
    assert resp.status == 409 and (await resp.json())["code"] == "device_already_registered"


async def test_only_heads_set_the_rota_and_a_worker_of_another_station_cannot_be_on_it(
    client: Any, settings: Settings
) -> None:
    ctx = client.app[CTX]
    w = await _world(ctx, rota=False)
    now = datetime.now(UTC)
    shift = {"staff_id": w.off_duty.id, "starts_at": now.isoformat(), "ends_at": (now + timedelta(hours=8)).isoformat()}
    resp = await client.post(
        f"/api/v1/stations/{w.station_id}/rota", json=shift, headers=bearer_for(settings, w.on_duty)
    )
    assert resp.status == 403 and (await resp.json())["code"] == "rota_managers_only"
    resp = await client.post(f"/api/v1/stations/{w.station_id}/rota", json=shift, headers=bearer_for(settings, w.head))
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["phone"] == OFF_DUTY_PHONE
    bad = {**shift, "staff_id": w.supervisor.id}
    resp = await client.post(f"/api/v1/stations/{w.station_id}/rota", json=bad, headers=bearer_for(settings, w.head))
    assert resp.status == 422 and "staff_id" in (await resp.json())["errors"]
    resp = await client.get(f"/api/v1/stations/{w.station_id}/rota", headers=bearer_for(settings, w.on_duty))
    assert [e["staff_id"] for e in (await resp.json())["items"]] == [w.off_duty.id]


# ---------------------------------------------------------------- after the case, and webhooks


async def test_after_the_case_is_resolved_the_next_alert_opens_a_new_case(client: Any, settings: Settings) -> None:
    w = await _world(client.app[CTX])
    _, first = await _post(client, settings, w.vendor, alert_body(w.device, type="sos"))
    for action, body in (("accept", {}), ("resolve", {"result": "已上门，老人误触按钮 pressed by mistake"})):
        resp = await client.post(
            f"/api/v1/cases/{first['case_id']}/{action}", json=body, headers=bearer_for(settings, w.on_duty)
        )
        assert resp.status == 200, await resp.text()
    status, second = await _post(client, settings, w.vendor, alert_body(w.device, type="sos"))
    assert status == 201 and second["outcome"] == "case_opened"
    assert second["case_id"] != first["case_id"]


async def test_the_vendor_receives_alert_received_and_not_the_staff_it_notified(
    client: Any, settings: Settings
) -> None:
    ctx = client.app[CTX]
    w = await _world(ctx)
    vendor = await make_vendor(ctx, scopes=("alerts:write", "webhooks:manage"))
    device = await make_device(ctx, w.elder, vendor)
    receiver = await WebhookReceiver().start()
    try:
        await subscribe(client, bearer_for(settings, vendor), receiver.url("v"), ["alert.received"])
        _, alert = await _post(client, settings, vendor, alert_body(device, type="sos"))
        _, battery = await _post(client, settings, vendor, alert_body(device, type="low_battery"))
        while await deliver_once(ctx=ctx, worker_id="w1"):
            pass
    finally:
        await receiver.close()
    got = {r.json["data"]["alert_id"]: r.json for r in receiver.delivered("v")}
    assert set(got) == {alert["id"]}  # a low battery goes to the maintenance list, not to the events
    sos = got[alert["id"]]
    assert sos["type"] == "alert.received" and sos["case_id"] == alert["case_id"]
    assert sos["data"]["alert_type"] == "sos" and sos["data"]["device_id"] == device.vendor_device_id
    assert "notify_staff" not in sos["data"] and ON_DUTY_PHONE not in str(sos)
    assert battery["outcome"] == "maintenance_listed"
