"""Every request example in docs/ runs: each marked example is sent to the app and accepted.

A request example is a ```json block right after a line
``<!-- example: METHOD /path as ROLE ... -->``; the README's walkthrough has its own test
(tests/test_walkthrough.py). Case numbers quoted anywhere in the docs have the one format
the code makes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from handlers.keys import CTX
from service.cases.numbers import CASE_NUMBER
from service.catalog import service as catalog
from tests.factories import bearer_of, make_station

ROOT = Path(__file__).resolve().parents[1]
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
EXAMPLE = re.compile(r"<!-- example: (GET|POST|PUT|PATCH|DELETE) (\S+) as (\w+).*?-->\n```json\n(.*?)```", re.S)


def _examples() -> list[tuple[str, str, str, str, str]]:
    found = []
    for doc in DOCS:
        for method, path, role, body in EXAMPLE.findall(doc.read_text(encoding="utf-8")):
            found.append((doc.name, method, path, role, body))
    return found


EXAMPLES = _examples()


def test_the_docs_mark_their_request_examples() -> None:
    assert any(path == "/api/v1/cases" for _doc, _m, path, _r, _b in EXAMPLES)


@pytest.mark.parametrize(("doc", "method", "path", "role", "body"), EXAMPLES, ids=[f"{e[0]}:{e[2]}" for e in EXAMPLES])
async def test_a_documented_request_example_is_accepted(
    client: Any, settings: Any, doc: str, method: str, path: str, role: str, body: str
) -> None:
    ctx = client.server.app[CTX]
    await catalog.seed_catalog(ctx)
    payload = json.loads(body)
    code = payload.get("division_code")
    # The township's station, as the seeded station list has it (staff of a station work there).
    station = await make_station(ctx, code=code or "341021100", name="徽城镇社工站", point=(118.41, 29.86))
    station_id = station.id
    headers = await bearer_of(ctx, role, station_id=station_id, scopes=("cases:read", "cases:write"))
    resp = await client.request(method, path, json=payload, headers=headers)
    assert resp.status < 300, f"{doc}: {method} {path} answered {resp.status}: {await resp.text()}"


def test_every_case_number_in_the_docs_has_the_format_the_code_makes() -> None:
    numbers = {n for doc in DOCS for n in re.findall(r"\bHM\d{10,}\b", doc.read_text(encoding="utf-8"))}
    assert numbers, "the docs quote case numbers"
    assert sorted(n for n in numbers if not CASE_NUMBER.match(n)) == []
