"""Dataclasses shared across the domain. Repositories return these, never raw documents."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Generic, Literal, TypeVar

from service.common.errors import PermissionDeniedError

T = TypeVar("T")

Role = Literal["resident", "worker", "station_head", "supervisor", "admin", "client"]
STAFF_ROLES: tuple[Role, ...] = ("worker", "station_head", "supervisor", "admin")
# Staff who belong to one station (a supervisor and an admin do not).
STATION_STAFF_ROLES: tuple[Role, ...] = ("worker", "station_head")
ALL_ROLES: tuple[Role, ...] = ("resident", "worker", "station_head", "supervisor", "admin", "client")
CLIENT_SCOPES = (
    "cases:read",
    "cases:write",
    "stations:read",
    "visits:read",
    "webhooks:manage",
    "open311",
    "alerts:write",
    "visits:write",
    "volunteers:read",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: taken from a verified access token."""

    subject: str  # user id, staff id or client id
    role: Role
    scopes: frozenset[str] = frozenset()
    station_id: str | None = None  # workers and station heads
    division_prefix: str | None = None  # supervisors: e.g. "3410" for 黄山市
    token_id: str | None = None  # jti of the access token

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_resident(self) -> bool:
        return self.role == "resident"

    @property
    def is_client(self) -> bool:
        return self.role == "client"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


SYSTEM = Principal(subject="system", role="admin")


def require_role(principal: Principal, roles: Iterable[Role], *, code: str, detail: str) -> None:
    """PermissionDeniedError ``code`` unless the caller holds one of ``roles``."""
    if principal.role not in tuple(roles):
        raise PermissionDeniedError(code, detail)


@dataclasses.dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a cursor-paginated list."""

    items: list[T]
    next_cursor: str | None


def utcnow() -> datetime:
    """Timezone-aware now in UTC, to the millisecond; every stored time is UTC.

    MongoDB keeps times to the millisecond, so a record a create returns carries the very
    times a later read of it gives (the default clock of every ``Context``).
    """
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
