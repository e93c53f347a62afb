"""Checks of our own for schemathesis: every 4xx is an RFC 9457 problem document.

Imported by tests/fuzz/test_openapi_fuzz.py, and loaded by the schemathesis command line in
tests/fuzz/test_schemathesis_cli.py through ``SCHEMATHESIS_HOOKS=tests.fuzz.checks``.
"""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree

import schemathesis

OPEN311_PREFIX = "/open311/"
PROBLEM_TYPE = "application/problem+json"


@schemathesis.check
def problem_document(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every 4xx is a problem document (RFC 9457), or GeoReport v2's error list on Open311 routes."""
    if not 400 <= response.status_code < 500:
        return
    content_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    if case.operation.path.startswith(OPEN311_PREFIX):
        _check_open311_errors(content_type, response.content)
        return
    body = json.loads(response.content)
    assert content_type == PROBLEM_TYPE, f"a {response.status_code} answered {content_type!r}, not {PROBLEM_TYPE}"
    assert isinstance(body, dict), f"problem document is not an object: {body!r}"
    missing = {"type", "title", "status", "detail", "code"} - set(body)
    assert not missing, f"problem document lacks {sorted(missing)}: {body!r}"
    assert body["status"] == response.status_code, f"problem status {body['status']} != {response.status_code}"
    assert re.fullmatch(r"[a-z][a-z0-9_]*", str(body["code"])), f"problem code is not snake_case: {body['code']!r}"


def _check_open311_errors(content_type: str, content: bytes) -> None:
    """GeoReport v2 errors: [{code, description}] in JSON, <errors><error>… in XML."""
    if content_type == "text/xml":
        root = ElementTree.fromstring(content)
        items = [{child.tag: child.text for child in error} for error in root.findall("error")]
        assert root.tag == "errors" and items, f"Open311 XML error is not an <errors> list: {content[:200]!r}"
    else:
        assert content_type == "application/json", f"Open311 error answered {content_type!r}"
        items = json.loads(content)
        assert isinstance(items, list) and items, f"Open311 error is not a GeoReport error list: {items!r}"
    for item in items:
        assert isinstance(item, dict) and {"code", "description"} <= set(item), f"bad Open311 error {item!r}"


@schemathesis.check
def xml_well_formed(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every XML answer parses with a strict parser (expat refuses characters XML 1.0 does not allow)."""
    content_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    if content_type == "text/xml":
        ElementTree.fromstring(response.content)
