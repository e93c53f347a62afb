"""Test data made through the real code paths: the service functions, repositories and API.

Every id here comes from the code that makes ids in production (``service.common.ids.new_id`` via
the repositories), so a test that follows a reference meets the same values a deployment
would. Never write documents or ids by hand in a test; add a factory here instead.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from datetime import date, datetime, timedelta
from typing import Any

from config import Settings
from handlers.keys import CTX
from service.alerts import devices, rota
from service.alerts.inputs import DeviceRegistration, RotaShift
from service.alerts.models import Device, RotaEntry
from service.cases import actions as case_actions
from service.cases import submit as case_submit
from service.cases.inputs import ActionInput, CaseSubmission
from service.cases.models import CaseEvent
from service.cases.repository.events import EventsRepository
from service.catalog import service as catalog
from service.catalog.seed import SEED_SERVICES
from service.catalog.service import example_answers
from service.common.context import Context
from service.common.inputs import from_given
from service.common.models import CLIENT_SCOPES, SYSTEM, Principal, utcnow
from service.common.pii import id_card_check_char
from service.identity import clients
from service.identity.accounts import ApiClient, IssuedClient, Resident, StaffMember
from service.identity.repository.residents import ResidentsRepository
from service.identity.staff import create_staff
from service.identity.tokens import issue_access_token
from service.network import service as network
from service.network.models import Document, EquipmentItem, StationNetwork, Verification
from service.stations import service as stations
from service.stations.inputs import StationRegistration
from service.stations.models import Station
from service.uploads import service as uploads
from service.uploads.service import Upload
from service.visits import elders
from service.visits import records as visit_records
from service.visits.inputs import ElderRegistration, VisitInput
from service.visits.models import Elder
from service.volunteers import activities as volunteer_activities
from service.volunteers import registration as volunteer_registration
from service.volunteers import signups as volunteer_signups
from service.volunteers.inputs import ActivityInput, VolunteerRegistration
from service.volunteers.models import Activity, Volunteer
from service.webhooks import subscriptions as webhooks
from service.webhooks.subscriptions import SubscriptionData, SubscriptionWithSecret
from service.workforce import figures, register_import, training
from service.workforce.inputs import ProgrammeInput, SessionInput

STAFF_PASSWORD = "correct-horse-battery"
# 屯溪区昱东街道 (Tunxi district, Huangshan): a real township with a real county polygon around it.
TOWNSHIP = "341002001"
TOWNSHIP_POINT = (118.34, 29.72)
ALL_CAPABILITIES = sorted({s.capability for s in SEED_SERVICES})
_serial = itertools.count(1)


def _n() -> int:
    return next(_serial)


async def make_station(
    ctx: Context,
    *,
    code: str = TOWNSHIP,
    name: str = "昱东街道社工站",
    point: tuple[float, float] = TOWNSHIP_POINT,
    capabilities: list[str] | None = None,
    precision: str = "exact",
    **extra: Any,
) -> Station:
    """A station created as an admin creates one (the catalogue is seeded first, so services exist)."""
    await catalog.seed_catalog(ctx)
    return await stations.create_station(
        ctx=ctx,
        principal=SYSTEM,
        data=from_given(
            StationRegistration,
            {
                "code": code,
                "name": name,
                "location": {"type": "Point", "coordinates": list(point)},
                "capabilities": capabilities if capabilities is not None else ALL_CAPABILITIES,
                "precision": precision,
                **extra,
            },
        ),
    )


async def township_station_id(ctx: Context) -> str:
    """The id of the factories' township station, made on first use."""
    existing = await stations.station_ids_by_code(ctx=ctx, codes=[TOWNSHIP])
    return existing.get(TOWNSHIP) or (await make_station(ctx)).id


