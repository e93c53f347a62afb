"""Volunteer service (志愿服务): volunteers, teams, activities, sign-up, attendance, hours, certificates."""

from __future__ import annotations

import html
from typing import Any

from aiohttp import web

from handlers.endpoint import endpoint
from handlers.idempotency import idempotent_json
from handlers.io import json_response, read_json, read_query
from handlers.keys import CTX
from handlers.middlewares import principal_of
from schemas.volunteers import (
    ActivityCreateSchema,
    ActivityPageSchema,
    ActivityQuerySchema,
    ActivitySchema,
    AttendanceCreateSchema,
    AttendanceListSchema,
    AttendanceSchema,
    CertificateCreateSchema,
    CertificateSchema,
    CertificateVerificationSchema,
    CheckinCodeQuerySchema,
    CheckinCodeSchema,
    CheckinSchema,
    ConfirmHoursSchema,
    CorrectionRequestSchema,
    CorrectionSchema,
    MySignupListSchema,
    RecordEntryCreateSchema,
    RecordRequestCreateSchema,
    RecordRequestListSchema,
    RecordRequestQuerySchema,
    RecordRequestSchema,
    SignupCreateSchema,
    SignupDecisionSchema,
    SignupListSchema,
    SignupSchema,
    TaskFromCaseSchema,
    TeamCreateSchema,
    TeamListSchema,
    TeamQuerySchema,
    TeamSchema,
    VerifyQuerySchema,
    VolunteerCreateSchema,
    VolunteerKpiQuerySchema,
    VolunteerKpiSchema,
    VolunteerPageSchema,
    VolunteerQuerySchema,
    VolunteerReasonSchema,
    VolunteerRecordSchema,
    VolunteerSchema,
)
from service.common.context import Context
from service.volunteers import activities as volunteer_activities
from service.volunteers import attendance as volunteer_attendance
from service.volunteers import certificates as volunteer_certificates
from service.volunteers import hours as volunteer_hours
from service.volunteers import kpis as volunteers_kpis
from service.volunteers import record_requests as volunteer_record_requests
from service.volunteers import records as volunteer_records
from service.volunteers import registration as volunteer_registration
from service.volunteers import signups as volunteer_signups
from service.volunteers import tasks as volunteer_tasks
from service.volunteers import teams as volunteer_teams

routes = web.RouteTableDef()
TAGS = ("volunteers",)
STAFF = ("worker", "station_head", "supervisor", "admin")
STATION = ("worker", "station_head", "admin")
PEOPLE = ("resident", "worker", "station_head", "supervisor", "admin")
# Residents organise too: a team's organisers are volunteers (the service checks who organises what).
ORGANISERS = ("resident", "worker", "station_head", "admin")


def _ctx(request: web.Request) -> Context:
    return request.app[CTX]


# ---------------------------------------------------------------- volunteers


@routes.post("/api/v1/volunteers")
@endpoint(
    "Register as a volunteer (a resident), or register a resident of the station's township (staff)",
    tags=TAGS,
    roles=("resident", "worker", "station_head", "admin"),
    body=VolunteerCreateSchema(),
    response=VolunteerSchema(),
    status=201,
    problems=(403, 409, 422),
)
async def register_volunteer(request: web.Request) -> web.Response:
    data = await read_json(request, VolunteerCreateSchema())
    v = await volunteer_registration.register_volunteer(ctx=_ctx(request), principal=principal_of(request), data=data)
    return json_response(VolunteerSchema(), v, status=201)


@routes.get("/api/v1/volunteers")
@endpoint(
    "List volunteers (a station's, a division's, or all)",
    tags=TAGS,
    roles=STAFF,
    query=VolunteerQuerySchema(),
    response=VolunteerPageSchema(),
    problems=(400, 403, 422),
)
async def list_volunteers(request: web.Request) -> web.Response:
    query = read_query(request, VolunteerQuerySchema())
    page = await volunteer_registration.list_volunteers(ctx=_ctx(request), principal=principal_of(request), **query)
    return json_response(VolunteerPageSchema(), page)


@routes.get("/api/v1/volunteers/me")
@endpoint("My volunteer registration", tags=TAGS, roles=("resident",), response=VolunteerSchema(), problems=(403,))
async def my_volunteer(request: web.Request) -> web.Response:
    v = await volunteer_registration.get_my_volunteer(ctx=_ctx(request), principal=principal_of(request))
    return json_response(VolunteerSchema(), v)


