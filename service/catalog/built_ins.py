"""The built-in catalogue kept current in a deployment: missing built-ins added, those stored by an older
release upgraded to the current definition as a new version, withdrawn ones retired (idempotent)."""

from __future__ import annotations

import dataclasses
from typing import Any

from service.catalog.cache import forget_service_types
from service.catalog.definitions import check_definition
from service.catalog.models import ServiceType
from service.catalog.repository import ServiceTypesRepository
from service.catalog.seed import RETIRED_BUILT_INS, SEED_SERVICES
from service.common.context import Context
from service.common.errors import ConflictError, NotFoundError


async def seed_catalog(ctx: Context) -> str:
    """Load the built-in service types that are missing and retire the withdrawn ones (idempotent)."""
    repo = ServiceTypesRepository(ctx.db)
    now = ctx.now()
    services = [dataclasses.replace(s, created_at=now) for s in SEED_SERVICES]
    for s in SEED_SERVICES:
        check_definition(s)
    added = await repo.insert_missing(services)
    upgraded = await _upgrade_built_ins(ctx, repo, SEED_SERVICES)
    retired = await _retire_withdrawn(ctx, repo, RETIRED_BUILT_INS)
    if added or upgraded or retired:
        forget_service_types(ctx)
    also = f", {upgraded} upgraded to the current built-in definition" if upgraded else ""
    also += f", {retired} withdrawn built-ins retired" if retired else ""
    return f"{added} service types added{also}, {len(SEED_SERVICES)} in the built-in catalogue"


async def _retire_withdrawn(ctx: Context, repo: ServiceTypesRepository, codes: tuple[str, ...]) -> int:
    """Retire stored built-ins that the catalogue no longer offers; their versions stay for old cases."""
    retired = 0
    for code in codes:
        try:
            current = await repo.get(code)
        except NotFoundError:
            continue  # never stored here
        if not current.retired and await repo.set_retired(code, current.version, ctx.now()):
            retired += 1
    return retired


# Form fields the built-in forms once had and no longer ask: where and whom are asked once,
# as the case's top-level ``address`` and ``contact``.
_ASKED_AT_TOP_LEVEL = ("address", "contact_phone")
GUIDE_KEYS = (
    "icon",
    "conditions_zh",
    "conditions_en",
    "materials_zh",
    "materials_en",
    "time_limit_zh",
    "time_limit_en",
)


async def _upgrade_built_ins(ctx: Context, repo: ServiceTypesRepository, built_ins: tuple[ServiceType, ...]) -> int:
    """Bring built-in services stored by an older release up to date, as a new version (cases
    keep the version they were filed with): services stored before service types had a ``clock``
    get the built-in clock and personal-field marks; services stored before ``address_required``
    lose the ``address`` and ``contact_phone`` form fields the built-in no longer asks and take
    its ``address_required``; services stored before the service-page texts take the built-in's
    icon, conditions, materials, time-limit texts and field hints."""
    upgraded = 0
    for built_in in built_ins:
        current, absent = await repo.get_with_absent_keys(built_in.code)
        if current.retired or not absent & {"clock", "address_required", "icon"}:
            continue
        changes: dict[str, Any] = {}
        fields = current.fields
        if "clock" in absent:
            marks = {f.code: f for f in built_in.fields}
            fields = tuple(
                dataclasses.replace(f, personal=mark.personal, reporter=mark.reporter)
                if (mark := marks.get(f.code)) is not None and mark.type == f.type
                else f
                for f in fields
            )
            changes["clock"] = built_in.clock
        if "address_required" in absent:
            kept = {f.code for f in built_in.fields}
            fields = tuple(f for f in fields if f.code in kept or f.code not in _ASKED_AT_TOP_LEVEL)
            changes["address_required"] = built_in.address_required
        if "icon" in absent:
            # Stored before services carried their service-page texts: take the built-in's.
            changes.update({key: getattr(built_in, key) for key in GUIDE_KEYS})
            helps = {f.code: f for f in built_in.fields}
            fields = tuple(
                dataclasses.replace(f, help_zh=mark.help_zh, help_en=mark.help_en)
                if not f.help_zh and (mark := helps.get(f.code)) is not None
                else f
                for f in fields
            )
        new = dataclasses.replace(current, **changes, fields=fields, version=current.version + 1, created_at=ctx.now())
        try:
            await repo.insert_version(new)
        except ConflictError:
            continue  # another process upgraded it (or an admin changed it) meanwhile
        upgraded += 1
    return upgraded
