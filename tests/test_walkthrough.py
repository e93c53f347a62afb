"""The README's five-minute walkthrough runs as written (curl and python3) against a live server."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service import bootstrap
from tests.servers import LiveServer, isolated_settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MARKER = "<!-- walkthrough:"


def walkthrough() -> str:
    """The shell block that follows the walkthrough marker in the README."""
    after = README[README.index(MARKER) :]
    match = re.search(r"```sh\n(.*?)```", after, re.S)
    assert match, "the README has no walkthrough block"
    return match.group(1)


class _CodeCatcher(logging.Handler):
    """Writes each one-time code the console SMS sender logs to a file the script reads."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        code = getattr(record, "code", None)
        if code and "console sender" in record.getMessage():
            self.path.write_text(str(code), encoding="utf-8")


@pytest.fixture
def server(mongo_uri: str, redis_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with isolated_settings(
        mongo_uri, redis_url, tmp_path, prefix="walk", admin_password="admin-secret-2026", sms_sender="console"
    ) as settings:
        live = LiveServer()
        try:
            live.serve(settings)
            live.run(bootstrap.seed(ctx=live.ctx), timeout=120)
            yield live
        finally:
            live.stop()


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walkthrough uses curl")
def test_the_readme_walkthrough_files_and_resolves_a_case(server: LiveServer, tmp_path: Path) -> None:
    script = walkthrough()
    assert script.count("CODE=123456") == 1
    script = script.replace("CODE=123456", 'CODE=$(cat "$CODE_FILE")')
    code_file = tmp_path / "code"
    catcher = _CodeCatcher(code_file)
    sms_log = logging.getLogger("huimin.sms")
    sms_log.addHandler(catcher)
    previous = sms_log.level
    sms_log.setLevel(logging.INFO)
    env: dict[str, Any] = {**os.environ, "BASE": server.base_url, "CODE_FILE": str(code_file)}
    try:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, env=env, timeout=120
        )
    finally:
        sms_log.removeHandler(catcher)
        sms_log.setLevel(previous)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert done.stdout.split() == ["created", "worker", "zhang.min", "300", "accepted", "resolved"]
