"""What each event tells whom: WeChat subscription-message templates, inbox texts, SMS params.

Pure functions of the event and the case. Template ids are per deployment (settings
``wechat_templates``, a JSON object of key -> id); the placeholders below keep a fresh
clone working against the local fake.

WeChat subscription-message field types and their limits (documented by WeChat):
``thing`` <= 20 characters, ``character_string`` <= 32 letters/digits/symbols, ``time``
a date-time, ``phrase`` <= 5 Chinese characters. A value over the limit makes WeChat
refuse the message (47003), so values are cut here.

The "returned to the resident" template covers ``case.rejected`` (不予受理, always by
staff) and ``case.cancelled`` when someone other than the resident cancelled the case;
a resident who cancels their own request is not told about it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from config import Settings
from service.cases.models import CaseNotice
from service.notify.models import OutboxEvent

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclasses.dataclass(frozen=True, slots=True)
class Template:
    key: str
    default_id: str
    title_zh: str
    title_en: str
    event_types: tuple[str, ...]
    fields: tuple[tuple[str, str, str], ...]  # (WeChat key, 中文名, English name)


TEMPLATES: tuple[Template, ...] = (
    Template(
        "accepted",
        "tmpl-case-accepted",
        "已受理",
        "Request accepted",
        ("case.accepted",),
        (
            ("thing1", "服务项目", "service"),
            ("character_string2", "工单编号", "case number"),
            ("thing3", "受理站点", "station"),
            ("time4", "受理时间", "accepted at"),
            ("phrase5", "办理状态", "status"),
        ),
    ),
    Template(
        "scheduled",
        "tmpl-case-scheduled",
        "已预约",
        "Appointment scheduled",
        ("case.scheduled",),
        (
            ("thing1", "服务项目", "service"),
            ("character_string2", "工单编号", "case number"),
            ("time3", "预约时间", "appointment"),
            ("thing4", "服务站点", "station"),
            ("phrase5", "办理状态", "status"),
        ),
    ),
    Template(
        "resolved",
        "tmpl-case-resolved",
        "已办结",
        "Request resolved",
        ("case.resolved",),
        (
            ("thing1", "服务项目", "service"),
            ("character_string2", "工单编号", "case number"),
            ("thing3", "办理结果", "result"),
            ("time4", "办结时间", "resolved at"),
            ("thing5", "温馨提示", "note"),
        ),
    ),
    Template(
        "returned",
        "tmpl-case-returned",
        "申请退回",
        "Request returned",
        ("case.rejected", "case.cancelled"),
        (
            ("thing1", "服务项目", "service"),
            ("character_string2", "工单编号", "case number"),
            ("phrase3", "办理状态", "status"),
            ("thing4", "退回原因", "reason"),
            ("time5", "办理时间", "time"),
        ),
    ),
    Template(
        "visit_followup",
        "tmpl-visit-followup",
        "探访跟进",
        "Visit follow-up",
        ("case.created",),
        (
            ("thing1", "服务项目", "service"),
            ("character_string2", "工单编号", "case number"),
            ("thing3", "服务站点", "station"),
            ("time4", "登记时间", "registered at"),
            ("phrase5", "办理状态", "status"),
        ),
    ),
)
TEMPLATES_BY_KEY = {t.key: t for t in TEMPLATES}
RATE_PROMPT_ZH = "请在小程序内评价本次服务"
RATE_PROMPT_EN = "please rate the service in the mini program"


def template_ids(settings: Settings) -> dict[str, str]:
    """Template key -> WeChat template id for this deployment."""
    ids = {t.key: t.default_id for t in TEMPLATES}
    if settings.wechat_templates:
        table = json.loads(settings.wechat_templates)
        ids.update({k: v for k, v in table.items() if k in ids})
    return ids


def template_key_for_id(settings: Settings, template_id: str) -> str | None:
    """The template key a WeChat template id is configured for."""
    for key, tid in template_ids(settings).items():
        if tid == template_id:
            return key
    return None


# What the texts read when the event is about no case (or one that is gone).
NO_CASE = CaseNotice()


def is_visit_linked(event: OutboxEvent, case: CaseNotice | None) -> bool:
    """A case opened from a home visit (需求转介)."""
    return (case or NO_CASE).source_channel == "visit"


def resident_template_for(event: OutboxEvent, case: CaseNotice | None) -> Template | None:
    """The template that tells the case's resident about this event, if any."""
    if event.type == "case.created":
        return TEMPLATES_BY_KEY["visit_followup"] if is_visit_linked(event, case) else None
    if event.type == "case.cancelled" and event.actor_role == "resident":
        return None
    for t in TEMPLATES:
        if event.type in t.event_types and t.key != "visit_followup":
            return t
    return None


