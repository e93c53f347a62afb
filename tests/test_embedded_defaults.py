"""`run.py serve` with no database configured: the embedded server starts, answers, and dies with the app."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from service.storage.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]


def _children(pid: int) -> list[int]:
    return [int(p) for task in Path(f"/proc/{pid}/task").iterdir() for p in (task / "children").read_text().split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _start(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIMIN_")}
    env.update(
        HUIMIN_PORT=str(port),
        HUIMIN_DATA_DIR=str(tmp_path),
        HUIMIN_LOG_LEVEL="WARNING",
        HUIMIN_BACKGROUND_TASKS="false",
    )
    proc = subprocess.Popen(
        [sys.executable, "run.py", "serve"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _get(f"http://127.0.0.1:{port}/readyz")[0] == 200:
                return proc, port
        except OSError:
            pass
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the server did not become ready within 60 s")


def test_no_configuration_serves_with_embedded_stores_and_the_server_dies_with_a_crashed_app(tmp_path: Path) -> None:
    proc, port = _start(tmp_path)
    try:
        assert _get(f"http://127.0.0.1:{port}/healthz") == (200, {"status": "ok"})
        status, ready = _get(f"http://127.0.0.1:{port}/readyz")
        assert status == 200 and ready["checks"] == {"mongodb": "ok", "redis": "ok"}
        assert (tmp_path / "mongo").is_dir()
        embedded = _children(proc.pid)
        assert embedded, "the embedded MongoDB-wire server runs as a child process"
        os.kill(proc.pid, signal.SIGKILL)  # a crash: no cleanup code runs in the app
        proc.wait(10)
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in embedded) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in embedded), "the embedded server outlived the crashed app"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def test_graceful_stop_stops_the_embedded_server(tmp_path: Path) -> None:
    proc, _port = _start(tmp_path)
    try:
        embedded = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert not any(_alive(pid) for pid in embedded)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
