"""What a routing decision lists: candidate stations with their distances, and a county's townships."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# How many candidates a decision lists, and how far the search for them reaches at most.
TOP_CANDIDATES = 5
MAX_CANDIDATE_SEARCH_KM = 1000.0

# Station points closer than this are one place: distance cannot choose between them.
COINCIDE_KM = 0.05

# A station's name is its township's name and this suffix (the township's name when the list has none).
STATION_SUFFIX = "社工站"


# Not frozen: a decision makes up to five of these, and a frozen dataclass's generated
# ``__init__`` (``object.__setattr__`` per field) costs several times a plain one. Read-only by use.
@dataclass(slots=True)
class Candidate:
    station_id: str
    station_code: str
    station_name: str
    distance_km: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "station_id": self.station_id,
            "station_code": self.station_code,
            "station_name": self.station_name,
            "distance_km": None if self.distance_km is None else round(self.distance_km, 3),
        }


@dataclass(frozen=True, slots=True)
class Township:
    """A township of a county's dispatch queue: what a resident or a supervisor picks from."""

    code: str
    name: str
    station_id: str
    station_name: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "station_id": self.station_id, "station_name": self.station_name}