@routes.get("/api/v1/volunteers/me/signups")
@endpoint(
    "My sign-ups, newest first, with each activity, my attendance there and my place on a waiting list",
    tags=TAGS,
    roles=("resident",),
    response=MySignupListSchema(),
    problems=(403,),
)
async def my_signups(request: web.Request) -> web.Response:
    items = await volunteer_signups.my_signups(ctx=_ctx(request), principal=principal_of(request))
    return json_response(MySignupListSchema(), {"items": items})


@routes.get("/api/v1/volunteers/{id}")
@endpoint("Get a volunteer", tags=TAGS, roles=PEOPLE, response=VolunteerSchema(), problems=(404,))
async def get_volunteer(request: web.Request) -> web.Response:
    v = await volunteer_registration.get_volunteer(
        ctx=_ctx(request), principal=principal_of(request), volunteer_id=request.match_info["id"]
    )
    return json_response(VolunteerSchema(), v)


@routes.get("/api/v1/volunteers/{id}/record")
@endpoint(
    "A volunteer's record: confirmed services with hours, training, awards, evaluations, certificates",
    tags=TAGS,
    roles=PEOPLE,
    response=VolunteerRecordSchema(),
    problems=(404,),
)
async def volunteer_record(request: web.Request) -> web.Response:
    record = await volunteer_records.volunteer_record(
        ctx=_ctx(request), principal=principal_of(request), volunteer_id=request.match_info["id"]
    )
    return json_response(VolunteerRecordSchema(), record)


@routes.post("/api/v1/volunteers/{id}/record-entries")
@endpoint(
    "Enter a training, award or evaluation on a volunteer's record",
    tags=TAGS,
    roles=STATION,
    body=RecordEntryCreateSchema(),
    response=VolunteerSchema(),
    status=201,
    problems=(403, 404, 422),
)
async def add_record_entry(request: web.Request) -> web.Response:
    data = await read_json(request, RecordEntryCreateSchema())
    v = await volunteer_registration.add_record_entry(
        ctx=_ctx(request), principal=principal_of(request), volunteer_id=request.match_info["id"], **data
    )
    return json_response(VolunteerSchema(), v, status=201)


@routes.post("/api/v1/volunteers/{id}/certificates")
@endpoint(
    "Issue a certificate of volunteer service records (志愿服务记录证明) for a period",
    description="Only the station that recorded the services issues it (谁记录谁证明): it lists that station's "
    "confirmed services in the period. The PDF is at /api/v1/volunteer-certificates/{id}/pdf; anyone can check it "
    "at /verify/{verification_code}.",
    tags=TAGS,
    roles=STATION,
    body=CertificateCreateSchema(),
    response=CertificateSchema(),
    status=201,
    idempotent_create=True,
    problems=(403, 404, 422),
)
async def issue_certificate(request: web.Request) -> web.Response:
    data = await read_json(request, CertificateCreateSchema())

    async def create() -> tuple[int, dict[str, Any]]:
        cert = await volunteer_certificates.issue_certificate(
            ctx=_ctx(request), principal=principal_of(request), volunteer_id=request.match_info["id"], **data
        )
        return 201, CertificateSchema().dump(cert)

    return await idempotent_json(request, body=data, operation=create)


# ---------------------------------------------------------------- teams


@routes.post("/api/v1/volunteer-teams")
@endpoint(
    "Form a volunteer team (志愿服务队) attached to a station",
    tags=TAGS,
    roles=STATION,
    body=TeamCreateSchema(),
    response=TeamSchema(),
    status=201,
    idempotent_create=True,
    problems=(403, 422),
)
async def create_team(request: web.Request) -> web.Response:
    data = await read_json(request, TeamCreateSchema())

    async def create() -> tuple[int, dict[str, Any]]:
        team = await volunteer_teams.create_team(ctx=_ctx(request), principal=principal_of(request), data=data)
        return 201, TeamSchema().dump(team)

    return await idempotent_json(request, body=data, operation=create)


