"""Lists as the data grows: the case lists (newest first, by due time, the worker's queue) and a
worker's inbox at 1,000, 10,000 and 100,000 cases and notifications, each next to its floor.

The same run as ``bench.cases`` with only a few operations (for the case the sizes are cloned
from): ``python -m bench lists`` (``--quick``: 1,000 and 10,000). Results go to
``var/bench-lists.json``. The inbox holds a sixth of the notifications (one of six recipients),
made over 60 days; its floor is the same windows on the id issued through the driver
(``service.common.paging.newest_by_id``). A station's alert board (``GET /api/v1/alerts``) is
measured the same way: a tenth as many alerts as cases, over the six stations and the same 60
days, next to the same windows (``newest_by_new_id``) issued through the driver.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench import cases

OUT = Path(__file__).resolve().parents[1] / "var" / "bench-lists.json"


def run(quick: bool = False) -> int:
    try:
        asyncio.run(cases.main(quick, lists_only=True, out=OUT))
    except cases.Failure as exc:
        print(f"FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
