"""docs/errors.md lists every problem code the code can answer, with the status it answers it with."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from handlers.problems import HTTP_EXCEPTION_CODES, STATUS_BY_FAMILY
from service.common import errors

ROOT = Path(__file__).resolve().parents[1]
ERRORS_MD = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
STATUS = {family.__name__: status for family, status in STATUS_BY_FAMILY} | {"DomainError": 400}
FAMILIES = {name for name in vars(errors) if name.endswith("Error")} | {"DomainError"}
# Codes written by the problem middleware itself (not raised as domain errors).
MIDDLEWARE_CODES = {"unknown_field": 422, "validation_failed": 422, "internal_error": 500, "malformed_body": 400}


def _raised_codes() -> dict[str, set[int]]:
    """code -> statuses for every domain error built with a literal code in handlers/, schemas/ and service/.

    Every place that raises a code counts (not only the first file found), so the answer does not
    depend on the order of the files.
    """
    found: dict[str, set[int]] = {code: {status} for code, status in MIDDLEWARE_CODES.items()}
    for status, (code, _detail) in HTTP_EXCEPTION_CODES.items():
        found.setdefault(code, set()).add(status)
    for folder in ("handlers", "schemas", "service"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Assign)
                    and [ast.unparse(t) for t in node.targets] == ["code"]
                    and isinstance(node.value, ast.IfExp)
                ):
                    # code = "a" if ... else "b", raised just below: status 0 means "check the name only"
                    for value in (node.value.body, node.value.orelse):
                        if isinstance(value, ast.Constant) and isinstance(value.value, str):
                            found.setdefault(value.value, set())
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                first = node.args[0] if node.args else None
                if name in FAMILIES and isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.setdefault(first.value, set()).add(STATUS.get(name, 400))
                if name == "require_role":
                    # service.common.models.require_role raises PermissionDeniedError with its ``code``
                    role_code = {k.arg: k.value for k in node.keywords}.get("code")
                    if isinstance(role_code, ast.Constant) and isinstance(role_code.value, str):
                        found.setdefault(role_code.value, set()).add(STATUS["PermissionDeniedError"])
                if name == "problem_response":
                    kw = {k.arg: k.value for k in node.keywords}
                    code, status = kw.get("code"), kw.get("status")
                    if isinstance(code, ast.Constant) and isinstance(status, ast.Constant):
                        found.setdefault(str(code.value), set()).add(int(status.value))
    return found


def _documented() -> dict[str, set[int]]:
    """code -> statuses, from every table row ``| status | `code` | meaning |`` of docs/errors.md."""
    out: dict[str, set[int]] = {}
    for status, code in re.findall(r"^\| (\d{3}|—) \| `([a-z][a-z0-9_]*)` \|", ERRORS_MD, re.M):
        out.setdefault(code, set()).update({int(status)} if status.isdigit() else set())
    return out


def test_the_code_finds_the_codes_it_raises() -> None:
    raised = _raised_codes()
    assert {"case_not_found", "unknown_field", "not_found", "illegal_transition"} <= set(raised)
    assert raised["residents_only"] == {403}  # raised only through require_role(code=...)


def test_every_code_the_service_can_answer_is_documented_with_its_status() -> None:
    raised, documented = _raised_codes(), _documented()
    missing = sorted(code for code in raised if code not in documented)
    assert missing == [], "document these problem codes in docs/errors.md"
    wrong = sorted(
        f"{code}: answered {status}, documented {sorted(documented[code])}"
        for code, statuses in raised.items()
        for status in statuses
        if documented[code] and status not in documented[code]
    )
    assert wrong == []


def test_every_documented_code_is_still_answered() -> None:
    raised = _raised_codes()
    # Codes built from a variable (the store's translator, OAuth2 errors) are not literals above.
    dynamic = {"database_unavailable", "database_busy", "cache_unavailable", "http_error", "rate_limited"}
    stale = sorted(code for code in _documented() if code not in raised and code not in dynamic)
    assert stale == [], "docs/errors.md lists codes nothing answers any more"
