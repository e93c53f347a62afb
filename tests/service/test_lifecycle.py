"""The case lifecycle table, checked exhaustively against DESIGN.md section 3."""

from __future__ import annotations

import itertools

import pytest

from service.cases import lifecycle as lc
from service.cases import states
from service.cases.inputs import ActionInput
from service.cases.lifecycle import (
    CASE_ACTIONS,
    ROLES,
    CaseFacts,
    Relationship,
    allowed_actions,
    check_fields,
    check_transition,
)
from service.common.errors import InvalidStateError, NotFoundError, PermissionDeniedError, ValidationFailedError

OPEN = {"unrouted", "dispatched", "accepted", "in_progress"}
WORKING = {"accepted", "in_progress"}
WORKERS = {"worker", "station_head"}
SUPERVISION = {"supervisor", "admin"}

# Written out independently of the module: action -> (from states, to state, roles, event, required).
EXPECTED: dict[str, tuple[set[str], str, set[str], str, set[str]]] = {
    "submit": (
        set(),
        "routed",
        {"resident", "client", "worker", "station_head", "supervisor", "admin"},
        "case.created",
        set(),
    ),
    "dispatch": ({"unrouted", "dispatched"}, "dispatched", SUPERVISION, "case.dispatched", {"station_id"}),
    "accept": ({"dispatched"}, "accepted", WORKERS, "case.accepted", set()),
    "return": ({"dispatched", "accepted"}, "routed", WORKERS, "case.returned", {"reason"}),
    "assign": (WORKING, "same", {"station_head"}, "case.assigned", {"assignee_id"}),
    "start": ({"accepted"}, "in_progress", WORKERS, "case.started", set()),
    "schedule": (WORKING, "same", WORKERS, "case.scheduled", {"scheduled_at"}),
    "note": (OPEN, "same", WORKERS | SUPERVISION, "case.noted", {"text"}),
    "request_extension": (WORKING, "same", {"station_head"}, "case.extension_requested", {"reason", "extra_days"}),
    "approve_extension": (WORKING, "same", SUPERVISION, "case.extension_approved", set()),
    "deny_extension": (WORKING, "same", SUPERVISION, "case.extension_denied", {"reason"}),
    "resolve": (WORKING, "resolved", WORKERS, "case.resolved", {"result"}),
    "reopen": ({"resolved"}, "in_progress", {"resident", "supervisor", "admin"}, "case.reopened", {"reason"}),
    "rate": ({"resolved"}, "closed", {"resident"}, "case.rated", {"rating"}),
    "auto_close": ({"resolved"}, "closed", {"system"}, "case.closed", set()),
    "cancel": ({"unrouted", "dispatched", "accepted"}, "cancelled", {"resident", "client"}, "case.cancelled", set()),
    "reject": ({"dispatched", "accepted"}, "rejected", {"station_head"}, "case.rejected", {"reason"}),
    "urge": (OPEN, "same", SUPERVISION, "case.urged", set()),
    "overdue": (OPEN, "same", {"system"}, "case.overdue", set()),
}

EVERYONE = Relationship(owner=True, station=True, assignee=True, assigned=True, division=True)


def test_table_has_exactly_the_designed_actions_and_states() -> None:
    assert set(lc.TRANSITIONS) == set(EXPECTED)
    assert set(states.STATES) == {
        "unrouted",
        "dispatched",
        "accepted",
        "in_progress",
        "resolved",
        "closed",
        "cancelled",
        "rejected",
    }
    assert set(states.STATE_LABELS) == set(states.STATES)
    assert states.state_label("dispatched") == "已派单 dispatched"
    assert {t.event for t in lc.TRANSITIONS.values()} | {"case.unrouted"} == set(states.EVENT_TYPES)


@pytest.mark.parametrize(("state", "action"), list(itertools.product(states.STATES, EXPECTED)))
def test_every_state_and_action_follows_the_design(state: str, action: str) -> None:
    from_states, to_state, roles, event, required = EXPECTED[action]
    for role in lc.ROLES:
        if role not in roles:
            with pytest.raises(PermissionDeniedError) as denied:
                check_transition(state, action, role)
            assert denied.value.code == "action_not_allowed_for_role"
        elif state in from_states:
            t = check_transition(state, action, role, EVERYONE)
            assert t.event == event
            assert set(t.required) == required
            assert t.target(state) == (state if to_state == "same" else to_state)
        else:
            with pytest.raises(InvalidStateError) as refused:
                check_transition(state, action, role, EVERYONE)
            assert refused.value.code == "illegal_transition"
            assert refused.value.extra["state"] == state


def test_unknown_action_is_not_found() -> None:
    with pytest.raises(NotFoundError) as exc:
        check_transition("dispatched", "teleport", "worker")
    assert exc.value.code == "unknown_action"


def test_worker_of_another_station_cannot_accept() -> None:
    with pytest.raises(PermissionDeniedError) as exc:
        check_transition("dispatched", "accept", "worker", Relationship(station=False))
    assert exc.value.code == "not_your_case"


def test_worker_cannot_resolve_a_case_assigned_to_a_colleague_but_the_head_can() -> None:
    colleague_has_it = Relationship(station=True, assigned=True, assignee=False)
    with pytest.raises(PermissionDeniedError):
        check_transition("in_progress", "resolve", "worker", colleague_has_it)
    assert check_transition("in_progress", "resolve", "station_head", colleague_has_it).to_state == "resolved"
    assert check_transition("in_progress", "resolve", "worker", Relationship(station=True)).action == "resolve"