async def make_staff(
    ctx: Context,
    *,
    role: str = "worker",
    station_id: str | None = None,
    division_prefix: str | None = None,
    username: str | None = None,
    phone: str | None = None,
    name: str | None = None,
) -> StaffMember:
    """A staff account created as ``run.py create-staff`` creates one.

    A supervisor covers the factories' county unless ``division_prefix`` says otherwise; a
    worker or station head without ``station_id`` works at the factories' township station
    (made here on first use).
    """
    if role == "supervisor" and division_prefix is None:
        division_prefix = TOWNSHIP[:6]
    if role in ("worker", "station_head") and station_id is None:
        station_id = await township_station_id(ctx)
    return await create_staff(
        ctx=ctx,
        principal=SYSTEM,
        username=username or f"{role.replace('_', '-')}-{_n()}",
        password=STAFF_PASSWORD,
        role=role,
        name=name,
        station_id=station_id,
        division_prefix=division_prefix,
        phone=phone,
    )


async def make_wechat_resident(ctx: Context, *, openid: str | None = None) -> Resident:
    """A resident as the WeChat login creates one (jscode2session gave this openid)."""
    return await ResidentsRepository(ctx.db).upsert_wechat(
        openid=openid or f"o-test-{_n():06d}", unionid=None, session_key="session-key", now=utcnow()
    )


async def make_phone_resident(ctx: Context, *, phone: str | None = None) -> Resident:
    """A resident as the SMS-code login creates one."""
    return await ResidentsRepository(ctx.db).upsert_phone(phone=phone or f"139{_n():08d}", now=utcnow())


def principal_of_staff(member: StaffMember) -> Principal:
    """The principal a staff login gives this account."""
    return Principal(
        subject=member.id,
        role=member.role,
        station_id=member.station_id,
        division_prefix=member.division_prefix,
    )


def principal_of_resident(resident: Resident) -> Principal:
    """The principal a resident login gives this person."""
    return Principal(subject=resident.id, role="resident")


def principal_of_client(client: ApiClient | IssuedClient) -> Principal:
    """The principal the client-credentials grant gives this client (all its scopes)."""
    if isinstance(client, IssuedClient):
        client = client.client
    return Principal(subject=client.client_id, role="client", scopes=frozenset(client.scopes))


Who = StaffMember | Resident | ApiClient | IssuedClient | Principal