@routes.get("/api/v1/volunteer-teams")
@endpoint("List volunteer teams", tags=TAGS, roles=PEOPLE, query=TeamQuerySchema(), response=TeamListSchema())
async def list_teams(request: web.Request) -> web.Response:
    query = read_query(request, TeamQuerySchema())
    teams = await volunteer_teams.list_teams(
        ctx=_ctx(request), principal=principal_of(request), station_id=query.get("station")
    )
    return json_response(TeamListSchema(), {"items": teams})


@routes.get("/api/v1/volunteer-teams/{id}")
@endpoint("Get a volunteer team", tags=TAGS, roles=PEOPLE, response=TeamSchema(), problems=(404,))
async def get_team(request: web.Request) -> web.Response:
    team = await volunteer_teams.get_team(
        ctx=_ctx(request), principal=principal_of(request), team_id=request.match_info["id"]
    )
    return json_response(TeamSchema(), team)


# ---------------------------------------------------------------- activities


@routes.post("/api/v1/volunteer-activities")
@endpoint(
    "Publish a volunteer activity (项目) at a station",
    tags=TAGS,
    roles=ORGANISERS,
    body=ActivityCreateSchema(),
    response=ActivitySchema(),
    status=201,
    idempotent_create=True,
    problems=(403, 422),
)
async def publish_activity(request: web.Request) -> web.Response:
    data = await read_json(request, ActivityCreateSchema())

    async def create() -> tuple[int, dict[str, Any]]:
        activity = await volunteer_activities.publish_activity(
            ctx=_ctx(request), principal=principal_of(request), data=data
        )
        return 201, ActivitySchema().dump(activity)

    return await idempotent_json(request, body=data, operation=create)


@routes.post("/api/v1/volunteer-activities/from-case")
@endpoint(
    "Turn a case into a volunteer task (the case's history notes it)",
    tags=TAGS,
    roles=STATION,
    body=TaskFromCaseSchema(),
    response=ActivitySchema(),
    status=201,
    idempotent_create=True,
    problems=(403, 404, 409, 422),
)
async def task_from_case(request: web.Request) -> web.Response:
    data = await read_json(request, TaskFromCaseSchema())

    async def create() -> tuple[int, dict[str, Any]]:
        activity = await volunteer_tasks.task_from_case(ctx=_ctx(request), principal=principal_of(request), data=data)
        return 201, ActivitySchema().dump(activity)

    return await idempotent_json(request, body=data, operation=create)


@routes.get("/api/v1/volunteer-activities")
@endpoint(
    "List volunteer activities, newest first",
    tags=TAGS,
    roles=PEOPLE,
    query=ActivityQuerySchema(),
    response=ActivityPageSchema(),
    problems=(400, 422),
)
async def list_activities(request: web.Request) -> web.Response:
    query = read_query(request, ActivityQuerySchema())
    page = await volunteer_activities.list_activities(
        ctx=_ctx(request),
        principal=principal_of(request),
        station_id=query.get("station"),
        township=query.get("township"),
        county=query.get("county"),
        status=query.get("status"),
        upcoming=query["upcoming"],
        limit=query["limit"],
        cursor=query.get("cursor"),
    )
    return json_response(ActivityPageSchema(), page)


@routes.get("/api/v1/volunteer-activities/{id}")
@endpoint("Get a volunteer activity", tags=TAGS, roles=PEOPLE, response=ActivitySchema(), problems=(404,))
async def get_activity(request: web.Request) -> web.Response:
    activity = await volunteer_activities.get_activity(
        ctx=_ctx(request), principal=principal_of(request), activity_id=request.match_info["id"]
    )
    return json_response(ActivitySchema(), activity)


@routes.post("/api/v1/volunteer-activities/{id}/cancel")
@endpoint(
    "Cancel an activity before it starts",
    tags=TAGS,
    roles=ORGANISERS,
    body=VolunteerReasonSchema(),
    response=ActivitySchema(),
    problems=(403, 404, 409, 422),
)
async def cancel_activity(request: web.Request) -> web.Response:
    data = await read_json(request, VolunteerReasonSchema())
    activity = await volunteer_activities.cancel_activity(
        ctx=_ctx(request), principal=principal_of(request), activity_id=request.match_info["id"], **data
    )
    return json_response(ActivitySchema(), activity)


