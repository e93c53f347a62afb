"""Debian's nginx in front of the web processes, with the repository's own configuration.

The server block includes ``deploy/nginx/huimin-locations.conf`` verbatim; only what differs
on a test machine is generated around it: a plain-HTTP loopback listener, the upstream's
ports, and the prefix for nginx's pid, logs and temporary files. Used by ``make load`` (when
nginx is installed) and by ``tests/deploy/test_nginx.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCATIONS = ROOT / "deploy" / "nginx" / "huimin-locations.conf"
WEB_DIST = ROOT / "web" / "dist"


def nginx_binary() -> str | None:
    """The nginx executable (Debian installs it in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


class Nginx:
    """One nginx master process on 127.0.0.1:``port`` proxying to ``upstreams`` (ports)."""

    def __init__(self, workdir: Path, port: int, upstreams: list[int]) -> None:
        self.workdir, self.port, self.upstreams = workdir, port, upstreams
        self.process: subprocess.Popen[bytes] | None = None
        self.exe = nginx_binary()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;" for p in self.upstreams)
        mime = "/etc/nginx/mime.types"
        # A master started as root drops its workers to `nobody`, who may not read the checkout.
        user = "user root;\n" if os.geteuid() == 0 else ""
        return f"""{user}daemon off;
master_process on;
worker_processes 1;
pid {self.workdir}/nginx.pid;
error_log {self.workdir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    {"include " + mime + ";" if Path(mime).is_file() else ""}
    default_type application/octet-stream;
    access_log {self.workdir}/access.log;
    client_body_temp_path {self.workdir}/body;
    proxy_temp_path {self.workdir}/proxy;
    fastcgi_temp_path {self.workdir}/fastcgi;
    uwsgi_temp_path {self.workdir}/uwsgi;
    scgi_temp_path {self.workdir}/scgi;
    upstream huimin {{
        least_conn;
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        server_name localhost;
        set $huimin_web_dist {WEB_DIST};
        include {LOCATIONS};
    }}
}}
"""

    def start(self, timeout: float = 15.0) -> str:
        """Write the configuration, check it (``nginx -t``), start nginx and wait for the port."""
        if self.exe is None:
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx-light)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.config(), encoding="utf-8")
        args = [self.exe, "-p", str(self.workdir), "-c", str(conf), "-e", str(self.workdir / "error.log")]
        check = subprocess.run([*args, "-t", "-q"], capture_output=True, text=True, timeout=30, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t rejected the configuration: {check.stderr.strip()}")
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"nginx exited with {self.process.returncode}: {err.strip()}")
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self.url
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not listen on {self.port} within {timeout:.0f} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (nginx's fast shutdown; a graceful one would wait for open live-feed streams)."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
