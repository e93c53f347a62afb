"""`run.py serve` as a newcomer meets it: a busy port, the first log lines, `/`, access logs, the CLI beside it."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from service.storage.embedded import ADDRESS_FILE, free_port

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIMIN_")}
    env.update(HUIMIN_PORT=str(port), HUIMIN_DATA_DIR=str(tmp_path), HUIMIN_BACKGROUND_TASKS="false", **extra)
    return env


class _Lines:
    """The JSON log lines a child writes on stderr, read as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.seen: list[dict[str, Any]] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self._queue.put(line)
        self._queue.put(None)

    def until(self, message: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            entry = json.loads(line)
            self.seen.append(entry)
            if entry["message"] == message:
                return entry
        raise AssertionError(f"no {message!r} log line; saw {[e['message'] for e in self.seen]}")

    def rest(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        self._thread.join(timeout)
        while not self._queue.empty():
            line = self._queue.get()
            if line is not None:
                self.seen.append(json.loads(line))
        return self.seen


def test_a_port_in_use_is_one_clear_line_and_exit_status_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "run.py", "serve"],
            cwd=ROOT,
            env=_env(tmp_path, port),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"cannot listen on 127.0.0.1:{port}: ")
    assert "HUIMIN_PORT" in lines[0]
    assert not (tmp_path / "mongo").exists(), "nothing was started for a server that cannot listen"


def test_a_running_server_logs_serving_once_bound_redirects_the_front_page_and_logs_each_request(
    tmp_path: Path,
) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "run.py", "serve"],
        cwd=ROOT,
        env=_env(tmp_path, port, HUIMIN_LOG_LEVEL="INFO"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = _Lines(proc)
    try:
        serving = lines.until("serving")
        assert serving["url"] == f"http://127.0.0.1:{port}"
        # "serving" comes after the socket is bound: the first attempt connects.
        opener = urllib.request.build_opener(_NoRedirect)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"X-Request-ID": "newcomer-1"})
        try:
            opener.open(request, timeout=5)
            raise AssertionError("/ did not redirect")
        except urllib.error.HTTPError as exc:
            assert exc.code == 302
            assert exc.headers["Location"] == "/console/"
            exc.close()

        # The command line works beside the running server, on the same embedded database.
        assert (tmp_path / ADDRESS_FILE).exists()
        created = subprocess.run(
            [sys.executable, "run.py", "create-staff", "--username", "li.si", "--role", "admin"],
            cwd=ROOT,
            env=_env(tmp_path, port, HUIMIN_NEW_STAFF_PASSWORD="li-si-password-01", HUIMIN_LOG_LEVEL="ERROR"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stderr
        assert created.stdout.startswith("created admin li.si")
        body = json.dumps({"username": "li.si", "password": "li-si-password-01"}).encode()
        login = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/auth/login",
            data=body,
            headers={"Content-Type": "application/json", "X-Request-ID": "newcomer-2"},
        )
        with urllib.request.urlopen(login, timeout=10) as resp:
            assert resp.status == 200
            assert json.loads(resp.read())["access_token"]
    finally:
        proc.terminate()
        proc.wait(30)
        seen = lines.rest()
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == 0
    hint = [e for e in seen if "HUIMIN_ADMIN_PASSWORD" in e["message"]]
    assert hint and "create-staff" in hint[0]["message"], "a fresh database says how to create the first admin"
    access = [e for e in seen if e["logger"] == "huimin.access"]
    assert [(e["request_id"], e["method"], e["path"], e["status"]) for e in access] == [
        ("newcomer-1", "GET", "/", 302),
        ("newcomer-2", "POST", "/api/v1/auth/login", 200),
    ]
    assert not (tmp_path / ADDRESS_FILE).exists(), "the address of a stopped server is removed"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
