"""Huimin's composition root and command line.

    python run.py serve            serve the API (default)
    python run.py seed             load reference data (idempotent)
    python run.py worker           run background work only (sweeps, deliveries)

This is the only module that imports every layer: it builds the app from its parts.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from aiohttp import web

import handlers.alerts
import handlers.auth
import handlers.cases
import handlers.clients
import handlers.console
import handlers.divisions
import handlers.docs
import handlers.elders
import handlers.h5
import handlers.health
import handlers.network
import handlers.notifications
import handlers.open311
import handlers.routing
import handlers.services
import handlers.staff
import handlers.stations
import handlers.stream
import handlers.uploads
import handlers.visits
import handlers.volunteers
import handlers.webhooks
import handlers.workforce
from config import ConfigError, Settings, load_settings
from handlers.deadline import deadline_middleware, lift_deadline
from handlers.keys import CTX, ERROR_TRANSLATOR, METRICS
from handlers.logs import JsonAccessLogger, configure_logging
from handlers.metrics import Metrics
from handlers.middlewares import (
    MAX_HEADER_FIELD_BYTES,
    MAX_REQUEST_LINE_BYTES,
    answer_unreadable_requests_with_problems,
    auth_middleware,
    hide_server_version,
    metrics_middleware,
    problem_middleware,
    request_id_middleware,
    request_target_middleware,
    secure_headers,
)
from service import bootstrap
from service.common.context import Context
from service.common.errors import DomainError
from service.common.models import STAFF_ROLES, SYSTEM
from service.identity import staff
from service.storage.connections import open_stores, wait_until_reachable
from service.storage.errors import translate_error
from service.storage.indexes import ensure_indexes
from service.visits.tiers import tier_table
from service.workforce.targets import plan_targets

log = logging.getLogger("huimin")

ROUTE_TABLES: list[web.RouteTableDef] = [
    handlers.health.routes,
    handlers.uploads.routes,
    handlers.docs.routes,
    handlers.services.routes,
    handlers.stations.routes,
    handlers.divisions.routes,
    handlers.routing.routes,
    handlers.cases.routes,
    handlers.auth.routes,
    handlers.staff.routes,
    handlers.clients.routes,
    handlers.open311.routes,
    handlers.notifications.routes,
    handlers.stream.routes,
    handlers.webhooks.routes,
    handlers.elders.routes,
    handlers.visits.routes,
    handlers.volunteers.routes,
    handlers.network.routes,
    handlers.workforce.routes,
    handlers.alerts.routes,
    handlers.console.routes,
    handlers.h5.routes,
]


async def open_context(settings: Settings) -> tuple[Context, Callable[[], Awaitable[None]]]:
    """Open the stores, create indexes and run start-up tasks; returns the context and its closer."""
    stores = await open_stores(settings)
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0), follow_redirects=False)

    async def close() -> None:
        await http.aclose()
        await stores.close()

    try:
        db = stores.mongo[settings.mongodb_db]
        ctx = Context(
            settings=settings, db=db, redis=stores.redis, http=http, case_views=handlers.webhooks.ClientCaseViews()
        )
        await wait_until_reachable(stores.mongo)
        await ensure_indexes(db)
        await bootstrap.on_start(ctx=ctx)
    except BaseException:
        await close()
        raise
    ctx.stores = stores
    return ctx, close


def create_app(settings: Settings) -> web.Application:
    """Build the aiohttp application for ``settings``."""
    tier_table(settings)  # fail fast on a bad visit tier table
    plan_targets()  # and on a bad plan target table
    app = web.Application(
        middlewares=[
            request_id_middleware,
            metrics_middleware,
            problem_middleware,
            handlers.open311.open311_error_middleware,
            deadline_middleware(settings),
            request_target_middleware,
            auth_middleware,
        ],
        client_max_size=max(settings.max_json_bytes, settings.max_upload_bytes) + 65536,
        # keepalive_timeout also closes connections that trickle their request head (slowloris).
        handler_args={
            "max_line_size": MAX_REQUEST_LINE_BYTES,
            "max_field_size": MAX_HEADER_FIELD_BYTES,
            "keepalive_timeout": settings.keepalive_timeout_seconds,
        },
    )
    app[ERROR_TRANSLATOR] = translate_error
    app[METRICS] = Metrics()
    app.on_response_prepare.append(secure_headers)
    app.on_response_prepare.append(lift_deadline)
    hide_server_version()
    answer_unreadable_requests_with_problems()
    app.on_shutdown.append(handlers.stream.on_shutdown)

    async def context_lifecycle(app: web.Application) -> AsyncIterator[None]:
        ctx, close = await open_context(settings)
        app[CTX] = ctx
        tasks = bootstrap.start_background(ctx=ctx) if settings.background_tasks else []
        try:
            yield
        finally:
            await bootstrap.stop_background(tasks)
            await close()

    app.cleanup_ctx.append(context_lifecycle)
    for table in ROUTE_TABLES:
        app.add_routes(table)
    return app


# ---------------------------------------------------------------- command line


def _port_free(host: str, port: int) -> OSError | None:
    """None if ``host:port`` can be bound now, else why not (checked before anything starts)."""
    import socket

    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc
    return None


def _cannot_listen(settings: Settings, exc: OSError) -> int:
    reason = exc.strerror or str(exc)
    print(
        f"cannot listen on {settings.host}:{settings.port}: {reason}; "
        "stop the other server or choose another port with HUIMIN_PORT",
        file=sys.stderr,
    )
    return 2


async def _serve_until_stopped(app: web.Application, settings: Settings) -> int:
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log_class=JsonAccessLogger,
        access_log=logging.getLogger("huimin.access"),
        shutdown_timeout=30.0,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        try:
            await site.start()
        except OSError as exc:
            return _cannot_listen(settings, exc)
        bound = [s.getsockname() for s in (site._server.sockets if site._server else [])]  # type: ignore[union-attr]
        port = bound[0][1] if bound else settings.port
        log.info("serving", extra={"url": f"http://{settings.host}:{port}", "env": settings.env})
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping")
        return 0
    finally:
        await runner.cleanup()


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    busy = _port_free(settings.host, settings.port)
    if busy is not None:  # say so before starting the database, not after
        return _cannot_listen(settings, busy)
    return asyncio.run(_serve_until_stopped(create_app(settings), settings))


async def _with_context(settings: Settings, work: Callable[[Context], Awaitable[int]]) -> int:
    ctx, close = await open_context(settings)
    try:
        return await work(ctx)
    finally:
        await close()


def _seed(settings: Settings, _args: argparse.Namespace) -> int:
    async def work(ctx: Context) -> int:
        report = await bootstrap.seed(ctx=ctx)
        for line in report:
            print(line)
        return 0

    return asyncio.run(_with_context(settings, work))


def _worker(settings: Settings, _args: argparse.Namespace) -> int:
    async def work(ctx: Context) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tasks = bootstrap.start_background(ctx=ctx)
        log.info("worker running", extra={"tasks": [t.get_name() for t in tasks]})
        await stop.wait()
        await bootstrap.stop_background(tasks)
        return 0

    return asyncio.run(_with_context(settings, work))


def _run_import(
    settings: Settings, args: argparse.Namespace, *, importer: Any, content_type: str, unit: str, verbs: tuple[str, str]
) -> int:
    """Run a bulk import with a progress bar; print every bad row; exit 1 if any."""
    from pathlib import Path

    from tqdm import tqdm

    from service.common.errors import DomainError
    from service.common.models import SYSTEM

    path = Path(args.file)

    async def work(ctx: Context) -> int:
        with tqdm(desc=f"importing {path.name}", unit=unit, disable=args.dry_run) as bar:
            try:
                report = await importer(
                    ctx=ctx,
                    principal=SYSTEM,
                    body=path.read_bytes(),
                    content_type=content_type,
                    dry_run=args.dry_run,
                    progress=bar.update,
                    on_total=lambda n: setattr(bar, "total", n),
                )
            except DomainError as exc:
                bar.close()
                print(f"{exc.code}: {exc.detail}", file=sys.stderr)
                for row in exc.extra.get("rows", []):
                    print(f"  row {row['row']}: {row['field']}: {row['message']}", file=sys.stderr)
                return 1
        for err in report.errors:
            print(f"  row {err.row}: {err.field}: {err.message}")
        done = f"would {verbs[0]}" if args.dry_run else verbs[1]
        updated = f", update {report.to_update}" if hasattr(report, "to_update") else ""
        print(f"{report.total} rows: {done} {report.to_create}{updated}, {len(report.errors)} problems")
        return 1 if report.errors else 0

    return asyncio.run(_with_context(settings, work))


def _import_stations(settings: Settings, args: argparse.Namespace) -> int:
    from service.stations import imports as station_imports

    kind = "text/csv" if args.file.lower().endswith(".csv") else "application/geo+json"
    return _run_import(
        settings,
        args,
        importer=station_imports.import_stations,
        content_type=kind,
        unit="station",
        verbs=("create", "created"),
    )


def _create_staff_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--username", required=True)
    p.add_argument("--role", required=True, choices=STAFF_ROLES)
    p.add_argument("--station", help="station id (workers and station heads)")
    p.add_argument("--division", help="division-code prefix (supervisors), e.g. 3410")
    p.add_argument("--name", help="display name")
    p.add_argument("--phone", help="mobile number for SMS notices the person switches on")
    p.add_argument("--password", help="default: HUIMIN_NEW_STAFF_PASSWORD, else asked for")


def _create_staff(settings: Settings, args: argparse.Namespace) -> int:
    password = args.password or os.environ.get("HUIMIN_NEW_STAFF_PASSWORD") or getpass.getpass("Password: ")

    async def work(ctx: Context) -> int:
        try:
            member = await staff.create_staff(
                ctx=ctx,
                principal=SYSTEM,
                username=args.username,
                password=password,
                role=args.role,
                name=args.name,
                station_id=args.station,
                division_prefix=args.division,
                phone=args.phone,
            )
        except DomainError as exc:
            print(f"error: {exc.code}: {exc.detail}", file=sys.stderr)
            return 1
        print(f"created {member.role} {member.username} (id {member.id})")
        return 0

    return asyncio.run(_with_context(settings, work))


def _import_stations_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="GeoJSON FeatureCollection (.geojson/.json) or CSV (.csv)")
    p.add_argument("--dry-run", action="store_true", help="check every row, write nothing")


def _import_elders(settings: Settings, args: argparse.Namespace) -> int:
    from service.visits import elder_imports

    return _run_import(
        settings,
        args,
        importer=elder_imports.import_elders,
        content_type="text/csv",
        unit="person",
        verbs=("register", "registered"),
    )


def _import_elders_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="register CSV (name,id_card,township,...)")
    p.add_argument("--dry-run", action="store_true", help="check every row, write nothing")


def _openapi(settings: Settings, args: argparse.Namespace) -> int:
    from handlers.openapi import openapi_json

    document = openapi_json(create_app(settings))
    if args.output == "-":
        sys.stdout.buffer.write(document)
    else:
        with open(args.output, "wb") as out:
            out.write(document)
    return 0


def _openapi_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", default="-", help="file to write (default: standard output)")


def _apply_tier_rules(settings: Settings, args: argparse.Namespace) -> int:
    from service.visits import tier_rules

    async def work(ctx: Context) -> int:
        report = await tier_rules.apply_tier_rules(ctx=ctx, principal=SYSTEM, dry_run=args.dry_run, list_limit=100_000)
        for m in report.moves:
            print(
                f"  {m.elder_id} {m.name_masked} {m.township}: {m.from_tier} -> {m.to_tier}"
                f" from {m.effective_from:%Y-%m-%d}"
            )
        verb = "would move" if args.dry_run else "moved"
        print(
            f"{report.source}: {report.checked} active people checked, {report.pinned} pinned, "
            f"{verb} {report.moving if args.dry_run else report.written}"
        )
        return 0

    return asyncio.run(_with_context(settings, work))


def _apply_tier_rules_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="list who moves, write nothing")


COMMANDS: dict[str, tuple[str, Callable[[Settings, argparse.Namespace], int], Callable[[Any], None] | None]] = {
    "serve": ("serve the HTTP API", _serve, None),
    "seed": ("load reference data (idempotent)", _seed, None),
    "worker": ("run background work without serving HTTP", _worker, None),
    "import-stations": ("bulk import stations (all or nothing)", _import_stations, _import_stations_args),
    "create-staff": ("create a staff account", _create_staff, _create_staff_args),
    "import-elders": ("bulk import the visit register (all or nothing)", _import_elders, _import_elders_args),
    "openapi": ("write the OpenAPI document (the console's API types are made from it)", _openapi, _openapi_args),
    "apply-tier-rules": (
        "move the visit register to the tier rules (config/visit_tiers.toml)",
        _apply_tier_rules,
        _apply_tier_rules_args,
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.py", description="Huimin (惠民) civil-affairs service backend")
    sub = parser.add_subparsers(dest="command")
    for name, (help_text, _fn, add_args) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if add_args:
            add_args(p)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        tier_table(settings)  # the visit tier table must be valid before anything starts
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    _, fn, _ = COMMANDS[args.command or "serve"]
    return fn(settings, args)


if __name__ == "__main__":
    sys.exit(main())