@routes.post("/api/v1/volunteer-activities/{id}/signups")
@endpoint(
    "Sign up for an activity (pending the organiser, or on the waiting list when full)",
    tags=TAGS,
    roles=("resident",),
    body=SignupCreateSchema(),
    body_optional=True,
    response=SignupSchema(),
    status=201,
    problems=(403, 404, 409, 422),
)
async def sign_up(request: web.Request) -> web.Response:
    data = await read_json(request, SignupCreateSchema(), body_optional=True)
    signup = await volunteer_signups.sign_up(
        ctx=_ctx(request), principal=principal_of(request), activity_id=request.match_info["id"], **data
    )
    return json_response(SignupSchema(), signup, status=201)


@routes.get("/api/v1/volunteer-activities/{id}/signups")
@endpoint(
    "Sign-ups of an activity (the organisers; a volunteer sees their own)",
    tags=TAGS,
    roles=PEOPLE,
    response=SignupListSchema(),
    problems=(403, 404),
)
async def list_signups(request: web.Request) -> web.Response:
    items = await volunteer_signups.list_signups(
        ctx=_ctx(request), principal=principal_of(request), activity_id=request.match_info["id"]
    )
    return json_response(SignupListSchema(), {"items": items})


@routes.post("/api/v1/volunteer-signups/{id}/decision")
@endpoint(
    "Confirm or decline a sign-up (the organiser)",
    tags=TAGS,
    roles=ORGANISERS,
    body=SignupDecisionSchema(),
    response=SignupSchema(),
    problems=(403, 404, 409, 422),
)
async def decide_signup(request: web.Request) -> web.Response:
    data = await read_json(request, SignupDecisionSchema())
    signup = await volunteer_signups.decide_signup(
        ctx=_ctx(request), principal=principal_of(request), signup_id=request.match_info["id"], **data
    )
    return json_response(SignupSchema(), signup)


@routes.post("/api/v1/volunteer-signups/{id}/cancel")
@endpoint(
    "Withdraw my sign-up (a confirmed place until 2 hours before the start)",
    tags=TAGS,
    roles=("resident",),
    body_kind="none",
    response=SignupSchema(),
    problems=(403, 404, 409),
)
async def cancel_signup(request: web.Request) -> web.Response:
    signup = await volunteer_signups.cancel_signup(
        ctx=_ctx(request), principal=principal_of(request), signup_id=request.match_info["id"]
    )
    return json_response(SignupSchema(), signup)


# ---------------------------------------------------------------- attendance


@routes.get("/api/v1/volunteer-activities/{id}/checkin-code")
@endpoint(
    "A short-lived signed check-in (or check-out) code for the organiser's screen",
    description="Show the code as a QR code; volunteers scan it with the resident app. It expires after "
    "HUIMIN_VOLUNTEER_CHECKIN_CODE_SECONDS (60 s by default) and each volunteer can use it once.",
    tags=TAGS,
    roles=ORGANISERS,
    query=CheckinCodeQuerySchema(),
    response=CheckinCodeSchema(),
    problems=(403, 404, 409, 422),
)
async def checkin_code(request: web.Request) -> web.Response:
    query = read_query(request, CheckinCodeQuerySchema())
    code = await volunteer_attendance.issue_checkin_code(
        ctx=_ctx(request), principal=principal_of(request), activity_id=request.match_info["id"], **query
    )
    return json_response(CheckinCodeSchema(), code)


@routes.post("/api/v1/volunteer-checkins")
@endpoint(
    "Check in or out by the scanned code (a confirmed volunteer)",
    tags=TAGS,
    roles=("resident",),
    body=CheckinSchema(),
    response=AttendanceSchema(),
    problems=(403, 404, 409, 422),
)
async def check_in(request: web.Request) -> web.Response:
    data = await read_json(request, CheckinSchema())
    attendance = await volunteer_attendance.check_in_by_code(ctx=_ctx(request), principal=principal_of(request), **data)
    return json_response(AttendanceSchema(), attendance)


