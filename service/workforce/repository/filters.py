"""The filters of the workforce collections, built from typed values."""

from __future__ import annotations

import re
from typing import Any

from service.common.paging import all_of
from service.workforce.models import FigureFilter, PeopleFilter, ReadScope, RecordFilter


def scope_match(prefix: str) -> dict[str, Any]:
    """The filter on stored division fields for everything under ``prefix`` (exact fields, so indexes serve it)."""
    if len(prefix) == 2:
        return {"province_code": prefix + "0000"}
    if len(prefix) == 4:
        return {"city_code": prefix + "00"}
    if len(prefix) == 6:
        return {"county_code": prefix}
    if len(prefix) == 9:
        return {"division": prefix}
    return {"division": {"$regex": "^" + re.escape(prefix)}}


def _scope(scope: ReadScope) -> dict[str, Any]:
    if scope.station_id is not None:
        return {"employer.station_id": scope.station_id}
    if scope.prefix is not None:
        return scope_match(scope.prefix)
    return {}


def people_query(f: PeopleFilter) -> dict[str, Any]:
    """The register entries of ``f``."""
    conditions = [_scope(f.scope)]
    if f.division_prefix is not None:
        conditions.append(scope_match(f.division_prefix))
    filters = {
        "employer.station_id": f.station_id,
        "status": f.status,
        "role": f.role,
        "occupation": f.occupation,
        "employer.kind": f.employer_kind,
        "qualification.level": f.qualification_level,
    }
    conditions.append({k: v for k, v in filters.items() if v is not None})
    if f.in_post_on is not None:
        day = f.in_post_on.isoformat()
        conditions.append({"start_date": {"$lte": day}, "$or": [{"end_date": None}, {"end_date": {"$gt": day}}]})
    return all_of(conditions)


def records_query(f: RecordFilter) -> dict[str, Any]:
    """The training records of ``f``."""
    conditions = [_scope(f.scope)]
    if f.division_prefix is not None:
        conditions.append(scope_match(f.division_prefix))
    simple = {"person_id": f.person_id, "category": f.category, "status": f.status, "session_id": f.session_id}
    conditions.append({k: v for k, v in simple.items() if v is not None})
    if f.completed_from or f.completed_to:
        window: dict[str, str] = {}
        if f.completed_from:
            window["$gte"] = f.completed_from.isoformat()
        if f.completed_to:
            window["$lte"] = f.completed_to.isoformat()
        conditions.append({"completed_on": window})
    return all_of(conditions)


def figures_query(f: FigureFilter) -> dict[str, Any]:
    """The reference figures of ``f``."""
    query: dict[str, Any] = {}
    if f.prefix:
        query["division"] = {"$regex": "^" + f.prefix}
    if f.year is not None:
        query["year"] = f.year
    return query
