"""Shared set-up for the visit-programme tests: a few stations, valid ID numbers, registering people."""

from __future__ import annotations

from datetime import date
from typing import Any

from service.common.models import SYSTEM
from service.common.pii import id_card_check_char
from service.stations.service import create_station

# Two stations in one Hefei county, one in another Hefei county, one in Huangshan.
STATIONS = (
    ("340102001", "明光路街道社工站", 117.304, 31.860),
    ("340102002", "三里街街道社工站", 117.310, 31.870),
    ("340104001", "五里墩街道社工站", 117.230, 31.850),
    ("341021103", "富堨镇社工站", 118.430, 29.860),
)


def id_card(born: str = "19400101", seq: int = 1, region: str = "340102") -> str:
    """A valid 18-character ID number (GB 11643 check digit) for a birth date YYYYMMDD."""
    first17 = f"{region}{born}{seq:03d}"
    return first17 + id_card_check_char(first17)


async def seed_stations(ctx: Any) -> dict[str, str]:
    """Create the test stations; returns township code -> station id."""
    out = {}
    for code, name, lon, lat in STATIONS:
        station = await create_station(
            ctx=ctx,
            principal=SYSTEM,
            data={"code": code, "name": name, "location": {"type": "Point", "coordinates": [lon, lat]}},
        )
        out[code] = station.id
    return out


def elder_body(township: str = "340102001", *, seq: int = 1, born: str = "19400101", **kw: Any) -> dict[str, Any]:
    """A valid create body."""
    body: dict[str, Any] = {
        "name": kw.pop("name", "王秀英"),
        "id_card": id_card(born, seq),
        "township": township,
        "phone": "13800138000",
        "address": "合肥市瑶海区明光路1号",
        "location": {"lon": 117.304, "lat": 31.86},
        "flags": ["alone"],
        "consent": {"given": True, "method": "written"},
    }
    body.update(kw)
    return body


def age_born(years: int, today: date | None = None) -> str:
    """A YYYYMMDD birth date for someone ``years`` old today."""
    today = today or date.today()
    return f"{today.year - years:04d}0101"