@routes.post("/api/v1/volunteer-activities/{id}/attendance")
@endpoint(
    "Record a volunteer's attendance (the organiser confirms presence)",
    tags=TAGS,
    roles=ORGANISERS,
    body=AttendanceCreateSchema(),
    response=AttendanceSchema(),
    status=201,
    problems=(403, 404, 409, 422),
)
async def record_attendance(request: web.Request) -> web.Response:
    data = await read_json(request, AttendanceCreateSchema())
    attendance = await volunteer_attendance.record_attendance(
        ctx=_ctx(request), principal=principal_of(request), activity_id=request.match_info["id"], data=data
    )
    return json_response(AttendanceSchema(), attendance, status=201)


@routes.get("/api/v1/volunteer-activities/{id}/attendance")
@endpoint("Attendance of an activity", tags=TAGS, roles=PEOPLE, response=AttendanceListSchema(), problems=(403, 404))
async def list_attendance(request: web.Request) -> web.Response:
    items = await volunteer_attendance.list_attendance(
        ctx=_ctx(request), principal=principal_of(request), activity_id=request.match_info["id"]
    )
    return json_response(AttendanceListSchema(), {"items": items})


@routes.get("/api/v1/volunteer-attendance/{id}")
@endpoint(
    "One attendance record with its history", tags=TAGS, roles=PEOPLE, response=AttendanceSchema(), problems=(404,)
)
async def get_attendance(request: web.Request) -> web.Response:
    attendance = await volunteer_attendance.get_attendance(
        ctx=_ctx(request), principal=principal_of(request), attendance_id=request.match_info["id"]
    )
    return json_response(AttendanceSchema(), attendance)


@routes.post("/api/v1/volunteer-attendance/{id}/confirm")
@endpoint(
    "Confirm the hours (the organiser; never the volunteer)",
    tags=TAGS,
    roles=ORGANISERS,
    body=ConfirmHoursSchema(),
    body_optional=True,
    response=AttendanceSchema(),
    problems=(403, 404, 409, 422),
)
async def confirm_hours(request: web.Request) -> web.Response:
    data = await read_json(request, ConfirmHoursSchema(), body_optional=True)
    attendance = await volunteer_hours.confirm_hours(
        ctx=_ctx(request), principal=principal_of(request), attendance_id=request.match_info["id"], **data
    )
    return json_response(AttendanceSchema(), attendance)


@routes.post("/api/v1/volunteer-attendance/{id}/corrections")
@endpoint(
    "Correct a record (the recording organisation); the old values stay in the history",
    tags=TAGS,
    roles=ORGANISERS,
    body=CorrectionSchema(),
    response=AttendanceSchema(),
    problems=(403, 404, 409, 422),
)
async def correct_attendance(request: web.Request) -> web.Response:
    data = await read_json(request, CorrectionSchema())
    attendance = await volunteer_hours.correct_attendance(
        ctx=_ctx(request), principal=principal_of(request), attendance_id=request.match_info["id"], data=data
    )
    return json_response(AttendanceSchema(), attendance)


@routes.post("/api/v1/volunteer-attendance/{id}/correction-requests")
@endpoint(
    "Ask the recording organisation to correct my record",
    tags=TAGS,
    roles=("resident",),
    body=CorrectionRequestSchema(),
    response=AttendanceSchema(),
    problems=(403, 404, 409, 422),
)
async def request_correction(request: web.Request) -> web.Response:
    data = await read_json(request, CorrectionRequestSchema())
    attendance = await volunteer_hours.request_correction(
        ctx=_ctx(request), principal=principal_of(request), attendance_id=request.match_info["id"], **data
    )
    return json_response(AttendanceSchema(), attendance)


# ---------------------------------------------------------------- requests to record missing service (补录申请)


@routes.post("/api/v1/volunteer-activities/{id}/record-requests")
@endpoint(
    "Ask the organiser to record my service at an ended activity that has no record of it (补录申请)",
    tags=TAGS,
    roles=("resident",),
    body=RecordRequestCreateSchema(),
    response=RecordRequestSchema(),
    status=201,
    problems=(403, 404, 409, 422),
)
async def request_record(request: web.Request) -> web.Response:
    data = await read_json(request, RecordRequestCreateSchema())
    item = await volunteer_record_requests.request_record(
        ctx=_ctx(request), principal=principal_of(request), activity_id=request.match_info["id"], data=data
    )
    return json_response(RecordRequestSchema(), item, status=201)


