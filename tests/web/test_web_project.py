"""The console's own checks from the Python suite: API types up to date, type check, Vitest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.web.support import BIN, WEB, need_node_modules

ROOT = WEB.parent


def test_generated_api_types_match_the_openapi_document(tmp_path: Path) -> None:
    need_node_modules()
    document = tmp_path / "openapi.json"
    subprocess.run([sys.executable, "run.py", "openapi", "-o", str(document)], cwd=ROOT, check=True, timeout=120)
    assert json.loads(document.read_text())["openapi"].startswith("3.1")
    fresh = tmp_path / "schema.d.ts"
    subprocess.run(
        [str(BIN / "openapi-typescript"), str(document), "-o", str(fresh)],
        cwd=WEB,
        check=True,
        capture_output=True,
        timeout=120,
    )
    committed = (WEB / "src" / "api" / "schema.d.ts").read_text()
    assert fresh.read_text() == committed, "web/src/api/schema.d.ts is stale: run `make api-types` and commit it"


def test_console_type_checks() -> None:
    need_node_modules()
    done = subprocess.run(
        [str(BIN / "vue-tsc"), "--noEmit", "-p", "tsconfig.json"], cwd=WEB, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_vitest_unit_tests_pass() -> None:
    need_node_modules()
    done = subprocess.run(
        [str(BIN / "vitest"), "run", "--reporter=dot"], cwd=WEB, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert " passed" in done.stdout
