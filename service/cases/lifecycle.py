"""The case state machine (工单流程, after the 12345 hotline standard): one pure table.

The states and event types it moves between are named in ``service/cases/states.py``.

``TRANSITIONS`` holds, for every action, the states it may start from, the state it leads
to, the roles that may take it, the relationship to the case each role needs, the fields
it requires and the event it emits. Everything else here is a plain function over that
table, so the rules are readable in one place and testable without I/O.

Conditions on the case beyond its state (approve or deny only a pending extension request,
request one only when none is pending, a resident reopens only within 7 days of resolution)
are rows' ``guard``s over :class:`CaseFacts`, which the cases service fills from the case.
``check_transition`` and ``allowed_actions`` apply the same table, roles, relationships and
guards, so a case offers exactly the actions that would succeed. The cases service also does
the conditional update on the case's expected state and version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

from service.cases.inputs import ActionInput
from service.cases.states import (
    ACCEPTED,
    CANCELLED,
    CLOSED,
    DISPATCHED,
    EVENT_ACCEPTED,
    EVENT_ASSIGNED,
    EVENT_CANCELLED,
    EVENT_CLOSED,
    EVENT_CREATED,
    EVENT_DISPATCHED,
    EVENT_EXTENSION_APPROVED,
    EVENT_EXTENSION_DENIED,
    EVENT_EXTENSION_REQUESTED,
    EVENT_NOTED,
    EVENT_OVERDUE,
    EVENT_RATED,
    EVENT_REJECTED,
    EVENT_REOPENED,
    EVENT_RESOLVED,
    EVENT_RETURNED,
    EVENT_SCHEDULED,
    EVENT_STARTED,
    EVENT_URGED,
    IN_PROGRESS,
    OPEN_STATES,
    REJECTED,
    RESOLVED,
    STATE_LABELS,
    UNROUTED,
)
from service.common.errors import InvalidStateError, NotFoundError, PermissionDeniedError, ValidationFailedError

# Pseudo target states: SAME keeps the state; ROUTED is dispatched or unrouted, as routing decides.
SAME = "same"
ROUTED = "routed"


# ------------------------------------------------------------------ roles and relationships

LifecycleRole = Literal["resident", "worker", "station_head", "supervisor", "admin", "client", "system"]
ROLES: tuple[str, ...] = ("resident", "worker", "station_head", "supervisor", "admin", "client", "system")

# What a role must be to the case to act on it: owner (filed it), station (works at its
# station), assignee (a worker: the assignee, or nobody is assigned yet), division (the
# supervisor's prefix covers it), any (admin, system).
Need = Literal["owner", "station", "assignee", "division", "any"]


@dataclasses.dataclass(frozen=True, slots=True)
class Relationship:
    """How the caller stands to one case: what it may see, which personal data in clear, and what
    the table lets it do. The cases service fills it from the case and principal (``access_of``)."""

    owner: bool = False  # the resident who filed it
    creator: bool = False  # the integrator client (with cases:read) or staff member who created it
    client_creator: bool = False  # the creator is this integrator client: it acts on the case as its owner
    station: bool = False  # works at the case's station
    assignee: bool = False  # is the case's assigned worker
    assigned: bool = False  # the case has an assigned worker at all
    division: bool = False  # supervisor whose division prefix covers the case
    admin: bool = False

    @property
    def can_view(self) -> bool:
        """Whether the caller may see the case at all."""
        return self.owner or self.creator or self.station or self.division or self.admin

    def satisfies(self, need: Need) -> bool:
        """Whether this relationship meets ``need``."""
        if need == "any":
            return True
        if need == "owner":
            return self.owner or self.client_creator
        if need == "station":
            return self.station
        if need == "assignee":
            return self.station and (self.assignee or not self.assigned)
        return self.division


# ------------------------------------------------------------------ facts about the case beyond its state


@dataclasses.dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the guards need to know about a case; the cases service fills it from the case."""

    extension_pending: bool = False  # an extension request waits for a decision
    within_reopen_window: bool = True  # resolved less than 7 days ago


# A guard: a condition on the case, named for the refusal it gives when it does not hold.
Guard = Literal["extension_pending", "no_extension_pending", "reopen_window"]