@routes.get("/api/v1/volunteer-activities/{id}/record-requests")
@endpoint(
    "Requests to record missing service at an activity, oldest first (its organisers and supervisors)",
    tags=TAGS,
    roles=(*STAFF, "resident"),
    query=RecordRequestQuerySchema(),
    response=RecordRequestListSchema(),
    problems=(403, 404, 422),
)
async def list_record_requests(request: web.Request) -> web.Response:
    query = read_query(request, RecordRequestQuerySchema())
    items = await volunteer_record_requests.list_record_requests(
        ctx=_ctx(request), principal=principal_of(request), activity_id=request.match_info["id"], **query
    )
    return json_response(RecordRequestListSchema(), {"items": items})


@routes.get("/api/v1/volunteers/me/record-requests")
@endpoint(
    "My requests to record missing service, newest first, with their status",
    tags=TAGS,
    roles=("resident",),
    response=RecordRequestListSchema(),
    problems=(403,),
)
async def my_record_requests(request: web.Request) -> web.Response:
    items = await volunteer_record_requests.my_record_requests(ctx=_ctx(request), principal=principal_of(request))
    return json_response(RecordRequestListSchema(), {"items": items})


@routes.get("/api/v1/volunteer-record-requests/{id}")
@endpoint(
    "One request to record missing service, with its history",
    tags=TAGS,
    roles=PEOPLE,
    response=RecordRequestSchema(),
    problems=(404,),
)
async def get_record_request(request: web.Request) -> web.Response:
    item = await volunteer_record_requests.get_record_request(
        ctx=_ctx(request), principal=principal_of(request), request_id=request.match_info["id"]
    )
    return json_response(RecordRequestSchema(), item)


@routes.post("/api/v1/volunteer-record-requests/{id}/decline")
@endpoint(
    "Decline a request to record missing service, with a reason (the organiser); "
    "grant one by recording the attendance (POST /api/v1/volunteer-activities/{id}/attendance)",
    tags=TAGS,
    roles=ORGANISERS,
    body=VolunteerReasonSchema(),
    response=RecordRequestSchema(),
    problems=(403, 404, 409, 422),
)
async def decline_record_request(request: web.Request) -> web.Response:
    data = await read_json(request, VolunteerReasonSchema())
    item = await volunteer_record_requests.decline_record_request(
        ctx=_ctx(request), principal=principal_of(request), request_id=request.match_info["id"], **data
    )
    return json_response(RecordRequestSchema(), item)


# ---------------------------------------------------------------- certificates


@routes.get("/api/v1/volunteer-certificates/{id}")
@endpoint("Get a certificate", tags=TAGS, roles=PEOPLE, response=CertificateSchema(), problems=(404,))
async def get_certificate(request: web.Request) -> web.Response:
    cert = await volunteer_certificates.get_certificate(
        ctx=_ctx(request), principal=principal_of(request), certificate_id=request.match_info["id"]
    )
    return json_response(CertificateSchema(), cert)


@routes.get("/api/v1/volunteer-certificates/{id}/pdf")
@endpoint(
    "The certificate as a PDF (Chinese, with its QR code)",
    tags=TAGS,
    roles=PEOPLE,
    response_content_type="application/pdf",
    problems=(404,),
)
async def certificate_pdf(request: web.Request) -> web.Response:
    cert_id = request.match_info["id"]
    body = await volunteer_certificates.certificate_pdf(
        ctx=_ctx(request), principal=principal_of(request), certificate_id=cert_id
    )
    return web.Response(
        body=body,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="certificate-{cert_id}.pdf"'},
    )


@routes.post("/api/v1/volunteer-certificates/{id}/revoke")
@endpoint(
    "Revoke a certificate with a reason (the issuing station)",
    tags=TAGS,
    roles=STATION,
    body=VolunteerReasonSchema(),
    response=CertificateSchema(),
    problems=(403, 404, 409, 422),
)
async def revoke_certificate(request: web.Request) -> web.Response:
    data = await read_json(request, VolunteerReasonSchema())
    cert = await volunteer_certificates.revoke_certificate(
        ctx=_ctx(request), principal=principal_of(request), certificate_id=request.match_info["id"], **data
    )
    return json_response(CertificateSchema(), cert)


