"""How a case is stored: the documents of collection ``cases`` and the records they become.

``case_from_document`` is the one way a stored document becomes a ``Case``; ids turn into strings here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from service.cases.models import (
    Actor,
    Case,
    CaseRef,
    Contact,
    HistoryEntry,
    Overdue,
    Placement,
    Rating,
    ServedPerson,
    ServiceRef,
)
from service.common import geo


def history_doc(entry: HistoryEntry) -> dict[str, Any]:
    """A history line as stored in ``cases.history``."""
    return {
        "event_id": entry.event_id,
        "action": entry.action,
        "actor": {"subject": entry.actor_subject, "role": entry.actor_role},
        "from_state": entry.from_state,
        "to_state": entry.to_state,
        "at": entry.at,
        "note": entry.note,
        "data": entry.data,
    }


def history_from_doc(doc: Mapping[str, Any]) -> HistoryEntry:
    """A history line as ``cases.history`` holds it, typed."""
    actor = doc["actor"]
    return HistoryEntry(
        event_id=doc["event_id"],
        action=doc["action"],
        actor_subject=actor["subject"],
        actor_role=actor["role"],
        from_state=doc.get("from_state"),
        to_state=doc["to_state"],
        at=doc["at"],
        note=doc.get("note"),
        data=dict(doc.get("data") or {}),
    )


R = TypeVar("R", ServiceRef, Contact, ServedPerson)


# The parts each sub-document record knows (its fields but ``keys``), read once.
_KNOWN_PARTS: dict[type, frozenset[str]] = {
    cls: frozenset(f.name for f in dataclasses.fields(cls)) - {"keys"} for cls in (ServiceRef, Contact, ServedPerson)
}


def _part(cls: type[R], doc: Mapping[str, Any] | None) -> R | None:
    """A sub-document as its record, keeping which of its parts it holds and their order."""
    if doc is None:
        return None
    known = _KNOWN_PARTS[cls]
    held = tuple(k for k in doc if k in known)
    return cls(**{k: doc[k] for k in held}, keys=held)


# The services cases were filed for, as records, by their stored parts: a page of cases names a few
# services many times over, and a ServiceRef is frozen, so one record serves every case that holds the
# same parts. It holds no personal data; it is cleared when full (a catalogue has tens of services).
_SERVICES: dict[tuple[tuple[str, Any], ...], ServiceRef] = {}
_SERVICES_MAX = 1024


def _service(doc: Mapping[str, Any] | None) -> ServiceRef:
    if doc is None:
        return ServiceRef(code="")
    try:
        key = tuple(doc.items())
        ref = _SERVICES.get(key)
    except TypeError:  # a part that cannot be a key (none is stored so): built each time
        return _part(ServiceRef, doc) or ServiceRef(code="")
    if ref is None:
        ref = _part(ServiceRef, doc) or ServiceRef(code="")
        if len(_SERVICES) >= _SERVICES_MAX:
            _SERVICES.clear()
        _SERVICES[key] = ref
    return ref


def _point(doc: Mapping[str, Any] | None) -> geo.Point | None:
    if not doc:
        return None
    lon, lat = doc["coordinates"][:2]
    return geo.Point(lon, lat)


def actor_from(doc: Mapping[str, Any] | None) -> Actor | None:
    """Who a stored actor sub-document names (None when it is missing)."""
    return Actor(doc.get("subject"), doc.get("role")) if isinstance(doc, Mapping) else None


def ref_from(doc: Mapping[str, Any]) -> CaseRef:
    """Which case a stored document (or projection of one) is."""
    return CaseRef(str(doc["_id"]), doc["number"], doc.get("station_id"), doc.get("division"))


def _slot_builder(cls: type) -> Callable[..., Any]:
    """A constructor of the frozen, slotted dataclass ``cls`` that takes every field by keyword
    (none may be left out) and sets the slots directly.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, looked up
    anew for each of the case's 51 fields; a page of 20 cases paid that 1,000 times. The result
    is the same object (``tests/service/cases/test_cases_repository.py`` compares them).
    """
    names = [f.name for f in dataclasses.fields(cls)]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def build(*, {', '.join(names)}):", "    obj = _new(_cls)"]
    for name in names:
        namespace[f"_set_{name}"] = cls.__dict__[name].__set__
        lines.append(f"    _set_{name}(obj, {name})")
    lines.append("    return obj")
    exec(compile("\n".join(lines), f"<build {cls.__name__}>", "exec"), namespace)
    return namespace["build"]  # type: ignore[no-any-return]


_build_case: Callable[..., Case] = _slot_builder(Case)
_build_placement: Callable[..., Placement] = _slot_builder(Placement)
# The four ways a case can stand against its deadlines, built once (Overdue is frozen).
_OVERDUE = {(sign, resolve): Overdue(sign=sign, resolve=resolve) for sign in (False, True) for resolve in (False, True)}


def _overdue(doc: Any) -> Overdue:
    if not doc:
        return _OVERDUE[False, False]
    return _OVERDUE[bool(doc.get("sign", False)), bool(doc.get("resolve", False))]


def case_from_document(doc: Mapping[str, Any]) -> Case:
    """The case a stored document holds (ids as strings): the one way a document becomes a ``Case``."""
    get = doc.get
    rating = get("rating")
    history = get("history")  # left out of lists' reads
    return _build_case(
        id=str(doc["_id"]),
        number=doc["number"],
        version=doc["version"],
        status=doc["status"],
        service=_service(get("service")),
        created_by=actor_from(get("created_by")) or Actor(None, None),
        created_at=doc["created_at"],
        updated_at=get("updated_at", doc["created_at"]),
        placement=_build_placement(
            station_id=get("station_id"),
            station_code=get("station_code"),
            station_name=get("station_name"),
            division=get("division"),
            county_code=get("county_code"),
        ),
        answers=get("answers") or {},
        answers_secure=get("answers_secure") or {},
        personal=get("personal"),
        description=get("description"),
        location=_point(get("location")),
        location_input=get("location_input"),
        division_code=get("division_code"),
        address=get("address"),
        contact=_part(Contact, get("contact")),
        served_person=_part(ServedPerson, get("served_person")),
        preferred_window=get("preferred_window"),
        anonymous=bool(get("anonymous")),
        photos=tuple(get("photos") or ()),
        owner=get("owner"),
        source=get("source"),
        routing=get("routing"),
        returned_by=tuple(get("returned_by") or ()),
        return_count=get("return_count") or 0,
        assignee_id=get("assignee_id"),
        sign_due_at=doc["sign_due_at"],
        resolve_due_at=doc["resolve_due_at"],
        next_due_at=get("next_due_at"),
        overdue=_overdue(get("overdue")),
        urge_count=get("urge_count") or 0,
        accepted_at=get("accepted_at"),
        signed_late=get("signed_late"),
        started_at=get("started_at"),
        scheduled_at=get("scheduled_at"),
        extension=get("extension"),
        resolved_at=get("resolved_at"),
        result=get("result"),
        result_photos=tuple(get("result_photos") or ()),
        resolved_late=get("resolved_late"),
        reopened_at=get("reopened_at"),
        reopen_count=get("reopen_count") or 0,
        rating=Rating(rating, get("rating_comment"), get("rated_at")) if rating is not None else None,
        closed_at=get("closed_at"),
        cancelled_at=get("cancelled_at"),
        rejected_at=get("rejected_at"),
        urged_at=get("urged_at"),
        history=tuple(map(history_from_doc, history)) if history else (),
        fields_set=frozenset(doc),
    )