def principal_of(who: Who) -> Principal:
    """The principal of any account the factories make (a Principal is passed through)."""
    if isinstance(who, StaffMember):
        return principal_of_staff(who)
    if isinstance(who, Resident):
        return principal_of_resident(who)
    if isinstance(who, ApiClient | IssuedClient):
        return principal_of_client(who)
    return who


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of an access token the API gave."""
    return {"Authorization": f"Bearer {token}"}


async def login(client: Any, username: str, password: str = STAFF_PASSWORD) -> dict[str, Any]:
    """Log staff in through the API; returns the token response."""
    resp = await client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def admin_token(client: Any) -> str:
    """An access token of a new administrator ``root``, logged in through the API."""
    await make_staff(client.app[CTX], role="admin", username="root")
    return str((await login(client, "root"))["access_token"])


def bearer_for(settings: Settings, who: Who) -> dict[str, str]:
    """An Authorization header for an account made by the factories above."""
    token, _ = issue_access_token(settings=settings, principal=principal_of(who), now=utcnow())
    return {"Authorization": f"Bearer {token}"}


async def make_client(
    ctx: Context,
    *,
    scopes: tuple[str, ...] = ("cases:read", "cases:write"),
    name: str | None = None,
    rate_limit_per_minute: int = 600,
    division_prefix: str | None = None,
) -> IssuedClient:
    """An integrator client registered as an admin registers one (the secret is in the answer)."""
    return await clients.create_client(
        ctx=ctx,
        principal=SYSTEM,
        name=name or f"接入系统 {_n()}",
        scopes=list(scopes),
        rate_limit_per_minute=rate_limit_per_minute,
        division_prefix=division_prefix,
    )


async def make_webhook(
    ctx: Context, client: ApiClient | IssuedClient, *, event_types: tuple[str, ...] = ("*",)
) -> SubscriptionWithSecret:
    """A webhook subscription the client (holding webhooks:manage) registers for its own URL (with its secret)."""
    return await webhooks.create_subscription(
        ctx=ctx,
        principal=principal_of_client(client),
        data=SubscriptionData(url=f"https://hooks-{_n()}.example.com/huimin", event_types=list(event_types)),
    )


class Accounts:
    """One real account per role, made on first use (``bearer`` gives its Authorization header).

    Workers and station heads belong to one station made here; the supervisor covers the
    factories' township; clients hold every scope unless ``scopes`` says otherwise.
    """

    def __init__(self, ctx: Context, settings: Settings, *, client_rate_limit: int = 600) -> None:
        self.ctx = ctx
        self.settings = settings
        self.client_rate_limit = client_rate_limit
        self._made: dict[tuple[str, tuple[str, ...] | None], Who] = {}
        self._station: Station | None = None

    async def of(self, role: str, *, scopes: tuple[str, ...] | None = None) -> Who:
        """The account of ``role`` (a client with exactly ``scopes`` when given)."""
        key = (role, scopes if role == "client" else None)
        if key not in self._made:
            self._made[key] = await self._make(role, scopes)
        return self._made[key]

    async def bearer(self, role: str, *, scopes: tuple[str, ...] | None = None) -> dict[str, str]:
        """An Authorization header of the account of ``role``."""
        return bearer_for(self.settings, await self.of(role, scopes=scopes))

    async def _make(self, role: str, scopes: tuple[str, ...] | None) -> Who:
        if role == "resident":
            return await make_wechat_resident(self.ctx)
        if role == "client":
            return await make_client(
                self.ctx,
                scopes=tuple(CLIENT_SCOPES) if scopes is None else scopes,
                rate_limit_per_minute=self.client_rate_limit,
            )
        station_id = None
        if role in ("worker", "station_head"):
            if self._station is None:
                self._station = await make_station(self.ctx)
            station_id = self._station.id
        return await make_staff(self.ctx, role=role, station_id=station_id)


async def account_of(
    ctx: Context,
    role: str,
    *,
    station_id: str | None = None,
    division_prefix: str | None = None,
    scopes: tuple[str, ...] | None = None,
) -> Who:
    """A new real account of ``role``.

    A resident logs in by WeChat; a client holds ``scopes`` (every client scope when not
    given); staff are created as ``run.py create-staff`` creates them, a supervisor over
    ``division_prefix`` (the factories' county when not given) and a worker or station head at
    ``station_id``.
    """
    if role == "resident":
        return await make_wechat_resident(ctx)
    if role == "client":
        return await make_client(ctx, scopes=tuple(CLIENT_SCOPES) if scopes is None else tuple(scopes))
    return await make_staff(ctx, role=role, station_id=station_id, division_prefix=division_prefix)


async def bearer_of(
    ctx: Context,
    role: str,
    *,
    station_id: str | None = None,
    division_prefix: str | None = None,
    scopes: tuple[str, ...] | None = None,
) -> dict[str, str]:
    """An Authorization header of a new real account of ``role`` (see :func:`account_of`)."""
    who = await account_of(ctx, role, station_id=station_id, division_prefix=division_prefix, scopes=scopes)
    return bearer_for(ctx.settings, who)


async def case_body(
    ctx: Context, *, service_code: str = "elderly_home_visit", division_code: str = TOWNSHIP
) -> dict[str, Any]:
    """A valid filing body for a service, answered with the catalogue's example answers."""
    service = await catalog.get_service(ctx=ctx, code=service_code)
    return {
        "service_code": service_code,
        "answers": example_answers(service),
        "division_code": division_code,
        "address": "昱东街道 新安路 1 号",
        "contact": {"name": "王芳", "phone": "13912345678"},
    }


async def make_case(ctx: Context, who: Who, **body_options: Any) -> dict[str, Any]:
    """A case filed through the service's submit function by ``who``; returns the case as they see it.

    ``body_options`` are ``service_code`` / ``division_code`` for :func:`case_body`; any other key
    replaces or adds a field of the filing (``description``, ``contact``, ``urgent`` ...). Needs a
    station in the division's county (:func:`make_station`); when none there offers the service,
    the case is ``unrouted``. Cases opened from a home visit come from ``service.visits.records.record_visit``.
    """
    body = await case_body(
        ctx, **{k: body_options.pop(k) for k in ("service_code", "division_code") if k in body_options}
    )
    fields = {**body, **body_options}
    data = CaseSubmission(**{**fields, "photos": tuple(fields.get("photos") or ())})
    return await case_submit.submit_case(ctx=ctx, principal=principal_of(who), data=data)


async def act_on(ctx: Context, who: Who, case_id: str, action: str, **data: Any) -> dict[str, Any]:
    """Take one lifecycle action through the service's act function; returns the case as ``who`` sees it.

    ``data`` are the action's fields as the schema loads them (``scheduled_at`` a datetime).
    """
    fields = ActionInput(**{**data, "photos": tuple(data.get("photos") or ())})
    return await case_actions.act(ctx=ctx, principal=principal_of(who), case_id=case_id, action=action, data=fields)


async def events_of(ctx: Context, case_id: str) -> list[CaseEvent]:
    """A case's events in the order they were written, read the way outbox consumers read them."""
    repo, out, last = EventsRepository(ctx.db), [], None
    while batch := await repo.after(last, limit=500):
        out += [e for e in batch if e.case_id == case_id]
        last = batch[-1].id
    return out


async def events_about(ctx: Context, kind: str, subject_id: str) -> list[CaseEvent]:
    """The events of one subject (a case, or another area's record: ``certificate``, ``attendance`` ...) in order."""
    repo, out, last = EventsRepository(ctx.db), [], None
    while batch := await repo.after(last, limit=500):
        out += [e for e in batch if (e.subject.kind, e.subject.id) == (kind, subject_id)]
        last = batch[-1].id
    return out


async def make_elder(ctx: Context, *, township: str = TOWNSHIP, by: Who = SYSTEM, **fields: Any) -> Elder:
    """A person put on the visit register as staff register one (their first due visit is scheduled).

    Needs a station for ``township``. ``fields`` replace fields of the registration body.
    """
    n = _n()
    body: dict[str, Any] = {
        "name": "王秀英",
        "id_card": id_card("19400101", n % 999 + 1, region=township[:6]),
        "township": township,
        "phone": "13800138000",
        "address": "昱东街道 新安路 2 号",
        "location": {"lon": TOWNSHIP_POINT[0], "lat": TOWNSHIP_POINT[1]},
        "flags": ["alone"],
        "consent": {"given": True, "method": "written"},
        **fields,
    }
    return await elders.create_elder(ctx=ctx, principal=principal_of(by), data=from_given(ElderRegistration, body))


async def make_visit(
    ctx: Context, who: Who, elder_id: str, *, method: str = "home", reached: bool = True, minutes_ago: int = 5
) -> dict[str, Any]:
    """A visit recorded as a visitor (or, method ``ai_call``, a calling platform) records one."""
    return await visit_records.record_visit(
        ctx=ctx,
        principal=principal_of(who),
        data=VisitInput(
            elder_id=elder_id, method=method, visited_at=ctx.now() - timedelta(minutes=minutes_ago), reached=reached
        ),
    )


async def file_case(client: Any, settings: Settings, resident: Resident, **body_options: Any) -> dict[str, Any]:
    """A case filed by a resident through the API; returns the 201 answer."""
    body = await case_body(client.app[CTX], **body_options)
    resp = await client.post("/api/v1/cases", json=body, headers=bearer_for(settings, resident))
    payload = await resp.json()
    assert resp.status == 201, payload
    return dict(payload)


async def act(
    client: Any,
    settings: Settings,
    who: Who | dict[str, str],
    case_id: str,
    action: str,
    body: Any = None,
) -> dict[str, Any]:
    """Take one lifecycle action through the API; asserts it succeeded and returns the case."""
    headers = who if isinstance(who, dict) else bearer_for(settings, who)
    resp = await client.post(f"/api/v1/cases/{case_id}/{action}", json=body or {}, headers=headers)
    payload = await resp.json()
    assert resp.status == 200, payload
    return dict(payload)


async def make_volunteer(
    ctx: Context, *, resident: Resident | None = None, township: str = TOWNSHIP, **fields: Any
) -> tuple[Resident, Volunteer]:
    """A resident who registered as a volunteer from the resident app (a new resident unless given)."""
    n = _n()
    resident = resident or await make_phone_resident(ctx)
    body: dict[str, Any] = {
        "name": "李志愿",
        "id_card": id_card("19900101", n % 999 + 1, region=township[:6]),
        "phone": f"137{n:08d}",
        "skills": ["companionship"],
        "township": township,
        **fields,
    }
    data = VolunteerRegistration(**{**body, "skills": tuple(body["skills"])})
    volunteer = await volunteer_registration.register_volunteer(ctx=ctx, principal=principal_of(resident), data=data)
    return resident, volunteer


async def make_activity(ctx: Context, organiser: Who, **fields: Any) -> Activity:
    """An activity published by ``organiser`` (station staff or a team organiser): running now, 3 hours long."""
    now = utcnow()
    body: dict[str, Any] = {
        "title": "重阳节敬老院陪伴",
        "scenario": "elderly",
        "content": "陪老人聊天、读报",
        "location": "昱东街道敬老院",
        "start_at": now - timedelta(minutes=30),
        "end_at": now + timedelta(hours=2, minutes=30),
        "slots": 10,
        **fields,
    }
    data = ActivityInput(**{**body, "skills_wanted": tuple(body.get("skills_wanted") or ())})
    return await volunteer_activities.publish_activity(ctx=ctx, principal=principal_of(organiser), data=data)


async def make_confirmed_volunteer(ctx: Context, activity: Activity, organiser: Who) -> tuple[Resident, Volunteer]:
    """A new volunteer signed up for ``activity`` and confirmed by its organiser."""
    resident, volunteer = await make_volunteer(ctx)
    signup = await volunteer_signups.sign_up(ctx=ctx, principal=principal_of(resident), activity_id=activity.id)
    await volunteer_signups.decide_signup(
        ctx=ctx, principal=principal_of(organiser), signup_id=signup.id, decision="confirm"
    )
    return resident, volunteer


def png_bytes(width: int = 4, height: int = 4) -> bytes:
    """A real, minimal RGB PNG (a photo as a phone would upload one, only smaller)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(range(width * 3)) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


async def make_photo(ctx: Context, who: Who) -> Upload:
    """An image uploaded by ``who`` through the uploads service."""

    async def chunks() -> Any:
        yield png_bytes()

    return await uploads.store_upload(ctx=ctx, principal=principal_of(who), chunks=chunks(), filename="photo.png")


async def keep_network_record(ctx: Context, station: Station, by: Who, **changes: Any) -> StationNetwork:
    """A station's construction record changed as ``by`` changes it (``changes`` in the API's shape,
    equipment and documents as dataclasses)."""
    return await network.update_station_network(
        ctx=ctx, principal=principal_of(by), station_id=station.id, changes=changes
    )


async def make_compliant_station(ctx: Context, station: Station, head: StaffMember, **changes: Any) -> StationNetwork:
    """A station whose head recorded all six haves (a worker account gives it staff); ``changes`` override."""
    await make_staff(ctx, role="worker", station_id=station.id)
    photo = await make_photo(ctx, head)
    scan = await make_photo(ctx, head)
    record: dict[str, Any] = {
        "status": "operating",
        "dates": {"built": date(2024, 3, 1), "operating": date(2024, 5, 20)},
        "site": {"address": "新安路 8 号", "floor_area_m2": 120.0, "photos": [photo.id]},
        "equipment": [EquipmentItem("办公电脑", 2)],
        "workflows": [Document("个案服务流程", date(2024, 5, 1), (scan.id,))],
        "rules": [Document("社工站工作制度", date(2024, 5, 1), (scan.id,))],
        **changes,
    }
    return await keep_network_record(ctx, station, head, **record)


async def verify_network_record(ctx: Context, station: Station, by: Who, outcome: str = "approved") -> Verification:
    """A supervisor's sign-off (or return, with a note) of the station's current record."""
    return await network.verify_station_network(
        ctx=ctx,
        principal=principal_of(by),
        station_id=station.id,
        outcome=outcome,
        note=None if outcome == "approved" else "请补充材料。",
    )


# ---------------------------------------------------------------- the workforce register and training

REGISTER_COLUMNS = (
    "name",
    "id_card",
    "employer_kind",
    "division",
    "role",
    "start_date",
    "occupation",
    "qualification_level",
    "certificate_no",
    "employer_name",
    "status",
    "end_date",
    "phone",
    "staff_id",
)


def csv_text(columns: tuple[str, ...] | list[str], rows: list[dict[str, Any]]) -> bytes:
    """A CSV file (UTF-8) with these columns; values missing from a row are left empty."""
    lines = [",".join(columns)]
    lines += [",".join(str(row.get(c, "") if row.get(c) is not None else "") for c in columns) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def worker_row(seq: int, **fields: Any) -> dict[str, Any]:
    """A valid register CSV row: a frontline social worker at the station of ``TOWNSHIP`` unless told."""
    return {
        "name": f"社工{seq}",
        "id_card": id_card("19900101", seq, region="341002"),
        "employer_kind": "station",
        "division": TOWNSHIP,
        "role": "frontline",
        "start_date": "2023-01-01",
        **fields,
    }


async def import_register(ctx: Context, rows: list[dict[str, Any]], *, by: Who = SYSTEM, dry_run: bool = False) -> Any:
    """Rows put on the workforce register through the register's CSV import (all or nothing)."""
    return await register_import.import_people(
        ctx=ctx,
        principal=principal_of(by),
        body=csv_text(REGISTER_COLUMNS, rows),
        content_type="text/csv",
        dry_run=dry_run,
    )