_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>志愿服务记录证明核验 Certificate check</title>
<style>body{{font-family:sans-serif;max-width:36em;margin:2em auto;padding:0 1em;line-height:1.6}}
.s{{font-size:1.4em;font-weight:bold;color:{colour}}}th{{text-align:left;padding-right:1em}}</style></head>
<body><h1>志愿服务记录证明核验</h1><p>Certificate of volunteer service records: verification</p>
<p class="s">{status}</p><table>
<tr><th>证明编号 Number</th><td>{number}</td></tr>
<tr><th>志愿者 Volunteer</th><td>{name}</td></tr>
<tr><th>出具单位 Issued by</th><td>{organisation}</td></tr>
<tr><th>服务时长 Hours</th><td>{hours}</td></tr>
<tr><th>服务期间 Period</th><td>{period_from} 至 {period_to}</td></tr>
{revoked}</table></body></html>
"""


@routes.get("/verify/{code}")
@endpoint(
    "Verify a certificate by its verification code (public; no login)",
    description="An HTML page for people who scanned the QR code, or JSON with Accept: application/json or "
    "?format=json. It shows the masked name, the organisation, the hours and period, and whether the certificate "
    "is valid or revoked; nothing more.",
    tags=TAGS,
    public=True,
    query=VerifyQuerySchema(),
    response=CertificateVerificationSchema(),
    response_content_type="text/html",
    alt_content_types=("application/json",),
    problems=(404, 422),
)
async def verify_page(request: web.Request) -> web.Response:
    query = read_query(request, VerifyQuerySchema())
    result = await volunteer_certificates.verify_certificate(ctx=_ctx(request), code=request.match_info["code"])
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
    wants_json = query.get("format") == "json" or (
        query.get("format") is None and "application/json" in request.headers.get("Accept", "")
    )
    if wants_json:
        return json_response(CertificateVerificationSchema(), result, headers=headers)
    revoked = ""
    if not result["valid"]:
        revoked = f"<tr><th>撤销原因 Reason</th><td>{html.escape(result['revoked_reason'] or '')}</td></tr>"
    page = _PAGE.format(
        colour="#1a7f37" if result["valid"] else "#b42318",
        status="有效 Valid" if result["valid"] else "已撤销 Revoked",
        number=html.escape(result["number"]),
        name=html.escape(result["name_masked"]),
        organisation=html.escape(result["organisation"]),
        hours=html.escape(f"{result['total_hours']:g} 小时 hours"),
        period_from=html.escape(result["period_from"]),
        period_to=html.escape(result["period_to"]),
        revoked=revoked,
    )
    headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return web.Response(text=page, content_type="text/html", charset="utf-8", headers=headers)


# ---------------------------------------------------------------- KPIs and export


@routes.get("/api/v1/volunteer-kpis")
@endpoint(
    "Volunteer KPIs: registered and active volunteers, hours, activities held (station, county, all)",
    tags=TAGS,
    roles=STAFF,
    query=VolunteerKpiQuerySchema(),
    response=VolunteerKpiSchema(),
    problems=(403, 422),
)
async def volunteer_kpis(request: web.Request) -> web.Response:
    q = read_query(request, VolunteerKpiQuerySchema())
    result = await volunteers_kpis.kpis(
        ctx=_ctx(request),
        principal=principal_of(request),
        station_id=q.get("station"),
        county=q.get("county"),
        period_from=q.get("period_from"),
        period_to=q.get("period_to"),
    )
    return json_response(VolunteerKpiSchema(), result)


@routes.get("/api/v1/volunteer-records.csv")
@endpoint(
    "Export confirmed service records as CSV (for the national volunteer information system)",
    description="UTF-8 with BOM; columns as listed in docs/volunteers.md.",
    tags=TAGS,
    roles=STAFF,
    query=VolunteerKpiQuerySchema(),
    response_content_type="text/csv",
    long_running=True,
    problems=(403, 422),
)
async def export_records(request: web.Request) -> web.Response:
    q = read_query(request, VolunteerKpiQuerySchema())
    text = await volunteers_kpis.export_records_csv(
        ctx=_ctx(request),
        principal=principal_of(request),
        station_id=q.get("station"),
        county=q.get("county"),
        period_from=q.get("period_from"),
        period_to=q.get("period_to"),
    )
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="volunteer-records.csv"'},
    )
