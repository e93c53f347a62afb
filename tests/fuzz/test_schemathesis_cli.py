"""The served OpenAPI document tells the whole truth: schemathesis with every check finds nothing.

This runs the schemathesis command line, as an integrator would, with ``--checks all`` over
the document the server publishes: server errors, undocumented statuses, headers and content
types, schema-valid requests refused (the document must state every enum, pattern, length
and range the server enforces), schema-invalid requests accepted, 405 with a true ``Allow``,
and our own check that every 4xx is a problem document (tests/fuzz/checks.py).

``make test`` runs it bounded (a fixed seed, 3 examples, the examples and fuzzing phases;
the coverage phase alone takes minutes on two cores): every operation
once, each with the token of one role that may call it, the operations spread over every role
that has any (public ones without a token). ``make fuzz`` (FUZZ_EXAMPLES=60) also runs it as
each role over all of that role's operations, with the coverage phase (boundary values,
unexpected methods and their ``Allow``) and the stateful phase.

``schemathesis.toml`` beside this file lists the few operations where a schema-valid
request may still be refused because validity depends on stored data (a service code that
must exist in the catalogue, form answers checked against that service's form, an ID
number's check digit, a cursor the server handed out), each with its reason.
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

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
LONG_RUN = EXAMPLES > 8
CONFIG = Path(__file__).with_name("schemathesis.toml")
ROOT = Path(__file__).resolve().parents[2]
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


def _assign_roles(document: dict[str, Any]) -> dict[str, str]:
    """operationId -> one role that may call it, spreading operations over every role that has any."""
    mine = {role: _operation_ids(document, role) for role in ROLES}
    load = dict.fromkeys(ROLES, 0)
    assigned: dict[str, str] = {}
    for role in sorted(ROLES, key=lambda r: len(mine[r])):  # the roles with fewest operations choose first
        for operation_id in mine[role]:
            if operation_id not in assigned:
                assigned[operation_id] = role
                load[role] += 1
    # Rebalance: give an operation to the least-loaded role that may call it.
    for operation_id, role in list(assigned.items()):
        options = [r for r in ROLES if operation_id in mine[r]]
        best = min(options, key=lambda r: load[r])
        if load[best] + 1 < load[role]:
            assigned[operation_id] = best
            load[best] += 1
            load[role] -= 1
    return assigned


def _run(world: World, tmp_path: Path, *, config: Path, operation_ids: list[str], headers: dict[str, str]) -> None:
    phases = os.environ.get("FUZZ_PHASES") or ("examples,coverage,fuzzing,stateful" if LONG_RUN else "examples,fuzzing")
    command = [
        str(CLI),
        "--config-file",
        str(config),
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
    for operation_id in operation_ids:
        command += ["--include-operation-id", operation_id]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz.checks", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, cwd=tmp_path, env=env)
    assert done.returncode == 0, f"schemathesis reported failures:\n{done.stdout[-20000:]}\n{done.stderr}"


def test_schemathesis_with_every_check_finds_no_failure_on_any_operation(world: World, tmp_path: Path) -> None:
    """The bounded run of `make test`: every operation once, each as one of the roles that may call it."""
    document = requests.get(world.url("/api/v1/openapi.json"), timeout=30).json()
    assigned = _assign_roles(document)
    assert {r for r in ROLES if _operation_ids(document, r)} == set(assigned.values()), "every role takes a share"
    config = tmp_path / "schemathesis.toml"
    lines = [CONFIG.read_text(encoding="utf-8")]
    for operation_id, role in sorted(assigned.items()):
        for name, value in world.auth(role).items():
            lines.append(
                f'[[operations]]\ninclude-operation-id = "{operation_id}"\nheaders = {{ {name} = "{value}" }}\n'
            )
    config.write_text("\n".join(lines), encoding="utf-8")
    _run(world, tmp_path, config=config, operation_ids=sorted(assigned), headers={})


@pytest.mark.skipif(not LONG_RUN, reason="part of make fuzz (FUZZ_EXAMPLES > 8)")
@pytest.mark.parametrize("role", ROLES)
def test_schemathesis_as_each_role_finds_no_failure(world: World, role: str, tmp_path: Path) -> None:
    document = requests.get(world.url("/api/v1/openapi.json"), timeout=30).json()
    mine = _operation_ids(document, role)
    assert mine, f"no operation for {role}"
    _run(world, tmp_path, config=CONFIG, operation_ids=mine, headers=world.auth(role))
