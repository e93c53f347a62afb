"""The filters of the alerts collections, built from typed values."""

from __future__ import annotations

from typing import Any

from service.alerts.models import AlertScope


def division_range(prefix: str) -> dict[str, str]:
    """Division codes under ``prefix`` as an index range (codes are digits; ":" follows "9")."""
    return {"$gte": prefix, "$lt": prefix + ":"}


def scope_filter(scope: AlertScope, **equal: str | None) -> dict[str, Any]:
    """The records of ``scope``, narrowed by the equalities in ``equal`` that are given (a new dict)."""
    query: dict[str, Any] = {}
    if scope.township_prefix is not None:
        query["township"] = division_range(scope.township_prefix)
    if scope.county_code is not None:
        query["county_code"] = scope.county_code
    if scope.station_id is not None:
        query["station_id"] = scope.station_id
    query.update({k: v for k, v in equal.items() if v})
    return query
