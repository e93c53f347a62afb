"""有人员: how many people a station has.

Today the figure comes from the station's active worker and station-head accounts (read through
the staff service). The social-worker register (社会工作人才, the workforce area) will be a second
source: when it publishes a read port ``count_registered_social_workers(*, ctx, station_ids)``,
call it here and pass its counts as ``register=`` with ``"register"`` added to ``sources``;
nothing else in the network changes (the checklist reads :attr:`Staffing.people`).
"""

from __future__ import annotations

from service.common.context import Context
from service.identity import staff
from service.network.models import Staffing


async def station_staffing(*, ctx: Context, station_ids: list[str]) -> dict[str, Staffing]:
    """The staffing of each station (every id asked for gets an answer, zero when nobody is there)."""
    if not station_ids:
        return {}
    accounts = await staff.count_station_staff(ctx=ctx, station_ids=station_ids)
    return {sid: Staffing(staff_accounts=accounts.get(sid, 0)) for sid in station_ids}