def test_resident_cannot_cancel_someone_elses_case() -> None:
    with pytest.raises(PermissionDeniedError):
        check_transition("dispatched", "cancel", "resident", Relationship(owner=False))


def test_supervisor_outside_the_division_cannot_dispatch() -> None:
    with pytest.raises(PermissionDeniedError):
        check_transition("unrouted", "dispatch", "supervisor", Relationship(division=False))
    assert check_transition("unrouted", "dispatch", "admin", Relationship()).to_state == "dispatched"


@pytest.mark.parametrize(
    ("state", "role", "rel", "expected"),
    [
        ("dispatched", "worker", Relationship(station=True), ["accept", "return", "note"]),
        ("dispatched", "worker", Relationship(station=False), []),
        ("dispatched", "station_head", Relationship(station=True), ["accept", "return", "note", "reject"]),
        ("dispatched", "resident", Relationship(owner=True), ["cancel"]),
        ("dispatched", "resident", Relationship(owner=False), []),
        ("unrouted", "supervisor", Relationship(division=True), ["dispatch", "note", "urge"]),
        (
            "accepted",
            "station_head",
            Relationship(station=True),
            ["return", "assign", "start", "schedule", "note", "request_extension", "resolve", "reject"],
        ),
        ("in_progress", "supervisor", Relationship(division=True), ["note", "urge"]),
        ("resolved", "resident", Relationship(owner=True), ["reopen", "rate"]),
        ("resolved", "worker", Relationship(station=True), []),
        ("closed", "admin", Relationship(), []),
        ("resolved", "system", Relationship(), []),
    ],
)
def test_allowed_actions(state: str, role: str, rel: Relationship, expected: list[str]) -> None:
    assert allowed_actions(state, role, rel) == expected


PENDING = CaseFacts(extension_pending=True)


@pytest.mark.parametrize(
    ("state", "role", "rel", "facts", "expected"),
    [
        (
            "in_progress",
            "supervisor",
            Relationship(division=True),
            PENDING,
            ["note", "approve_extension", "deny_extension", "urge"],
        ),
        (
            "accepted",
            "station_head",
            Relationship(station=True),
            PENDING,
            ["return", "assign", "start", "schedule", "note", "resolve", "reject"],
        ),
        ("resolved", "resident", Relationship(owner=True), CaseFacts(within_reopen_window=False), ["rate"]),
        (
            "resolved",
            "supervisor",
            Relationship(division=True),
            CaseFacts(within_reopen_window=False),
            ["reopen"],
        ),
    ],
)
def test_allowed_actions_follow_the_guards(
    state: str, role: str, rel: Relationship, facts: CaseFacts, expected: list[str]
) -> None:
    assert allowed_actions(state, role, rel, facts) == expected


def test_every_allowed_action_passes_check_transition_and_no_other_does() -> None:
    """One source of truth: allowed_actions lists exactly what check_transition lets through."""
    relationships = [
        Relationship(owner=True),
        Relationship(station=True),
        Relationship(station=True, assigned=True),
        Relationship(station=True, assigned=True, assignee=True),
        Relationship(division=True),
    ]
    facts_cases = [CaseFacts(), PENDING, CaseFacts(within_reopen_window=False)]
    for state in states.STATES:
        for role in ROLES:
            for rel in relationships:
                for facts in facts_cases:
                    offered = set(allowed_actions(state, role, rel, facts))
                    for action in CASE_ACTIONS:
                        try:
                            check_transition(state, action, role, rel, facts)
                            passes = True
                        except (PermissionDeniedError, InvalidStateError):
                            passes = False
                        assert passes == (action in offered), (state, role, rel, facts, action)


def test_guards_refuse_with_their_own_codes() -> None:
    rel = Relationship(division=True)
    with pytest.raises(InvalidStateError) as exc:
        check_transition("in_progress", "approve_extension", "supervisor", rel, CaseFacts())
    assert exc.value.code == "no_extension_requested"
    with pytest.raises(InvalidStateError) as exc:
        check_transition("in_progress", "request_extension", "station_head", Relationship(station=True), PENDING)
    assert exc.value.code == "extension_pending"
    with pytest.raises(InvalidStateError) as exc:
        check_transition(
            "resolved", "reopen", "resident", Relationship(owner=True), CaseFacts(within_reopen_window=False)
        )
    assert exc.value.code == "reopen_window_passed"


def test_required_fields_are_enforced() -> None:
    with pytest.raises(ValidationFailedError) as exc:
        check_fields("return", ActionInput(reason="  "))
    assert exc.value.errors == {"reason": ["Missing data for required field."]}
    check_fields("return", ActionInput(reason="不属于本站辖区"))
    check_fields("accept", ActionInput())
    with pytest.raises(ValidationFailedError):
        check_fields("resolve", ActionInput())


@pytest.mark.parametrize("rating", [0, 6, 3.5, True, "5", None])
def test_rating_must_be_one_to_five(rating: object) -> None:
    with pytest.raises(ValidationFailedError) as exc:
        check_fields("rate", ActionInput(rating=rating))  # type: ignore[arg-type]  # bad input on purpose
    assert "rating" in exc.value.errors


@pytest.mark.parametrize("rating", [1, 5])
def test_rating_bounds_are_accepted(rating: int) -> None:
    check_fields("rate", ActionInput(rating=rating))
