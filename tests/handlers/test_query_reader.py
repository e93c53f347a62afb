"""Query strings of the case routes are loaded once each and handed out as copies."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from marshmallow import ValidationError

from handlers.io import QueryReader, read_query
from schemas.cases import CaseQuerySchema


def test_a_query_string_loads_once_and_every_caller_gets_its_own_equal_copy() -> None:
    schema = CaseQuerySchema()
    reader = QueryReader(schema)
    request = make_mocked_request("GET", "/api/v1/cases?limit=5&status=dispatched,accepted")
    first, second = reader(request), reader(request)
    assert first == second == read_query(request, schema)
    assert first["status"] == ["dispatched", "accepted"] and first["limit"] == 5
    first["status"].append("closed")  # a caller changing its copy changes nobody else's
    assert reader(request)["status"] == ["dispatched", "accepted"]
    assert first is not second and first["status"] is not second["status"]


def test_a_query_that_fails_to_load_fails_each_time_and_only_the_last_strings_are_kept() -> None:
    reader = QueryReader(CaseQuerySchema(), kept=2)
    bad = make_mocked_request("GET", "/api/v1/cases?limit=500")
    for _ in range(2):
        with pytest.raises(ValidationError):
            reader(bad)
    for n in (1, 2, 3):
        assert reader(make_mocked_request("GET", f"/api/v1/cases?limit={n}"))["limit"] == n
    assert list(reader._loaded) == ["limit=2", "limit=3"]