async def make_training_session(
    ctx: Context,
    *,
    category: str = "certified",
    tier: str = "beginner",
    starts_on: str = "2025-04-01",
    ends_on: str = "2025-04-03",
    by: Who = SYSTEM,
) -> Any:
    """A programme of ``category`` and one session of it, as an organiser adds them."""
    programme = await training.create_programme(
        ctx=ctx,
        principal=principal_of(by),
        data=ProgrammeInput(name=f"{category} 培训班 {_n()}", category=category, tier=tier),
    )
    return await training.create_session(
        ctx=ctx,
        principal=principal_of(by),
        programme_id=programme.id,
        data=SessionInput(
            starts_on=date.fromisoformat(starts_on),
            ends_on=date.fromisoformat(ends_on),
            place="合肥市 省民政厅培训中心",
            hours=24.0,
            trainer="王教授",
        ),
    )


async def import_training_records(
    ctx: Context, session_id: str, rows: list[dict[str, Any]], *, by: Who = SYSTEM, dry_run: bool = False
) -> Any:
    """A session's attendance and results sheet, through the training-record CSV import."""
    return await training.import_records(
        ctx=ctx,
        principal=principal_of(by),
        session_id=session_id,
        body=csv_text(("id_card", "status", "attended_hours", "completed_on"), rows),
        content_type="text/csv",
        dry_run=dry_run,
    )