# ---------------------------------------------------------------- field values


def cut_thing(value: str, limit: int = 20) -> str:
    """A ``thing`` value: at most 20 characters (cut with an ellipsis)."""
    value = " ".join(str(value).split()) or "-"
    return value if len(value) <= limit else value[: limit - 1] + "…"


def cut_character_string(value: str) -> str:
    """A ``character_string`` value: letters, digits and symbols only, at most 32."""
    cleaned = re.sub(r"[^0-9A-Za-z_\-.:/#@]", "", str(value))
    return (cleaned or "-")[:32]


def cut_phrase(value: str) -> str:
    """A ``phrase`` value: at most 5 Chinese characters, no digits or letters."""
    cleaned = re.sub(r"[0-9A-Za-z\s]", "", str(value))
    return (cleaned or "处理中")[:5]


def format_time(value: datetime | None) -> str:
    """A ``time`` value: local time in Asia/Shanghai, e.g. 2026年11月28日 09:30."""
    if value is None:
        return "-"
    return value.astimezone(SHANGHAI).strftime("%Y年%m月%d日 %H:%M")


MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_time_en(value: datetime | None) -> str:
    """The same moment for English text: Beijing time, e.g. 28 Nov 2026, 09:30 (no locale needed)."""
    if value is None:
        return "-"
    local = value.astimezone(SHANGHAI)
    return f"{local.day} {MONTHS_EN[local.month - 1]} {local.year}, {local:%H:%M}"


def scheduled_time(event: OutboxEvent, case: CaseNotice | None) -> datetime:
    """When a ``case.scheduled`` event says the appointment is (the event's time if it cannot tell)."""
    when: Any = event.data.get("scheduled_at") or (case or NO_CASE).scheduled_at
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when)
        except ValueError:
            when = None
    return when if isinstance(when, datetime) else event.time


PHRASES = {
    "case.accepted": "已受理",
    "case.scheduled": "已预约",
    "case.resolved": "已办结",
    "case.rejected": "不予受理",
    "case.cancelled": "已撤回",
    "case.created": "已登记",
}


def service_names(case: CaseNotice | None) -> tuple[str, str]:
    case = case or NO_CASE
    return str(case.service_name_zh or "惠民服务"), str(case.service_name_en or "service request")


def template_data(template: Template, event: OutboxEvent, case: CaseNotice | None) -> dict[str, dict[str, str]]:
    """The ``data`` object of a subscription message, every value within its field's limit."""
    case = case or NO_CASE
    name_zh, _ = service_names(case)
    number = event.case_number or str(case.number or "")
    station = str(case.station_name or "社工站")
    values: dict[str, str] = {}
    if template.key == "accepted":
        values = {
            "thing1": cut_thing(name_zh),
            "character_string2": cut_character_string(number),
            "thing3": cut_thing(station),
            "time4": format_time(event.time),
            "phrase5": cut_phrase(PHRASES[event.type]),
        }
    elif template.key == "scheduled":
        values = {
            "thing1": cut_thing(name_zh),
            "character_string2": cut_character_string(number),
            "time3": format_time(scheduled_time(event, case)),
            "thing4": cut_thing(station),
            "phrase5": cut_phrase(PHRASES[event.type]),
        }
    elif template.key == "resolved":
        result: Any = event.data.get("result") or case.result or "已办结"
        if isinstance(result, dict):
            result = result.get("summary") or result.get("text") or "已办结"
        values = {
            "thing1": cut_thing(name_zh),
            "character_string2": cut_character_string(number),
            "thing3": cut_thing(str(result)),
            "time4": format_time(event.time),
            "thing5": cut_thing(RATE_PROMPT_ZH),
        }
    elif template.key == "returned":
        values = {
            "thing1": cut_thing(name_zh),
            "character_string2": cut_character_string(number),
            "phrase3": cut_phrase(PHRASES.get(event.type, "已退回")),
            "thing4": cut_thing(str(event.data.get("reason") or "详见小程序")),
            "time5": format_time(event.time),
        }
    elif template.key == "visit_followup":
        values = {
            "thing1": cut_thing(name_zh),
            "character_string2": cut_character_string(number),
            "thing3": cut_thing(station),
            "time4": format_time(event.time),
            "phrase5": cut_phrase(PHRASES["case.created"]),
        }
    return {k: {"value": v} for k, v in values.items()}


