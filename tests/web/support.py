"""The web/ project from Python: where it is, and running its Node tools."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
BIN = WEB / "node_modules" / ".bin"


def need_node_modules() -> None:
    """Skip when web/ has no node_modules (make test installs them); in CI they must be there."""
    if (BIN / "vite").exists():
        return
    if os.environ.get("CI"):
        pytest.fail("web/node_modules is missing: run the suite with `make test`, which runs npm ci")
    pytest.skip("web/node_modules is missing: `make test` runs npm ci first")


def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        pytest.fail("node (Node 20) is needed for the console's tests")
    return exe
