"""The create-staff command and the first-admin start-up hook."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from config import Settings
from run import create_app, open_context
from tests.factories import bearer, login

ROOT = Path(__file__).resolve().parent.parent


def _run(settings: Settings, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIMIN_")}
    env |= {
        "HUIMIN_ENV": "test",
        "HUIMIN_MONGODB_URI": settings.mongodb_uri,
        "HUIMIN_MONGODB_DB": settings.mongodb_db,
        "HUIMIN_REDIS_URL": settings.redis_url,
        "HUIMIN_REDIS_PREFIX": settings.redis_prefix,
        "HUIMIN_LOG_LEVEL": "WARNING",
    }
    if password is not None:
        env["HUIMIN_NEW_STAFF_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "run.py", "create-staff", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


async def test_create_staff_command_makes_an_account_that_can_log_in(aiohttp_client: Any, settings: Settings) -> None:
    done = await asyncio.to_thread(
        _run,
        settings,
        *("--username", "wangfang", "--role", "supervisor", "--division", "3410", "--name", "王芳"),
        password="supervisor-password",
    )
    assert done.returncode == 0, done.stderr
    assert "created supervisor wangfang" in done.stdout
    client = await aiohttp_client(create_app(settings))
    pair = await login(client, "wangfang", "supervisor-password")
    me = await (await client.get("/api/v1/me", headers=bearer(pair["access_token"]))).json()
    assert (me["role"], me["division_prefix"], me["name"]) == ("supervisor", "3410", "王芳")


async def test_create_staff_command_refuses_bad_input(settings: Settings) -> None:
    short = await asyncio.to_thread(_run, settings, "--username", "li", "--role", "admin", "--password", "short")
    assert short.returncode == 1
    assert "validation_failed" in short.stderr
    no_station = await asyncio.to_thread(
        _run, settings, "--username", "liming", "--role", "worker", "--password", "long-enough-pw"
    )
    assert no_station.returncode == 1
    assert "station_id" in no_station.stderr


async def test_first_admin_is_created_once_even_by_two_processes_starting_together(settings: Settings) -> None:
    s = settings.replace(admin_password="first-admin-password")
    opened = await asyncio.gather(open_context(s), open_context(s))
    for _, close in opened:
        await close()
    with MongoClient(s.mongodb_uri) as mongo:
        admins = list(mongo[s.mongodb_db]["staff"].find({"role": "admin"}))
    assert [a["username"] for a in admins] == ["admin"]


async def test_first_admin_logs_in_and_is_not_recreated(aiohttp_client: Any, settings: Settings) -> None:
    s = settings.replace(admin_password="first-admin-password")
    client = await aiohttp_client(create_app(s))
    pair = await login(client, "admin", "first-admin-password")
    assert pair["role"] == "admin"
    assert (await client.get("/api/v1/staff", headers=bearer(pair["access_token"]))).status == 200
    # A later start with another password leaves the existing admin alone.
    _, close = await open_context(s.replace(admin_password="a-different-password"))
    await close()
    assert (await login(client, "admin", "first-admin-password"))["role"] == "admin"


async def test_no_admin_is_created_without_a_password(client: Any) -> None:
    resp = await client.post("/api/v1/auth/login", json={"username": "admin", "password": "anything-at-all"})
    assert resp.status == 401
