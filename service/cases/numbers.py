"""Human-readable case numbers: HM + county code + local date + daily sequence.

``HM3401022026112800001``-style numbers are what residents quote on the phone, so they are
short, sortable by day and unique: ``HM`` + 6-digit county division code + YYYYMMDD
(Asia/Shanghai date of submission) + a 5-digit sequence per county and day. Numbers come
from a transactional counter; a submission that fails after taking a number leaves a gap,
which is harmless.
"""

from __future__ import annotations

import re
from datetime import date

from service.cases.repository.counters import CountersRepository
from service.common.context import Context

PREFIX = "HM"
_COUNTY = re.compile(r"^\d{6}$")
CASE_NUMBER = re.compile(r"^HM\d{6}\d{8}\d{5}$")


async def next_case_number(*, ctx: Context, county_code: str, local_date: date) -> str:
    """The next case number for a county on a local (Asia/Shanghai) date."""
    if not _COUNTY.match(county_code):
        raise ValueError(f"county code must be 6 digits, got {county_code!r}")
    day = local_date.strftime("%Y%m%d")
    seq = await CountersRepository(ctx.db).next(f"case_number:{county_code}:{day}")
    if seq > 99999:
        raise OverflowError("more than 99,999 cases in one county on one day")
    return f"{PREFIX}{county_code}{day}{seq:05d}"