async def import_reference_figures(ctx: Context, rows: list[dict[str, Any]], *, dry_run: bool = False) -> Any:
    """Reference figures (older population, care-home beds) as an administrator imports them."""
    return await figures.import_figures(
        ctx=ctx,
        principal=SYSTEM,
        body=csv_text(("division", "year", "older_population", "care_home_beds", "source"), rows),
        content_type="text/csv",
        dry_run=dry_run,
    )


async def make_vendor(
    ctx: Context,
    *,
    scopes: tuple[str, ...] = ("alerts:write", "visits:write", "cases:read"),
    name: str | None = None,
    division_prefix: str | None = "34",
) -> IssuedClient:
    """A device or AI-calling vendor's integrator client, registered as an admin registers one (its territory
    the whole province unless given)."""
    return await make_client(ctx, scopes=scopes, name=name or f"设备厂商 {_n()}", division_prefix=division_prefix)


async def make_device(
    ctx: Context,
    elder: Elder,
    vendor: ApiClient | IssuedClient,
    *,
    type: str = "sos_button",
    vendor_device_id: str | None = None,
    by: Who = SYSTEM,
    **fields: Any,
) -> Device:
    """A device on the register, linked to ``elder`` and reported by ``vendor``, as station staff register one."""
    client = vendor.client if isinstance(vendor, IssuedClient) else vendor
    return await devices.register_device(
        ctx=ctx,
        principal=principal_of(by),
        data=DeviceRegistration(
            **{
                "elder_id": elder.id,
                "type": type,
                "vendor_client_id": client.client_id,
                "vendor_device_id": vendor_device_id or f"DEV-{_n():06d}",
                "location_note": "卧室床头 bedside",
                "installed_by": "厂商安装员",
                **fields,
            }
        ),
    )


