"""The served OpenAPI document tells the whole truth: schemathesis with every check finds nothing.

This runs the schemathesis command line, as an integrator would, with ``--checks all`` over
the document the server publishes, once per role (and once without a token for the public
operations), each run limited to the operations that role may call. Every check is on:
server errors, undocumented statuses, headers and content types, schema-valid requests
refused (the document must state every enum, pattern, length and range the server
enforces), schema-invalid requests accepted, 405 with a true ``Allow``, and more.

``schemathesis.toml`` beside this file lists the few operations where a schema-valid
request may still be refused with 422 because validity depends on stored data (a service
code that must exist in the catalogue, form answers checked against that service's form, an
ID number's check digit), each with its reason.

Bounded by default (a fixed seed, few examples, no stateful phase) so it fits in
`make test`; `make fuzz` raises FUZZ_EXAMPLES and adds the stateful phase.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fuzz.world import World

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
LONG_RUN = EXAMPLES > 8
CONFIG = Path(__file__).with_name("schemathesis.toml")
CLI = Path(sys.executable).with_name("schemathesis")
ANONYMOUS = "anonymous"
ROLES = (ANONYMOUS, "resident", "worker", "station_head", "supervisor", "admin", "client")
EVENT_STREAM = "text/event-stream"

pytestmark = pytest.mark.slow


def _operation_ids(document: dict[str, Any], role: str) -> list[str]:
    """The operations ``role`` may call (the public ones for nobody in particular)."""
    ids = []
    for operations in document["paths"].values():
        for op in operations.values():
            if EVENT_STREAM in op["responses"].get("200", {}).get("content", {}):
                continue  # never ends, so no response could be checked whole
            public = not op.get("security")
            if (role == ANONYMOUS and public) or (role != ANONYMOUS and not public and role in op.get("x-roles", [])):
                ids.append(op["operationId"])
    return ids


@pytest.mark.parametrize("role", ROLES)
def test_schemathesis_with_every_check_finds_no_failure(world: World, role: str, tmp_path: Path) -> None:
    document = requests.get(world.url("/api/v1/openapi.json"), timeout=30).json()
    mine = _operation_ids(document, role)
    assert mine, f"no operation for {role}"
    phases = "examples,coverage,fuzzing,stateful" if LONG_RUN else "examples,coverage,fuzzing"
    command = [
        str(CLI),
        "--config-file",
        str(CONFIG),
        "run",
        world.url("/api/v1/openapi.json"),
        "--checks",
        "all",
        "--phases",
        phases,
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "20261129",
        "--workers",
        "1",
        "--no-shrink",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--warnings",
        "off",
    ]
    for operation_id in mine:
        command += ["--include-operation-id", operation_id]
    for name, value in world.auth(role).items():
        command += ["--header", f"{name}: {value}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    assert done.returncode == 0, f"schemathesis as {role} reported failures:\n{done.stdout[-20000:]}\n{done.stderr}"
