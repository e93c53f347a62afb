"""Pure decisions of the notification area: who hears about what, on which channel, and when."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from service.cases.models import CaseNotice
from service.common.models import Principal
from service.notify.models import CHANNEL_INBOX, CHANNEL_SMS, CHANNEL_STREAM, CHANNEL_WECHAT, OutboxEvent, Preferences
from service.notify.templates import SHANGHAI

# Event types staff can hear about, and the channels they reach by default.
STAFF_DEFAULTS: dict[str, dict[str, bool]] = {
    "case.created": {CHANNEL_INBOX: True, CHANNEL_SMS: False, CHANNEL_STREAM: True},
    "case.dispatched": {CHANNEL_INBOX: True, CHANNEL_SMS: False, CHANNEL_STREAM: True},
    # Live feed only: the alert board shows when an urgent case is signed for (签收).
    "case.accepted": {CHANNEL_INBOX: False, CHANNEL_SMS: False, CHANNEL_STREAM: True},
    "case.returned": {CHANNEL_INBOX: True, CHANNEL_SMS: False, CHANNEL_STREAM: True},
    "case.assigned": {CHANNEL_INBOX: True, CHANNEL_SMS: False, CHANNEL_STREAM: True},
    "case.overdue": {CHANNEL_INBOX: True, CHANNEL_SMS: False, CHANNEL_STREAM: True},
    "case.urged": {CHANNEL_INBOX: True, CHANNEL_SMS: False, CHANNEL_STREAM: True},
    "case.extension_requested": {CHANNEL_INBOX: True, CHANNEL_SMS: False, CHANNEL_STREAM: True},
    # No station found: waits for a supervisor to dispatch it by hand.
    "case.unrouted": {CHANNEL_INBOX: True, CHANNEL_SMS: False, CHANNEL_STREAM: True},
    # One per elder per period: the live feed's "visits due today", not an inbox flood.
    "visit.due": {CHANNEL_INBOX: False, CHANNEL_SMS: False, CHANNEL_STREAM: True},
    "visit.missed": {CHANNEL_INBOX: True, CHANNEL_SMS: False, CHANNEL_STREAM: True},
    # Urgent device alerts (SOS, fall, smoke): to the people the alerts area names, by SMS too.
    "alert.received": {CHANNEL_INBOX: True, CHANNEL_SMS: True, CHANNEL_STREAM: True},
    "alert.escalated": {CHANNEL_INBOX: True, CHANNEL_SMS: True, CHANNEL_STREAM: True},
}
STAFF_CHANNELS = (CHANNEL_INBOX, CHANNEL_SMS, CHANNEL_STREAM)

# Event types residents hear about (their own cases); the inbox always gets them.
RESIDENT_DEFAULTS: dict[str, dict[str, bool]] = {
    t: {CHANNEL_WECHAT: True, CHANNEL_SMS: True}
    for t in ("case.accepted", "case.scheduled", "case.resolved", "case.rejected", "case.cancelled", "case.created")
}
RESIDENT_CHANNELS = (CHANNEL_WECHAT, CHANNEL_SMS)

STREAM_TYPES = frozenset(STAFF_DEFAULTS)
# Sent at any hour: a supervisor's urging and a breached deadline cannot wait for morning.
URGENT_TYPES = frozenset({"case.urged", "case.overdue", "alert.received", "alert.escalated"})


def recipient_of(principal: Principal) -> str:
    """The recipient key of a caller: ``resident:<id>`` or ``staff:<id>``."""
    return ("resident:" if principal.is_resident else "staff:") + principal.subject


def defaults_for(role: str) -> dict[str, dict[str, bool]]:
    """The default event -> channel table of a role."""
    table = RESIDENT_DEFAULTS if role == "resident" else STAFF_DEFAULTS
    return {k: dict(v) for k, v in table.items()}


def effective(prefs: Preferences | None, role: str) -> dict[str, dict[str, bool]]:
    """Defaults overlaid with what the person chose."""
    table = defaults_for(role)
    if prefs is not None:
        for event_type, channels in prefs.events.items():
            if event_type in table:
                table[event_type].update({c: v for c, v in channels.items() if c in table[event_type]})
    return table


def wants(prefs: Preferences | None, role: str, event_type: str, channel: str) -> bool:
    """Whether this event type should reach the person on this channel."""
    return effective(prefs, role).get(event_type, {}).get(channel, False)


def is_urgent(event: OutboxEvent) -> bool:
    """Urgent events ignore SMS quiet hours."""
    return event.type in URGENT_TYPES or bool(event.data.get("urgent"))


def urgent_service(case: CaseNotice | None) -> bool:
    """Cases of urgent services (emergencies, child protection): every notice goes out at once."""
    return case is not None and case.urgent_service


def parse_quiet_hours(spec: str | None) -> tuple[time, time] | None:
    """'21:00-08:00' -> (21:00, 08:00); empty -> None."""
    if not spec:
        return None
    start, _, end = spec.partition("-")
    h1, m1 = (int(x) for x in start.split(":"))
    h2, m2 = (int(x) for x in end.split(":"))
    return time(h1, m1), time(h2, m2)


def quiet_until(now: datetime, spec: str | None) -> datetime | None:
    """When the quiet hours holding ``now`` end (UTC-aware), or None outside quiet hours."""
    window = parse_quiet_hours(spec)
    if window is None or window[0] == window[1]:
        return None
    start, end = window
    local = now.astimezone(SHANGHAI)
    t = local.time()
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside:
        return None
    end_local = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if end_local <= local:
        end_local += timedelta(days=1)
    return end_local.astimezone(UTC)


def stream_visible(event: OutboxEvent, principal: Principal, table: dict[str, dict[str, bool]]) -> bool:
    """Whether a staff member's live feed shows this event."""
    if event.type not in STREAM_TYPES or not table.get(event.type, {}).get(CHANNEL_STREAM, False):
        return False
    if principal.role == "admin":
        return True
    if principal.role == "supervisor":
        prefix = principal.division_prefix
        return prefix is not None and event.division.startswith(prefix)
    if principal.role not in ("worker", "station_head") or not principal.station_id:
        return False
    if event.type == "case.assigned":
        assignee = event.data.get("assignee_id")
        return assignee == principal.subject or (
            principal.role == "station_head" and event.station_id == principal.station_id
        )
    return principal.station_id in (event.station_id, event.data.get("next_station"), event.data.get("to_station_id"))
