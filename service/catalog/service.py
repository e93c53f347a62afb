"""The service catalogue: seven scenarios, versioned service types, and answer validation.

A service type never changes in place: an update stores version N+1 and marks it current,
so a case filed under version N keeps the form and limits it was filed with.

The catalogue's public face: what a valid service type is lives in :mod:`.definitions`, how a
form's answers are checked in :mod:`.answers`, how the built-in catalogue is kept current in
:mod:`.built_ins`; their names callers use are importable from here too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from service.catalog.answers import example_answers, example_id_card, validate_answers
from service.catalog.built_ins import seed_catalog
from service.catalog.cache import current_service, forget_service_types
from service.catalog.definitions import check_definition
from service.catalog.models import SCENARIO_CODES, SCENARIOS, Scenario, ServiceType
from service.catalog.repository import ServiceTypesRepository
from service.common.context import Context
from service.common.errors import ConflictError, InvalidStateError, NotFoundError, ValidationFailedError
from service.common.models import Principal, require_role

__all__ = [
    "create_service",
    "current_service",
    "example_answers",
    "example_id_card",
    "get_service",
    "list_scenarios",
    "list_services",
    "retire_service",
    "seed_catalog",
    "update_service",
    "validate_answers",
]

ADMIN_ONLY = "Only an administrator may change the catalogue."


def list_scenarios() -> list[Scenario]:
    """The seven scenarios, in their fixed order."""
    return list(SCENARIOS)


def _repo(ctx: Context) -> ServiceTypesRepository:
    return ServiceTypesRepository(ctx.db)


async def list_services(
    *, ctx: Context, scenario: str | None = None, include_retired: bool = False
) -> list[ServiceType]:
    """Current versions of the catalogue's service types, by code."""
    if scenario is not None and scenario not in SCENARIO_CODES:
        raise ValidationFailedError(
            "unknown_scenario", f"There is no scenario {scenario!r}.", {"scenario": ["Unknown scenario."]}
        )
    services = await _repo(ctx).list_current(scenario)
    return [s for s in services if include_retired or not s.retired]


async def get_service(*, ctx: Context, code: str, version: int | None = None) -> ServiceType:
    """One service type: its current version, or the version asked for."""
    return await _repo(ctx).get(code, version)


async def create_service(*, ctx: Context, principal: Principal, service: ServiceType) -> ServiceType:
    """Add a service type as version 1."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    service = dataclasses.replace(service, version=1, retired=False, created_at=ctx.now())
    check_definition(service)
    try:
        await _repo(ctx).get(service.code)
    except NotFoundError:
        pass
    else:
        raise ConflictError("service_exists", f"A service with code {service.code!r} exists already.")
    try:
        await _repo(ctx).insert_version(service)
    except ConflictError:
        raise ConflictError("service_exists", f"A service with code {service.code!r} exists already.") from None
    forget_service_types(ctx)
    return service


async def update_service(
    *, ctx: Context, principal: Principal, code: str, changes: dict[str, Any], expected_version: int | None = None
) -> ServiceType:
    """Store the changed definition as the next version; older versions stay as they were."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    current = await get_service(ctx=ctx, code=code)
    if current.retired:
        raise InvalidStateError("service_retired", f"Service {code!r} is retired and cannot be changed.")
    if expected_version is not None and expected_version != current.version:
        raise ConflictError(
            "service_version_conflict", f"Service {code!r} is at version {current.version}, not {expected_version}."
        )
    allowed = {f.name for f in dataclasses.fields(ServiceType)} - {"code", "version", "retired", "created_at"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationFailedError(
            "unknown_field", "These fields cannot be changed.", {k: ["Unknown field."] for k in unknown}
        )
    new = dataclasses.replace(current, **changes, version=current.version + 1, created_at=ctx.now())
    check_definition(new)
    await _repo(ctx).insert_version(new)
    forget_service_types(ctx)
    return new


async def retire_service(*, ctx: Context, principal: Principal, code: str) -> ServiceType:
    """Stop offering a service; filed cases keep their version."""
    require_role(principal, ("admin",), code="admin_only", detail=ADMIN_ONLY)
    current = await get_service(ctx=ctx, code=code)
    if current.retired:
        return current
    if not await _repo(ctx).set_retired(code, current.version, ctx.now()):
        raise ConflictError("service_version_conflict", f"Service {code!r} changed meanwhile; retry.")
    forget_service_types(ctx)
    return dataclasses.replace(current, retired=True)