def _guard_refusal(guard: Guard, facts: CaseFacts, role: str) -> InvalidStateError | None:
    """The refusal when ``guard`` does not hold for ``role`` on a case with ``facts``, else None."""
    if guard == "extension_pending" and not facts.extension_pending:
        return InvalidStateError("no_extension_requested", "There is no pending extension request.")
    if guard == "no_extension_pending" and facts.extension_pending:
        return InvalidStateError("extension_pending", "An extension request is already waiting for a decision.")
    if guard == "reopen_window" and role == "resident" and not facts.within_reopen_window:
        return InvalidStateError("reopen_window_passed", "A case can be reopened within 7 days of resolution.")
    return None


# ------------------------------------------------------------------ the table


@dataclasses.dataclass(frozen=True, slots=True)
class Transition:
    """One row of the lifecycle table."""

    action: str
    label_zh: str
    from_states: frozenset[str]  # empty: creates the case
    to_state: str  # a state, SAME or ROUTED
    roles: Mapping[str, Need]  # role -> relationship it needs to the case
    event: str
    required: tuple[str, ...] = ()
    guard: Guard | None = None

    def target(self, state: str) -> str:
        """The state after the action from ``state`` (ROUTED stays for routing to decide)."""
        return state if self.to_state == SAME else self.to_state


_WORKER: dict[str, Need] = {"worker": "assignee", "station_head": "station"}
_STAFF: dict[str, Need] = {
    "worker": "station",
    "station_head": "station",
    "supervisor": "division",
    "admin": "any",
}
_SUPERVISION: dict[str, Need] = {"supervisor": "division", "admin": "any"}
_WORKING = frozenset({ACCEPTED, IN_PROGRESS})


def _t(
    action: str,
    label_zh: str,
    from_states: frozenset[str] | set[str],
    to_state: str,
    roles: Mapping[str, Need],
    event: str,
    required: tuple[str, ...] = (),
    guard: Guard | None = None,
) -> Transition:
    return Transition(action, label_zh, frozenset(from_states), to_state, dict(roles), event, required, guard)


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        _t(
            "submit",
            "提交",
            set(),
            ROUTED,
            {
                "resident": "any",
                "client": "any",
                "worker": "any",
                "station_head": "any",
                "supervisor": "any",
                "admin": "any",
            },
            EVENT_CREATED,
        ),
        _t("dispatch", "人工派单", {UNROUTED, DISPATCHED}, DISPATCHED, _SUPERVISION, EVENT_DISPATCHED, ("station_id",)),
        _t("accept", "签收", {DISPATCHED}, ACCEPTED, _WORKER, EVENT_ACCEPTED),
        _t("return", "退单", {DISPATCHED, ACCEPTED}, ROUTED, _WORKER, EVENT_RETURNED, ("reason",)),
        _t("assign", "分派", _WORKING, SAME, {"station_head": "station"}, EVENT_ASSIGNED, ("assignee_id",)),
        _t("start", "开始办理", {ACCEPTED}, IN_PROGRESS, _WORKER, EVENT_STARTED),
        _t("schedule", "预约时间", _WORKING, SAME, _WORKER, EVENT_SCHEDULED, ("scheduled_at",)),
        _t("note", "记录进展", OPEN_STATES, SAME, _STAFF, EVENT_NOTED, ("text",)),
        _t(
            "request_extension",
            "申请延期",
            _WORKING,
            SAME,
            {"station_head": "station"},
            EVENT_EXTENSION_REQUESTED,
            ("reason", "extra_days"),
            "no_extension_pending",
        ),
        _t(
            "approve_extension",
            "批准延期",
            _WORKING,
            SAME,
            _SUPERVISION,
            EVENT_EXTENSION_APPROVED,
            guard="extension_pending",
        ),
        _t(
            "deny_extension",
            "驳回延期",
            _WORKING,
            SAME,
            _SUPERVISION,
            EVENT_EXTENSION_DENIED,
            ("reason",),
            "extension_pending",
        ),
        _t("resolve", "办结", _WORKING, RESOLVED, _WORKER, EVENT_RESOLVED, ("result",)),
        _t(
            "reopen",
            "重办",
            {RESOLVED},
            IN_PROGRESS,
            {"resident": "owner", "supervisor": "division", "admin": "any"},
            EVENT_REOPENED,
            ("reason",),
            "reopen_window",
        ),
        _t("rate", "评价", {RESOLVED}, CLOSED, {"resident": "owner"}, EVENT_RATED, ("rating",)),
        _t("auto_close", "自动归档", {RESOLVED}, CLOSED, {"system": "any"}, EVENT_CLOSED),
        _t(
            "cancel",
            "撤回",
            {UNROUTED, DISPATCHED, ACCEPTED},
            CANCELLED,
            {"resident": "owner", "client": "owner"},
            EVENT_CANCELLED,
        ),
        _t(
            "reject",
            "不予受理",
            {DISPATCHED, ACCEPTED},
            REJECTED,
            {"station_head": "station"},
            EVENT_REJECTED,
            ("reason",),
        ),
        _t("urge", "催办", OPEN_STATES, SAME, _SUPERVISION, EVENT_URGED),
        _t("overdue", "超时督办", OPEN_STATES, SAME, {"system": "any"}, EVENT_OVERDUE),
    )
}
ACTIONS: tuple[str, ...] = tuple(TRANSITIONS)
# Actions taken on an existing case through POST /cases/{id}/{action} by people or clients.
CASE_ACTIONS: tuple[str, ...] = tuple(a for a, t in TRANSITIONS.items() if t.from_states and set(t.roles) != {"system"})