async def make_rota_entry(
    ctx: Context,
    member: StaffMember,
    *,
    phone: str | None = None,
    starts_at: datetime | None = None,
    hours: float = 24,
    by: Who = SYSTEM,
) -> RotaEntry:
    """Put ``member`` on duty at their station (from ``starts_at``, default an hour ago, for ``hours``)."""
    start = starts_at or utcnow() - timedelta(hours=1)
    data = RotaShift(staff_id=member.id, starts_at=start, ends_at=start + timedelta(hours=hours), phone=phone or None)
    assert member.station_id
    return await rota.add_rota_entry(ctx=ctx, principal=principal_of(by), station_id=member.station_id, data=data)


def alert_body(device: Device, *, type: str = "sos", alert_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A vendor's alert for a registered device, as POST /api/v1/alerts takes it (JSON-ready)."""
    return {
        "alert_id": alert_id or f"ALM-{_n():08d}",
        "type": type,
        "device_id": device.vendor_device_id,
        "occurred_at": utcnow().isoformat(),
        "details": {"message": "按下紧急按钮 button pressed"},
        **fields,
    }


# ---------------------------------------------------------------- the visit programme's stations and people

# Two stations in one Hefei county, one in another Hefei county, one in Huangshan.
STATIONS = (
    ("340102001", "明光路街道社工站", 117.304, 31.860),
    ("340102002", "三里街街道社工站", 117.310, 31.870),
    ("340104001", "五里墩街道社工站", 117.230, 31.850),
    ("341021103", "富堨镇社工站", 118.430, 29.860),
)


def id_card(born: str = "19400101", seq: int = 1, region: str = "340102") -> str:
    """A valid 18-character ID number (GB 11643 check digit) for a birth date YYYYMMDD."""
    first17 = f"{region}{born}{seq:03d}"
    return first17 + id_card_check_char(first17)


async def seed_stations(ctx: Any) -> dict[str, str]:
    """Create the test stations; returns township code -> station id."""
    out = {}
    for code, name, lon, lat in STATIONS:
        station = await stations.create_station(
            ctx=ctx,
            principal=SYSTEM,
            data=from_given(
                StationRegistration,
                {"code": code, "name": name, "location": {"type": "Point", "coordinates": [lon, lat]}},
            ),
        )
        out[code] = station.id
    return out


def elder_body(township: str = "340102001", *, seq: int = 1, born: str = "19400101", **kw: Any) -> dict[str, Any]:
    """A valid create body."""
    body: dict[str, Any] = {
        "name": kw.pop("name", "王秀英"),
        "id_card": id_card(born, seq),
        "township": township,
        "phone": "13800138000",
        "address": "合肥市瑶海区明光路1号",
        "location": {"lon": 117.304, "lat": 31.86},
        "flags": ["alone"],
        "consent": {"given": True, "method": "written"},
    }
    body.update(kw)
    return body


def age_born(years: int, today: date | None = None) -> str:
    """A YYYYMMDD birth date for someone ``years`` old today."""
    today = today or date.today()
    return f"{today.year - years:04d}0101"
