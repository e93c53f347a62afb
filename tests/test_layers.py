"""The import-linter contracts hold on the real tree and catch a layer violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("handlers", "schemas", "service", "config")


def _lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(where)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=where, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _append_import(module: Path, statement: str) -> None:
    module.write_text(module.read_text() + f"\n{statement}  # layer violation planted by the test\n")


def test_real_tree_keeps_every_contract() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_copied_tree_keeps_every_contract(tree_copy: Path) -> None:
    result = _lint_imports(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr


def test_driver_import_in_a_handler_breaks_the_http_contract(tree_copy: Path) -> None:
    _append_import(tree_copy / "handlers" / "health.py", "import pymongo")
    result = _lint_imports(tree_copy)
    assert result.returncode != 0
    assert "The HTTP layer never touches a database driver or the storage package BROKEN" in result.stdout
    assert "handlers.health -> pymongo" in result.stdout


def test_web_framework_import_in_the_domain_breaks_the_domain_contract(tree_copy: Path) -> None:
    _append_import(tree_copy / "service" / "common" / "health.py", "import aiohttp")
    result = _lint_imports(tree_copy)
    assert result.returncode != 0
    assert "The domain never imports the web framework or the schema library BROKEN" in result.stdout
    assert "service.common.health -> aiohttp" in result.stdout
