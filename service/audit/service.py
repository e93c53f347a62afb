"""Recording staff reads of personal data (PIPL): what other areas call to write the audit log."""

from __future__ import annotations

from service.audit.repository import AuditRepository
from service.common.context import Context
from service.common.models import Principal


async def record_reads(
    *,
    ctx: Context,
    principal: Principal,
    action: str,
    target_kind: str,
    target_ids: list[str],
    fields: list[str],
    keyed_as: str | None = None,
) -> None:
    """Log that ``principal`` was shown these fields of these records (one entry per record)."""
    await AuditRepository(ctx.db).record(
        at=ctx.now(),
        actor_subject=principal.subject,
        actor_role=principal.role,
        action=action,
        target_kind=target_kind,
        target_ids=target_ids,
        fields=fields,
        keyed_as=keyed_as,
    )
