"""Applying the province's tier rules to the register: which elders move to which visit tier."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime

from service.common.context import Context
from service.common.errors import (
    ConflictError,
    PermissionDeniedError,
)
from service.common.models import Principal
from service.common.pii import mask_name
from service.visits.elder_fields import flags_on
from service.visits.elders import require_staff, tier_change
from service.visits.periods import local_date
from service.visits.repository.elders import EldersRepository
from service.visits.tiers import TierTable, tier_table

log = logging.getLogger("huimin.elders")


def tier_rules(*, ctx: Context, principal: Principal) -> TierTable:
    """The per-province table of default tiers in force (read-only)."""
    require_staff(principal)
    return tier_table(ctx.settings)


@dataclasses.dataclass(frozen=True, slots=True)
class TierMove:
    elder_id: str
    name_masked: str
    station_id: str
    township: str
    from_tier: str
    to_tier: str
    effective_from: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class TierRulesReport:
    dry_run: bool
    source: str
    checked: int
    pinned: int
    moving: int
    written: int
    moves: tuple[TierMove, ...]
    moves_truncated: bool


async def apply_tier_rules(
    *, ctx: Context, principal: Principal, dry_run: bool, list_limit: int = 1000
) -> TierRulesReport:
    """Move every active person whose tier is not pinned to the tier the rules suggest (from the next week).

    A dry run only lists who would move. Flags are taken as of today (高龄 from the birth date).
    """
    if principal.role != "admin":
        raise PermissionDeniedError("admin_only", "Only administrators apply the tier rules to the register.")
    now = ctx.now()
    today = local_date(now)
    table = tier_table(ctx.settings)
    repo = EldersRepository(ctx.db)
    checked = pinned = written = 0
    moves: list[TierMove] = []
    moving = 0
    async for batch in repo.active_records(500):
        for elder in batch:
            checked += 1
            suggested = table.suggest(flags_on(elder, today), elder.township)
            if elder.tier_pinned:
                pinned += 1
            if elder.tier_pinned or suggested == elder.tier:
                if not dry_run and suggested != elder.suggested_tier:
                    await repo.set_suggested(elder.id, suggested)
                continue
            moving += 1
            change = tier_change(elder, suggested, now)
            if len(moves) < list_limit:
                moves.append(
                    TierMove(
                        elder_id=elder.id,
                        name_masked=mask_name(elder.name),
                        station_id=elder.station_id,
                        township=elder.township,
                        from_tier=elder.tier,
                        to_tier=suggested,
                        effective_from=change["tier_from"] or now,
                    )
                )
            if not dry_run:
                try:
                    await repo.update(
                        elder.id, elder.version, {**change, "suggested_tier": suggested, "updated_at": now}
                    )
                    written += 1
                except ConflictError:
                    log.warning("tier rules: %s changed meanwhile; left for the next run", elder.id)
    return TierRulesReport(
        dry_run=dry_run,
        source=table.source,
        checked=checked,
        pinned=pinned,
        moving=moving,
        written=written,
        moves=tuple(moves),
        moves_truncated=moving > len(moves),
    )
