"""Each collection has one owning area: no module outside it names the collection.

The import-linter contracts stop an area importing another's repository; this test stops
the other way round it: opening the collection by name (``db["events"]``, ``db.events``,
``EVENTS = "events"``, ``declare("events", ...)``). Other areas read through the owner's
service or read port (``service/cases/reads.py``, ``service/identity/directory.py``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# collection -> the area (package under service/) whose repository owns it.
OWNERS: dict[str, str] = {
    "alerts": "alerts",
    "devices": "alerts",
    "maintenance": "alerts",
    "rota": "alerts",
    "audit_log": "audit",
    "cases": "cases",
    "case_list_marks": "cases",
    "counters": "cases",
    "events": "cases",
    "service_types": "catalog",
    "idempotency_keys": "idempotency",
    "api_clients": "identity",
    "refresh_tokens": "identity",
    "residents": "identity",
    "revoked_tokens": "identity",
    "staff": "identity",
    "station_network": "network",
    "station_network_verifications": "network",
    "notifications": "notify",
    "notification_preferences": "notify",
    "notify_checkpoints": "notify",
    "notify_claims": "notify",
    "wechat_subscriptions": "notify",
    "counties": "stations",
    "index_versions": "stations",
    "stations": "stations",
    "uploads": "uploads",
    "uploads.chunks": "uploads",
    "uploads.files": "uploads",
    "elders": "visits",
    "visit_schedules": "visits",
    "visits": "visits",
    "volunteer_activities": "volunteers",
    "volunteer_attendance": "volunteers",
    "volunteer_certificates": "volunteers",
    "volunteer_certificate_counters": "volunteers",
    "volunteer_signups": "volunteers",
    "volunteer_record_requests": "volunteers",
    "volunteer_teams": "volunteers",
    "volunteers": "volunteers",
    "webhook_deliveries": "webhooks",
    "webhook_state": "webhooks",
    "webhook_subscriptions": "webhooks",
    "plan_snapshots": "workforce",
    "reference_figures": "workforce",
    "training_programmes": "workforce",
    "training_records": "workforce",
    "training_sessions": "workforce",
    "workforce_history": "workforce",
    "workforce_meta": "workforce",
    "workforce_people": "workforce",
}

# Infrastructure allowed to name every collection, and why.
EXEMPT = {
    # Re-keys documents written by old releases, once, before any area runs.
    "service/storage/migrations.py",
}


def _is_db(node: ast.expr) -> bool:
    """``db``, ``self.db``, ``ctx.db``, ``client.app[CTX].db`` ..."""
    if isinstance(node, ast.Name):
        return node.id == "db"
    return isinstance(node, ast.Attribute) and node.attr == "db"


def _assigned_texts(stmt: ast.stmt) -> list[tuple[str, str]]:
    """(name, text) of a module-level ``NAME = "text"`` or ``A, B = "a", "b"``."""
    if not isinstance(stmt, ast.Assign):
        return []
    pairs: list[tuple[str, str]] = []
    for target in stmt.targets:
        if isinstance(target, ast.Name) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            pairs.append((target.id, stmt.value.value))
        elif isinstance(target, ast.Tuple) and isinstance(stmt.value, ast.Tuple):
            for name, value in zip(target.elts, stmt.value.elts, strict=False):
                if isinstance(name, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
                    pairs.append((name.id, value.value))
    return pairs


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments."""
    return {name: text for stmt in tree.body for name, text in _assigned_texts(stmt)}


def _text(node: ast.expr, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def named_collections(source: str) -> list[tuple[int, str]]:
    """(line, collection) for every place a module names a collection of ``OWNERS``."""
    tree = ast.parse(source)
    constants = _constants(tree)
    hits: list[tuple[int, str]] = []
    for stmt in tree.body:
        for name, text in _assigned_texts(stmt):
            if text in OWNERS and name.isupper():
                hits.append((stmt.lineno, text))
    for node in ast.walk(tree):
        name: str | None = None
        if isinstance(node, ast.Subscript) and _is_db(node.value):
            name = _text(node.slice, constants)
        elif isinstance(node, ast.Attribute) and _is_db(node.value):
            name = node.attr
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called in ("declare", "get_collection"):
                name = _text(node.args[0], constants)
        if name in OWNERS:
            hits.append((getattr(node, "lineno", 0), name))
    return sorted(set(hits))


def area_of(path: Path) -> str | None:
    """The area a module under service/ belongs to (None for bootstrap.py)."""
    parts = path.relative_to(ROOT / "service").parts
    return parts[0] if len(parts) > 1 else None


def trespasses(path: Path, source: str) -> list[str]:
    area = area_of(path)
    return [
        f"{path.relative_to(ROOT)}:{line} names {name!r}, owned by service/{OWNERS[name]}/"
        for line, name in named_collections(source)
        if OWNERS[name] != area
    ]


def _modules() -> list[Path]:
    return sorted(p for p in (ROOT / "service").rglob("*.py") if str(p.relative_to(ROOT)) not in EXEMPT)


def test_no_module_names_a_collection_of_another_area() -> None:
    found = [msg for path in _modules() for msg in trespasses(path, path.read_text(encoding="utf-8"))]
    assert found == []


def test_every_collection_a_repository_opens_has_an_owner() -> None:
    """A new collection must be entered in OWNERS, so the check above covers it."""
    unowned: list[str] = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _constants(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and _is_db(node.value):
                name = _text(node.slice, constants)
                if name is not None and name not in OWNERS:
                    unowned.append(f"{path.relative_to(ROOT)}:{node.lineno} opens {name!r}")
    assert unowned == []


def test_each_owned_collection_is_opened_by_its_owner() -> None:
    """The table is not stale: every collection in it is opened in its owner's package."""
    opened: set[tuple[str, str]] = set()
    for path in _modules():
        area = area_of(path)
        source = path.read_text(encoding="utf-8")
        for _, name in named_collections(source):
            if area is not None:
                opened.add((name, area))
    missing = sorted(c for c, area in OWNERS.items() if (c, area) not in opened and "." not in c)
    assert missing == []


@pytest.mark.parametrize(
    "planted",
    [
        'async def f(db):\n    return await db["events"].find_one({})\n',
        "async def f(self):\n    return await self.db.cases.find_one({})\n",
        'EVENTS = "events"\n',
        'CLAIMS, EVENTS = "notify_claims", "events"\n',
        'CLIENTS = "api_clients"\n\nasync def f(ctx):\n    return ctx.db[CLIENTS]\n',
        'from service.storage.indexes import declare\n\ndeclare("staff")\n',
    ],
)
def test_a_read_behind_the_owners_back_is_caught(planted: str) -> None:
    path = ROOT / "service" / "webhooks" / "planted.py"
    assert trespasses(path, planted), planted


def test_the_owner_may_name_its_own_collection() -> None:
    path = ROOT / "service" / "cases" / "repository" / "events.py"
    source = 'COLLECTION = "events"\n\nclass R:\n    def __init__(self, db):\n        self.col = db[COLLECTION]\n'
    assert trespasses(path, source) == []
