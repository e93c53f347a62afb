"""What webhook delivery needs from outside its area, as small Protocols the composition root fills."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from service.common.context import Context


class CaseViews(Protocol):
    """The case exactly as the API shows it to one client (None when that client may not see it)."""

    async def case_for_client(self, ctx: Context, case_id: str, client_id: str) -> dict[str, Any] | None: ...


class ClientScopes(Protocol):
    """A client's scopes now (None when it is disabled or unknown)."""

    async def scopes_of(self, ctx: Context, client_id: str) -> frozenset[str] | None: ...
