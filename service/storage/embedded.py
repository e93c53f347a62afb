"""The embedded MongoDB-wire server (SecantusDB) run as a child process.

SecantusDB is GPL-2.0-only; running it as a separate process keeps its licence apart from
ours. The child is started on a free loopback port and asked by the kernel to die with
its parent (PR_SET_PDEATHSIG), so a crashed app leaves no server behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("huimin.storage")
_PR_SET_PDEATHSIG = 1


ADDRESS_FILE = "embedded-mongo.json"


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be started."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_server(data_dir: str | Path) -> tuple[str, int] | None:
    """The URI and pid of an embedded server another process runs over ``data_dir``, if one answers.

    The process that starts the server writes its address to ``<data_dir>/embedded-mongo.json``,
    so the command line (create-staff, imports) can work while ``run.py serve`` holds the
    database, instead of starting a second server on files that are locked. A file left by a
    process that died is ignored.
    """
    path = Path(data_dir) / ADDRESS_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        pid, port, uri = int(info["pid"]), int(info["port"]), str(info["uri"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _pid_alive(pid):
        return None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return uri, pid
    except OSError:
        return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgrp()


def _executable() -> str:
    beside = Path(sys.executable).with_name("secantusd-py")
    if beside.exists():
        return str(beside)
    found = shutil.which("secantusd-py")
    if not found:
        raise EmbeddedServerError("secantusd-py not found: install requirements.txt (SecantusDB)")
    return found


class EmbeddedMongo:
    """A SecantusDB child process; ``uri`` is valid after ``start()``."""

    def __init__(self, storage_path: str, *, durable: bool = True, port: int | None = None) -> None:
        self.storage_path = storage_path
        self.durable = durable
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._log_path: Path | None = None

    @property
    def uri(self) -> str:
        # retryWrites=false: retryable writes guard against a dropped connection or a primary
        # stepping down between a write and its acknowledgement; a loopback child process has
        # no failover, and SecantusDB keeps a record of every retryable write for 30 minutes
        # (up to 10,000), scanned and re-sorted on each write: past 10,000 writes an insert
        # costs about 13 ms instead of 1 ms. A write cut off by a dropped connection fails
        # (503) instead; a client may send it again, as creations are idempotent by their
        # id and transitions are conditional updates.
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true&retryWrites=false"

    @property
    def address_file(self) -> Path | None:
        return None if self.storage_path == ":memory:" else Path(self.storage_path).parent / ADDRESS_FILE

    def _publish(self) -> None:
        """Write where this server listens, for other processes over the same data (atomically)."""
        path = self.address_file
        if path is None or self.process is None:
            return
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"uri": self.uri, "port": self.port, "pid": self.process.pid}), encoding="utf-8")
        tmp.replace(path)

    def _unpublish(self, pid: int) -> None:
        path = self.address_file
        if path is None:
            return
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if int(json.loads(path.read_text(encoding="utf-8"))["pid"]) == pid:
                path.unlink()

    def start(self, timeout: float = 30.0) -> str:
        """Start the server and wait until it accepts connections; returns its URI.

        Call it from the process's main thread: the kernel's parent-death signal follows the
        thread that forked, so a child started from a pool thread would die with that thread.
        """
        self.spawn()
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedServerError(f"secantusd-py did not listen on port {self.port} within {timeout:.0f}s")
            time.sleep(0.05)
        self._publish()
        return self.uri

    async def start_async(self, timeout: float = 30.0) -> str:
        """``start`` for a running event loop: spawns from the loop's thread, waits without blocking it."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(self.ready):
            if time.monotonic() > deadline:
                await asyncio.to_thread(self.stop)
                raise EmbeddedServerError(f"secantusd-py did not listen on port {self.port} within {timeout:.0f}s")
            await asyncio.sleep(0.05)
        self._publish()
        return self.uri

    def spawn(self) -> None:
        """Start the child process (returns at once)."""
        args = [
            _executable(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--storage-path",
            self.storage_path,
            "--log-level",
            "WARNING",
        ]
        if self.durable:
            args.append("--sync-on-commit")
        log_path = None
        if self.storage_path != ":memory:":
            Path(self.storage_path).mkdir(parents=True, exist_ok=True)
            log_path = Path(self.storage_path).parent / "secantusdb.log"
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        self._log_file = out
        self.process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
        )
        self._log_path = log_path

    def ready(self) -> bool:
        """True once the server accepts connections; EmbeddedServerError if it has exited."""
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            where = f"; see {self._log_path}" if self._log_path else ""
            raise EmbeddedServerError(f"secantusd-py exited with {code}{where}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        proc, self.process = self.process, None
        if proc is not None:
            self._unpublish(proc.pid)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log_file not in (None, subprocess.DEVNULL):
            with contextlib.suppress(Exception):
                self._log_file.close()
        self._log_file = None