# ---------------------------------------------------------------- inbox texts

STAFF_TITLES: dict[str, tuple[str, str]] = {
    "case.created": ("新工单", "New case"),
    "case.dispatched": ("新派单", "Case dispatched to your station"),
    "case.returned": ("工单退回", "Case returned"),
    "case.assigned": ("工单指派给您", "Case assigned to you"),
    "case.overdue": ("工单超期督办", "Case overdue"),
    "case.urged": ("工单催办", "Case urged"),
    "case.extension_requested": ("延期申请待审批", "Extension requested"),
    "case.unrouted": ("工单待人工派单", "Case awaits manual dispatch"),
    "visit.due": ("今日待探访", "Visit due"),
    "visit.missed": ("探访逾期未完成", "Visit missed"),
    "alert.received": ("紧急报警", "Urgent device alert"),
    "alert.escalated": ("紧急报警无人签收，已升级", "Urgent alert unsigned: escalated to you"),
}


def resident_texts(template: Template, event: OutboxEvent, case: CaseNotice | None) -> tuple[str, str, str, str]:
    """(title_zh, title_en, body_zh, body_en) of a resident's inbox entry."""
    name_zh, name_en = service_names(case)
    number = event.case_number or str((case or NO_CASE).number or "")
    title_zh, title_en = template.title_zh, template.title_en
    if template.key == "resolved":
        body_zh = f"您的{name_zh}申请（{number}）已办结，{RATE_PROMPT_ZH}。"
        body_en = f"Your {name_en} request ({number}) has been resolved; {RATE_PROMPT_EN}."
    elif template.key == "returned":
        reason = str(event.data.get("reason") or "")
        status_zh = PHRASES.get(event.type, "已退回")
        body_zh = f"您的{name_zh}申请（{number}）{status_zh}。" + (f"原因：{reason}" if reason else "")
        body_en = f"Your {name_en} request ({number}) was {event.type.split('.')[-1]}." + (
            f" Reason: {reason}" if reason else ""
        )
    elif template.key == "scheduled":
        when = scheduled_time(event, case)
        body_zh = f"您的{name_zh}申请（{number}）已预约：{format_time(when)}。"
        body_en = f"Your {name_en} request ({number}) is scheduled for {format_time_en(when)} (Beijing time)."
    elif template.key == "visit_followup":
        body_zh = f"探访中了解到的需求已登记为{name_zh}工单（{number}），社工站将跟进。"
        body_en = (
            f"A need found during a home visit was registered as a {name_en} case ({number}); "
            "the station will follow up."
        )
    else:
        body_zh = f"您的{name_zh}申请（{number}）已被社工站受理。"
        body_en = f"Your {name_en} request ({number}) has been accepted by the station."
    return title_zh, title_en, body_zh, body_en


def staff_texts(event: OutboxEvent, case: CaseNotice | None) -> tuple[str, str, str, str]:
    """(title_zh, title_en, body_zh, body_en) of a staff member's inbox entry."""
    title_zh, title_en = STAFF_TITLES.get(event.type, ("工单动态", "Case update"))
    if event.type.startswith("alert."):
        return title_zh, title_en, str(event.data.get("summary_zh") or ""), str(event.data.get("summary_en") or "")
    if event.type.startswith("visit."):
        period = str(event.data.get("period") or "")
        elder = str(event.data.get("elder_name") or event.data.get("elder_id") or "")
        return title_zh, title_en, f"探访对象 {elder}（{period}）", f"Visit for {elder} ({period})"
    name_zh, name_en = service_names(case)
    number = event.case_number or ""
    note = str(event.data.get("reason") or event.data.get("note") or "")
    body_zh = f"{name_zh}（{number}）" + (f"：{note}" if note else "")
    body_en = f"{name_en} ({number})" + (f": {note}" if note else "")
    return title_zh, title_en, body_zh, body_en


def sms_params(template: Template, event: OutboxEvent, case: CaseNotice | None) -> dict[str, str]:
    """Parameters of the SMS that replaces a subscription message for phone-login residents."""
    name_zh, _ = service_names(case)
    return {
        "service": cut_thing(name_zh),
        "number": event.case_number or "",
        "status": PHRASES.get(event.type, template.title_zh),
        "time": format_time(event.time),
    }
