"""The in-process routing index of stations (:mod:`.station_index`), how a copy is kept current
(:mod:`.changes`, :mod:`.process`), the nearest-stations search (:mod:`.search`) and what a
decision lists (:mod:`.candidates`). Callers import these names from here."""

from service.stations.grids import haversine_many
from service.stations.index.candidates import (
    COINCIDE_KM,
    MAX_CANDIDATE_SEARCH_KM,
    STATION_SUFFIX,
    TOP_CANDIDATES,
    Candidate,
    Township,
)
from service.stations.index.changes import refresh_index
from service.stations.index.process import IndexHolder, current_index, invalidate_index, load_index
from service.stations.index.search import nearest_quick, quick_path, search_nearest
from service.stations.index.station_index import StationIndex

__all__ = [
    "COINCIDE_KM",
    "MAX_CANDIDATE_SEARCH_KM",
    "STATION_SUFFIX",
    "TOP_CANDIDATES",
    "Candidate",
    "IndexHolder",
    "StationIndex",
    "Township",
    "current_index",
    "haversine_many",
    "invalidate_index",
    "load_index",
    "nearest_quick",
    "quick_path",
    "refresh_index",
    "search_nearest",
]
