"""Small helpers shared by tests: bearer headers for staff and clients."""

from __future__ import annotations

from typing import Any

from config import Settings
from service.common.models import Principal, utcnow
from service.identity.tokens import issue_access_token


def token_for(settings: Settings, role: str, **kw: Any) -> dict[str, str]:
    """An Authorization header for a principal of ``role`` (scopes, station_id, division_prefix in kw)."""
    principal = Principal(
        subject=str(kw.pop("subject", f"test-{role}")),
        role=role,  # type: ignore[arg-type]
        scopes=frozenset(kw.pop("scopes", ())),
        **kw,
    )
    token, _ = issue_access_token(settings=settings, principal=principal, now=utcnow())
    return {"Authorization": f"Bearer {token}"}
