"""The words of a case's life: its states (with their people-facing labels) and its event types.

The state machine that moves a case between them is ``service/cases/lifecycle.py``; schemas,
views and other areas take the states and event types from here.
"""

from __future__ import annotations

# ------------------------------------------------------------------ states

UNROUTED = "unrouted"
DISPATCHED = "dispatched"
ACCEPTED = "accepted"
IN_PROGRESS = "in_progress"
RESOLVED = "resolved"
CLOSED = "closed"
CANCELLED = "cancelled"
REJECTED = "rejected"

STATES: tuple[str, ...] = (UNROUTED, DISPATCHED, ACCEPTED, IN_PROGRESS, RESOLVED, CLOSED, CANCELLED, REJECTED)
# Open: work still to be done by the station; these can be noted, urged and go overdue.
OPEN_STATES: frozenset[str] = frozenset({UNROUTED, DISPATCHED, ACCEPTED, IN_PROGRESS})
FINAL_STATES: frozenset[str] = frozenset({CLOSED, CANCELLED, REJECTED})

STATE_LABELS: dict[str, dict[str, str]] = {
    UNROUTED: {"zh": "待派单", "en": "awaiting dispatch"},
    DISPATCHED: {"zh": "已派单", "en": "dispatched"},
    ACCEPTED: {"zh": "已签收", "en": "accepted"},
    IN_PROGRESS: {"zh": "办理中", "en": "in progress"},
    RESOLVED: {"zh": "已办结", "en": "resolved"},
    CLOSED: {"zh": "已归档", "en": "closed"},
    CANCELLED: {"zh": "已撤回", "en": "cancelled"},
    REJECTED: {"zh": "不予受理", "en": "rejected"},
}


# ------------------------------------------------------------------ events

EVENT_CREATED = "case.created"
EVENT_DISPATCHED = "case.dispatched"
EVENT_ACCEPTED = "case.accepted"
EVENT_RETURNED = "case.returned"
EVENT_ASSIGNED = "case.assigned"
EVENT_STARTED = "case.started"
EVENT_SCHEDULED = "case.scheduled"
EVENT_NOTED = "case.noted"
EVENT_EXTENSION_REQUESTED = "case.extension_requested"
EVENT_EXTENSION_APPROVED = "case.extension_approved"
EVENT_EXTENSION_DENIED = "case.extension_denied"
EVENT_RESOLVED = "case.resolved"
EVENT_REOPENED = "case.reopened"
EVENT_RATED = "case.rated"
EVENT_CLOSED = "case.closed"
EVENT_CANCELLED = "case.cancelled"
EVENT_REJECTED = "case.rejected"
EVENT_URGED = "case.urged"
EVENT_OVERDUE = "case.overdue"
EVENT_UNROUTED = "case.unrouted"  # emitted with case.created / case.returned when no station was found

EVENT_TYPES: tuple[str, ...] = (
    EVENT_CREATED,
    EVENT_DISPATCHED,
    EVENT_ACCEPTED,
    EVENT_RETURNED,
    EVENT_ASSIGNED,
    EVENT_STARTED,
    EVENT_SCHEDULED,
    EVENT_NOTED,
    EVENT_EXTENSION_REQUESTED,
    EVENT_EXTENSION_APPROVED,
    EVENT_EXTENSION_DENIED,
    EVENT_RESOLVED,
    EVENT_REOPENED,
    EVENT_RATED,
    EVENT_CLOSED,
    EVENT_CANCELLED,
    EVENT_REJECTED,
    EVENT_URGED,
    EVENT_OVERDUE,
    EVENT_UNROUTED,
)


def state_label(state: str) -> str:
    """People-facing label, Chinese first: "已派单 dispatched"."""
    label = STATE_LABELS[state]
    return f"{label['zh']} {label['en']}"