# ------------------------------------------------------------------ decisions


def transition_for(action: str) -> Transition:
    """The table row for ``action``; NotFoundError for an unknown action."""
    try:
        return TRANSITIONS[action]
    except KeyError:
        raise NotFoundError("unknown_action", f"There is no case action {action!r}.") from None


def check_transition(
    state: str,
    action: str,
    role: str,
    relationship: Relationship | None = None,
    facts: CaseFacts | None = None,
) -> Transition:
    """The transition for ``action`` by ``role`` from ``state``, or the reason it is refused.

    PermissionDeniedError when the role never takes this action (or, with ``relationship``,
    does not stand in the needed relation to the case); InvalidStateError
    ``illegal_transition`` when the case's state does not allow it, and (with ``facts``) the
    row's guard's own code when the case does not meet it.
    """
    t = transition_for(action)
    need = t.roles.get(role)
    if need is None:
        raise PermissionDeniedError(
            "action_not_allowed_for_role", f"The role {role!r} may not {action} a case.", action=action, role=role
        )
    if relationship is not None and not relationship.satisfies(need):
        raise PermissionDeniedError(
            "not_your_case", f"You may not {action} this case: it is not {_NEED_TEXT[need]}.", action=action
        )
    if state not in t.from_states:
        label = STATE_LABELS.get(state, {"zh": state, "en": state})
        raise InvalidStateError(
            "illegal_transition",
            f"The action {action!r} is not allowed on a case that is {label['zh']} ({label['en']}).",
            state=state,
            action=action,
            allowed_from=sorted(t.from_states),
        )
    if facts is not None and t.guard is not None:
        refusal = _guard_refusal(t.guard, facts, role)
        if refusal is not None:
            raise refusal
    return t


_NEED_TEXT: dict[str, str] = {
    "owner": "yours",
    "station": "at your station",
    "assignee": "assigned to you",
    "division": "in your division",
    "any": "visible to you",
}


def allowed_actions(state: str, role: str, relationship: Relationship, facts: CaseFacts | None = None) -> list[str]:
    """The actions ``role`` in ``relationship`` may take now on a case in ``state`` (table order).

    Exactly those ``check_transition`` lets through with the same arguments.
    """
    result = []
    for action in CASE_ACTIONS:
        try:
            check_transition(state, action, role, relationship, facts or CaseFacts())
        except (PermissionDeniedError, InvalidStateError):
            continue
        result.append(action)
    return result


def check_fields(action: str, data: ActionInput) -> None:
    """Raise ValidationFailedError when the action's required fields are missing or invalid."""
    t = transition_for(action)
    errors: dict[str, list[str]] = {}
    for name in t.required:
        value = getattr(data, name)
        if value is None or (isinstance(value, str) and not value.strip()):
            errors[name] = ["Missing data for required field."]
    rating = data.rating
    if (
        "rating" in t.required
        and "rating" not in errors
        and (isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5)
    ):
        errors["rating"] = ["Must be a whole number from 1 to 5."]
    days = data.extra_days
    if (
        "extra_days" in t.required
        and "extra_days" not in errors
        and (isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 60)
    ):
        errors["extra_days"] = ["Must be a whole number of working days from 1 to 60."]
    if errors:
        raise ValidationFailedError(
            f"{action}_fields_invalid", f"The {action} action needs valid {', '.join(sorted(errors))}.", errors=errors
        )
